"""What job=rollback asks a running replica group to serve: every rolled-back version replaced by the target, in the
versions and in the labels; the rest as it was (tfrun.tasks.tfserving.group_rollback.plan)."""

from __future__ import annotations

import pytest

from tfrun.tasks.tfserving.group_rollback import plan


@pytest.mark.parametrize(
    "versions, labels, target, newer, expected",
    [
        ([2], {"stable": 2}, 1, [2], ([1], {"stable": 1})),  # a rolling update undone
        ([1, 2], {"stable": 1, "canary": 2}, 1, [2], ([1], {"stable": 1, "canary": 1})),  # the canary's label follows
        ([1, 3], {"stable": 1, "canary": 3}, 2, [3], ([1, 2], {"stable": 1, "canary": 2})),  # older versions stay
        ([2, 3], {"a": 3, "b": 2}, 1, [2, 3], ([1], {"a": 1, "b": 1})),  # rolled back past two versions
        ([1], {"stable": 1}, 1, [2], ([1], {"stable": 1})),  # it serves none of them: unchanged
    ],
)
def test_each_rolled_back_version_is_replaced_by_the_target(versions, labels, target, newer, expected):
    assert plan(versions, labels, target, newer) == expected
