"""Multirun support: the Hydra callback that summarises a sweep, and resuming killed sweeps."""
