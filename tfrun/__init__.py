"""tfrun: a declarative experiment runner for TensorFlow.

The repository's `runner/`, `tasks/` and `conf/` install as `tfrun.runner`, `tfrun.tasks` and `tfrun.conf`.
Importing this package stays light (no TensorFlow, no Hydra): the command line imports it on every call.
"""
