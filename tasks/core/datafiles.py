"""Finding data files on disk without importing numpy or TensorFlow.

Validation uses these before any expensive step, so a missing data set is a
config error (exit 2) with instructions, not a traceback from the child.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_HOWTO = (
    "a folder holding " + ", ".join(FASHION_MNIST_FILES) + ". None was found in data.path, "
    f"{DEBIAN_FASHION_MNIST} or the keras cache ($KERAS_HOME or ~/.keras)/datasets/fashion-mnist. "
    "Get them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or copy the four files "
    "from github.com/zalandoresearch/fashion-mnist into a folder and set data.path=<that folder>"
)
MNIST_HOWTO = (
    "the path of an mnist.npz (arrays x_train, y_train, x_test, y_test, as keras.datasets.mnist "
    "writes it). None was found in data.path or ($KERAS_HOME or ~/.keras)/datasets/mnist.npz. "
    'On a machine with network run `python -c "import tf_keras; tf_keras.datasets.mnist.load_data()"` '
    "and copy ~/.keras/datasets/mnist.npz here, or set data.download=true to let keras fetch it"
)


def keras_datasets_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home) / "datasets"


def find_fashion_mnist(path: Optional[str]) -> Optional[Path]:
    """First folder holding all four Fashion-MNIST files: given path, Debian package, keras cache."""
    candidates = [Path(path)] if path else [DEBIAN_FASHION_MNIST, keras_datasets_dir() / "fashion-mnist"]
    for folder in candidates:
        if all((folder / name).is_file() for name in FASHION_MNIST_FILES):
            return folder
    return None


def find_mnist(path: Optional[str]) -> Optional[Path]:
    candidate = Path(path) if path else keras_datasets_dir() / "mnist.npz"
    return candidate if candidate.is_file() else None


def files_format(path: Optional[str], declared: str) -> Optional[str]:
    """The format of a user data file: declared, or inferred from its suffix."""
    if declared != "auto":
        return declared
    suffix = Path(path or "").suffix.lower()
    return {".npz": "npz", ".csv": "csv"}.get(suffix)


def is_readable_file(path: Optional[str]) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.R_OK)
