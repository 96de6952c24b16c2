"""tfrun.tasks.data.stratified against scikit-learn's train_test_split(stratify=y): the same rows in the same order
(so a record's split is unchanged), and the same refusals."""

from __future__ import annotations

import numpy as np
import pytest

from tfrun.tasks.data.stratified import train_test_split

CASES = [  # (rows, classes, imbalance, test_size, seed)
    (1797, 10, False, 0.2, 0),
    (1437, 10, False, 0.1, 42),
    (200, 10, False, 0.2, 7),
    (160, 10, False, 0.1, 0),
    (101, 3, True, 0.25, 3),
    (57, 2, True, 0.3, 11),
    (1000, 7, True, 0.15, 123),
    (31, 4, False, 0.5, 5),
    (400, 4, False, 0.2, 1),
    (999, 13, True, 0.33, 2026),
]


@pytest.mark.parametrize("rows, classes, imbalanced, test_size, seed", CASES)
def test_the_same_rows_in_the_same_order_as_scikit_learn(rows, classes, imbalanced, test_size, seed):
    rng = np.random.default_rng(seed)
    weights = rng.random(classes) + (0.05 if imbalanced else 5.0)
    y = np.concatenate(
        [
            np.arange(classes),
            np.arange(classes),  # every class at least twice
            rng.choice(classes, rows - 2 * classes, p=weights / weights.sum()),
        ]
    ).astype("int64")
    rng.shuffle(y)
    x = rng.random((rows, 3)).astype("float32")
    ours = train_test_split(x, y, test_size=test_size, seed=seed)
    from sklearn.model_selection import train_test_split as sk_split  # scikit-learn where it runs, not at collection

    theirs = sk_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize(
    "y, test_size",
    [
        (np.array([0, 0, 1, 1, 2, 3]), 0.4),  # classes with one member
        (np.arange(10) % 5, 0.2),  # test set smaller than the number of classes
        (np.arange(10) % 5, 0.6),  # train set smaller than the number of classes
        (np.array([0, 1]), 0.99),  # empty train set
    ],
)
def test_the_same_refusals_as_scikit_learn(y, test_size):
    from sklearn.model_selection import train_test_split as sk_split

    x = np.zeros((len(y), 2))
    with pytest.raises(ValueError) as theirs:
        sk_split(x, y, test_size=test_size, stratify=y, random_state=0)
    with pytest.raises(ValueError) as ours:
        train_test_split(x, y, test_size=test_size, seed=0)
    assert str(ours.value) == str(theirs.value)
