"""What each option is, declared once on its schema class and asked by the code (not by comparing names)."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from tfrun.tasks.core.schema import GROUP_BASES, SCHEMAS, option_class

# Each class attribute, and the options that have it (every other option of the group has not).
TRAITS = [
    ("target", "deploys", {n for n in SCHEMAS["target"] if n != "none"}),
    ("target", "serves_online", {"vertex_endpoint"}),
    ("cluster", "on_vertex", {"vertex"}),
    ("cluster", "local_processes", {"local"}),
    ("strategy", "needs_cluster", {"multi_worker", "parameter_server"}),
    ("strategy", "chief_dispatches", {"parameter_server"}),
    ("strategy", "validates", {n for n in SCHEMAS["strategy"] if n != "parameter_server"}),
    ("track", "logs_to_mlflow", {"mlflow"}),
]


@pytest.mark.parametrize("group, trait, having", TRAITS)
def test_each_option_says_what_it_is(group: str, trait: str, having: set[str]):
    assert {name for name, cls in SCHEMAS[group].items() if getattr(cls, trait)} == having


@pytest.mark.parametrize("group, trait, having", TRAITS)
def test_what_an_option_is_is_no_config_key(group: str, trait: str, having: set[str]):
    for cls in SCHEMAS[group].values():
        assert trait not in {f.name for f in dataclasses.fields(cls)}


def test_a_composed_or_resolved_node_and_a_name_find_the_schema():
    node = OmegaConf.create({"name": "vertex_endpoint", "endpoint": "e"})
    assert option_class("target", node) is SCHEMAS["target"]["vertex_endpoint"]
    assert option_class("cluster", "local").local_processes
    assert option_class("target", node).kept_status == "serving"
    assert option_class("target", {"name": "vertex_batch"}.get("name")).kept_status == "kept"


def test_an_unknown_option_has_its_groups_defaults():
    assert option_class("target", "my_own_target") is GROUP_BASES["target"]
    assert option_class("target", "my_own_target").deploys and not option_class("cluster", "mine").on_vertex
