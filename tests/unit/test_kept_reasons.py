"""target.teardown=false: each resource a Vertex run keeps says what keeping it costs, its own reason.

The record's why is what `tfrun-records show` and `cleanup` print beside each resource; a bucket or its
objects must not read "a deployed model is billed per replica-hour" because the run also deployed one.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from omegaconf import OmegaConf

from tfrun.tasks.core.schema import VertexEndpointTarget
from tfrun.tasks.vertex import steps
from tfrun.tasks.vertex.resources import KEPT_COST, REMOVAL_ORDER, Ledger

KINDS = ("deployed_model", "endpoint", "model", "gcs_objects", "bucket")


def test_every_kept_resource_has_its_own_reason(tmp_path: Path):
    events: list[dict] = []
    ledger = Ledger(events.append, project="p", region="us-central1", run_dir="runs/r")
    for kind in KINDS:
        ledger.add(kind, f"projects/p/locations/us-central1/{kind}s/1", created=True)
    cfg = OmegaConf.create({"target": OmegaConf.structured(VertexEndpointTarget(teardown=False))})
    run = steps.VertexRun(cloud=SimpleNamespace(), ledger=ledger, labels={}, run_id="r")
    ctx = SimpleNamespace(state={steps.STATE: run}, run_dir=tmp_path)
    steps.report_step(cfg, ctx)
    whys = {r.kind: r.why for r in ledger.items}
    assert {r.status for r in ledger.items} == {"left"}
    for kind in KINDS:
        assert KEPT_COST[kind] in whys[kind] and "tfrun-records cleanup" in whys[kind], whys[kind]
    assert "replica-hour" in whys["deployed_model"]
    assert not any("replica-hour" in whys[kind] for kind in KINDS if kind != "deployed_model"), whys
    assert set(KEPT_COST) == set(REMOVAL_ORDER)
