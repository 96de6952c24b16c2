"""A stratified split equal, index for index, to scikit-learn's `train_test_split(..., stratify=y)`.

Every run splits its data, and importing `sklearn.model_selection` for it cost each training process more
than a second (its package pulls in metrics, search and scipy). This is the same algorithm
(`StratifiedShuffleSplit` with one split, `_approximate_mode`) drawing from the same `RandomState(seed)` in the
same order, so existing records keep their splits; `tests/unit/test_stratified_split.py` compares the two.
"""

from __future__ import annotations

import math

import numpy as np


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of each class to draw: the floor of each share, the rest to the largest remainders (ties at
    random), as scikit-learn's `_approximate_mode`."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_indices(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices for labels `y` (1-D), `test_size` a fraction in (0, 1)."""
    n_samples = len(y)
    n_test = math.ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train == 0:
        raise ValueError(
            f"With n_samples={n_samples}, test_size={test_size!r} and train_size=None, the resulting "
            "train set will be empty. Adjust any of the aforementioned parameters."
        )
    classes, y_indices = np.unique(y, return_inverse=True)
    class_counts = np.bincount(y_indices)
    n_classes = len(class_counts)
    if np.min(class_counts) < 2:
        raise ValueError(
            "The least populated classes in y have only 1 member, which is too few. The minimum number "
            "of groups for any class cannot be less than 2. Classes with too few members are: "
            f"{classes[class_counts < 2].tolist()}"
        )
    if n_train < n_classes:
        raise ValueError(
            f"The train_size = {n_train} should be greater or equal to the number of classes = {n_classes}"
        )
    if n_test < n_classes:
        raise ValueError(f"The test_size = {n_test} should be greater or equal to the number of classes = {n_classes}")
    class_indices = np.split(np.argsort(y_indices, kind="mergesort"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i in range(n_classes):
        rows = class_indices[i][rng.permutation(class_counts[i])]
        train.append(rows[: n_i[i]])
        test.append(rows[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def train_test_split(x: np.ndarray, y: np.ndarray, *, test_size: float, seed: int) -> tuple[np.ndarray, ...]:
    """x_train, x_test, y_train, y_test, stratified on y (scikit-learn's argument order)."""
    train, test = stratified_indices(np.asarray(y), test_size, seed)
    return x[train], x[test], y[train], y[test]
