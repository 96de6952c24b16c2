"""`python -m tfrun.tasks.web.converter ARGS`: the tensorflowjs converter's own command line, beside TensorFlow 2.21.

tensorflowjs 4.22 cannot be pip-installed with its dependencies next to TensorFlow 2.21 (every
tensorflow-decision-forests release pins an older TensorFlow), so the set-up installs it without them
into a folder of its own (scripts/web_setup.sh: `pip install --no-deps --target`), which leaves the
pinned set untouched. Two of its imports are then missing and unused for a SavedModel: decision
forests (only for TF-DF models) and JAX (only for `jax_conversion`). They get stand-ins here, before the
converter is imported; everything else is the converter's own code and messages.
"""

from __future__ import annotations

import sys
import types


def _stand_ins() -> None:
    forests = types.ModuleType("tensorflow_decision_forests")
    forests.__doc__ = "stand-in: tfrun converts no decision-forest models"
    sys.modules.setdefault("tensorflow_decision_forests", forests)
    jax_conversion = types.ModuleType("tensorflowjs.converters.jax_conversion")
    jax_conversion.__doc__ = "stand-in: tfrun converts SavedModels, not JAX functions"

    def convert_jax(*args: object, **kwargs: object) -> None:
        raise RuntimeError("tfrun's converter set-up has no JAX: it converts SavedModels only")

    jax_conversion.convert_jax = convert_jax  # type: ignore[attr-defined]
    sys.modules.setdefault("tensorflowjs.converters.jax_conversion", jax_conversion)


def main() -> None:
    _stand_ins()
    from tensorflowjs.converters.converter import pip_main

    pip_main()


if __name__ == "__main__":
    main()
