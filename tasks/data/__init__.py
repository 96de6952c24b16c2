"""Data: built-in loaders, user arrays and user streams, all ending in tfrun.tasks.data.splits.Splits.

The loaders are re-exported here because configs name them as `tfrun.tasks.data.load_digits` etc.
(the `_target_` strings are part of every record's config hash).
"""

from tfrun.tasks.data.builtin import load_digits, load_fashion_mnist, load_files, load_mnist  # noqa: F401
