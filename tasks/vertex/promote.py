"""job=promote target=vertex_endpoint: a version alias moves in Vertex's Model Registry, and the endpoint's traffic
follows it.

    tfrun job=promote target=vertex_endpoint source=runs/deploy2 alias=champion cloud=gcp ...
    tfrun job=promote target=vertex_endpoint source=projects/P/locations/L/models/ID@2 alias=champion ...

The source is a Vertex deploy's run dir or record.json (its Model version, and its endpoint when it deployed to
one) or a version's resource name `projects/…/models/ID@VERSION` (a version id or alias). The endpoint is the
record's, else the one whose display name is target.endpoint. The step deploys the version there when it is not
deployed yet (target's machine settings, display name ending in the run id, in the ledger as created) with 100 %
of the traffic, or gives the deployed one 100 %; the models that held traffic stay deployed with 0 % for rollback,
or are undeployed with target.undeploy_previous=true. Then the alias moves (mergeVersionAliases on the promoted
version; Vertex takes it off the version that had it). The record's `promotion` names the version the alias left,
and `undo` promotes it back.

Offline rules (`problems`, `handles`) and the dry run (`plan_lines`) import no SDK: the runner reads them while
it validates. `check` runs in the runner before the record (the version and the endpoint exist), `promote_step`
in the child.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from tfrun.tasks.core import vertex_catalog as catalog
from tfrun.tasks.core.problems import ConfigError, Problem
from tfrun.tasks.core.record_io import succeeded_run

VERSION_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/@]+@[^/@]+$")
VERTEX_KINDS = ("vertex_endpoint", "vertex_batch")
ACCEPTS = (
    "a Vertex deploy's run dir or record.json, or a model version projects/…/models/ID@VERSION (target=vertex_endpoint)"
)


@dataclass(frozen=True)
class VertexSource:
    """The Model version a promote names, and the endpoint its record deployed to (if any)."""

    model: str  # projects/…/models/ID, no version
    version: str  # a version id or alias, as given
    endpoint: Optional[str] = None  # the record's endpoint resource name
    record: Optional[str] = None  # the record's path when the source is a run

    @property
    def name(self) -> str:
        return f"{self.model}@{self.version}"


# ------------------------------------------------------------------------------------------- offline
def handles(source: str, target: str) -> bool:
    """target=vertex_endpoint with a source that is no MLflow reference."""
    from tfrun.tasks.core.schema import option_class
    from tfrun.tasks.core.schema.cloud import VertexEndpointTarget

    return issubclass(option_class("target", target), VertexEndpointTarget) and not source.startswith("models:/")


def _record_version(data: dict[str, Any]) -> tuple[str, str]:
    """(Model, version id) the record's run uploaded, from its deployment entry or its ledger."""
    entry = next((d for d in data.get("deployments") or [] if d.get("kind") in VERTEX_KINDS and d.get("model")), None)
    if entry is None:
        raise ValueError("its record has no Vertex deployment (target=vertex_endpoint or vertex_batch)")
    model = str(entry["model"]).split("@", 1)[0]
    version = entry.get("model_version")
    for res in data.get("cloud_resources") or []:
        name, _, at = str(res.get("name", "")).partition("@")
        if name != model or not (res.get("kind") == "model_version" or (res.get("kind") == "model" and res["created"])):
            continue
        version = version or at or (res.get("details") or {}).get("version_id")
        if res.get("status") == "removed":
            raise ValueError(f"the Model version it uploaded was removed ({res.get('why', '')})")
    return model, str(version or "1")


def resolve(source: str) -> VertexSource:
    """The version a source names; ValueError saying why it names none."""
    text = source.strip()
    if text.startswith("projects/"):
        if not VERSION_NAME.match(text):
            raise ValueError(f"{text} is not projects/PROJECT/locations/REGION/models/ID@VERSION")
        model, _, version = text.partition("@")
        return VertexSource(model, version)
    missing = f"{text} does not exist (a run dir, its record.json, or projects/…/models/ID@VERSION)"
    record, data = succeeded_run(text, missing)
    model, version = _record_version(data)
    entry = next(d for d in data["deployments"] if d.get("kind") in VERTEX_KINDS and d.get("model"))
    return VertexSource(model, version, entry.get("endpoint"), str(record))


def problems(config: Any) -> Iterator[Problem]:
    """The alias is a Vertex alias (`default` included: moving it changes the Model's default version), the source
    names a version."""
    why = catalog.version_alias_problem(config.alias)
    if why is not None and config.alias != "default":
        yield Problem("alias", config.alias, why.replace("an alias other than default", "an alias"))
    try:
        resolve(str(config.source))
    except ValueError as err:
        yield Problem("source", config.source, f"{ACCEPTS} ({err})")


def _endpoint_words(source: VertexSource, target: Any) -> str:
    if source.endpoint:
        return f"endpoint {source.endpoint} (the record's)"
    return f"the endpoint with display name {target.endpoint!r} (target.endpoint)"


def plan_lines(config: Any) -> list[str]:
    """What `cloud.dry_run=true` prints for a promote: nothing is asked of Vertex."""
    source, target = resolve(str(config.source)), config.target
    previous = "undeployed (target.undeploy_previous=true)" if target.undeploy_previous else "kept at 0 % for rollback"
    return [
        "tfrun dry run (cloud.dry_run=true): nothing is created, moved or sent; the promote would",
        f"  1. version     {source.name}" + (f" (from {source.record})" if source.record else ""),
        f"  2. endpoint    {_endpoint_words(source, target)}: the version deployed there if it is not "
        f"({target.machine_type}, replicas {target.min_replicas}-{target.max_replicas}, deadline {target.timeout_s:g} s)",
        "  3. traffic     100 % to the promoted version; the deployed models that had traffic " + previous,
        f"  4. alias       {config.alias!r} added to the promoted version (mergeVersionAliases), taken off the version "
        "that had it",
        "  then          `tfrun-records cleanup RUN` undeploys what the promote deployed (traffic back as before)",
    ]


# ------------------------------------------------------------------------------------------- runner
def _find_endpoint(aiplatform: Any, source: VertexSource, display_name: str) -> Any:
    from google.api_core import exceptions

    if source.endpoint:
        try:
            return aiplatform.Endpoint(source.endpoint)
        except exceptions.NotFound:
            return None
    found = aiplatform.Endpoint.list(filter=f'display_name="{display_name}"', order_by="create_time")
    return found[0] if found else None


def _versions(aiplatform: Any, model: str) -> dict[str, list[str]]:
    registry = aiplatform.models.ModelRegistry(model)
    return {v.version_id: list(v.version_aliases) for v in registry.list_versions()}


class NoSuchVersion(LookupError):
    """The source names no version that exists; the message says which do."""


def _version(aiplatform: Any, source: VertexSource) -> Any:
    """The Model at the source's version; NoSuchVersion naming the versions that exist when it is not one."""
    from google.api_core import exceptions

    try:
        return aiplatform.Model(source.model, version=source.version)
    except exceptions.NotFound:
        try:
            known = _versions(aiplatform, source.model)
        except exceptions.NotFound:
            raise NoSuchVersion(f"there is no Model {source.model} in Vertex's Model Registry") from None
        listed = ", ".join(
            f"{v} ({', '.join(a)})" if a else v for v, a in sorted(known.items(), key=lambda kv: int(kv[0]))
        )
        raise NoSuchVersion(f"{source.name}: no such version of {source.model} (its versions: {listed})") from None


def check(config: Any) -> None:
    """In the runner, before the record: the version and the endpoint exist (ConfigError, exit 2, if not)."""
    from tfrun.tasks.vertex import client

    if config.cloud.dry_run:
        return
    source = resolve(str(config.source))  # problems() passed it already
    where = f"{config.cloud.project}/{config.cloud.region}"
    try:
        aiplatform = client.init(config.cloud)
        _version(aiplatform, source)
        endpoint = _find_endpoint(aiplatform, source, config.target.endpoint)
    except NoSuchVersion as err:
        raise ConfigError([Problem("source", config.source, f"a Model version that exists ({err})")]) from None
    except Exception as err:  # noqa: BLE001 - an unreachable or refusing service is one line too
        why = f"a Model version Vertex AI answers for (it did not: {client.short_error(err)})"
        raise ConfigError([Problem("source", config.source, why)]) from None
    if endpoint is None:
        key, value = ("source", config.source) if source.endpoint else ("target.endpoint", config.target.endpoint)
        raise ConfigError(
            [
                Problem(
                    key,
                    value,
                    f"an endpoint that exists in {where} ({_endpoint_words(source, config.target)} does not): "
                    "promote moves an endpoint's traffic; deploy there first, or name another with target.endpoint=…",
                )
            ]
        )


# -------------------------------------------------------------------------------------------- child
def _deploy(cfg: Any, ctx: Any, run: Any, model: Any, endpoint: Any, before: dict[str, int]) -> str:
    """Deploy the promoted version with 100 % of the traffic (the others scaled to 0 by the deploy); its id."""
    from tfrun.tasks.vertex.endpoint import deploy_model

    display = f"{model.display_name}-v{model.version_id}-{ctx.run_id}"[-128:]
    return deploy_model(run, model, endpoint, cfg.target, display, 100, before, model_version=str(model.version_id)).id


def promote_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.vertex.cleanup import _bare
    from tfrun.tasks.vertex.endpoint import traffic
    from tfrun.tasks.vertex.steps import vertex_run

    source, target, alias = resolve(str(cfg.source)), cfg.target, str(cfg.alias)
    run = vertex_run(cfg, ctx)
    aiplatform = run.sdk()
    model = _version(aiplatform, source)
    version, name = str(model.version_id), _bare(model.resource_name)
    previous = next((v for v, a in _versions(aiplatform, name).items() if alias in a), None)

    endpoint = _find_endpoint(aiplatform, source, target.endpoint)
    if endpoint is None:
        raise RuntimeError(f"{_endpoint_words(source, target)} no longer exists")
    run.ledger.add(
        "endpoint",
        endpoint.resource_name,
        created=False,
        display_name=endpoint.display_name,
        why="the endpoint whose traffic this promote moved: never deleted by this run",
    )
    before = traffic(endpoint)
    deployed = endpoint.list_models()
    ours = next((m for m in deployed if _bare(m.model) == name and str(m.model_version_id) == version), None)
    if ours is None:
        deployed_id, how = _deploy(cfg, ctx, run, model, endpoint, before), "deployed"
    else:
        deployed_id, how = str(ours.id), "already deployed"
        endpoint.update(traffic_split={**{str(m.id): 0 for m in deployed}, deployed_id: 100})
    endpoint = aiplatform.Endpoint(endpoint.resource_name)

    undeployed = []
    if target.undeploy_previous:
        for old in [k for k, v in before.items() if v > 0 and k != deployed_id]:
            endpoint.undeploy(deployed_model_id=old, traffic_split={deployed_id: 100})
            res = run.ledger.add(
                "deployed_model",
                f"{endpoint.resource_name}/deployedModels/{old}",
                created=False,
                details={"endpoint": endpoint.resource_name},
            )
            run.ledger.set(res, "removed", "target.undeploy_previous=true: undeployed after the traffic moved")
            undeployed.append(old)
        endpoint = aiplatform.Endpoint(endpoint.resource_name)
    after = traffic(endpoint)

    registry = aiplatform.models.ModelRegistry(name)
    registry.add_version_aliases([alias], version=version)  # Vertex takes it off the version that had it
    now = _versions(aiplatform, name)
    for other, aliases in now.items():  # a registry that keeps it elsewhere: the old version lets it go
        if other != version and alias in aliases and alias != "default":
            registry.remove_version_aliases([alias], version=other)
    for res in run.ledger.ours():
        run.ledger.set(
            res,
            "left",
            "kept: the promoted version serves the endpoint; `tfrun-records cleanup RUN` "
            "undeploys it and gives the traffic back as it was",
        )

    undo = None
    if previous and previous != version:
        undo = f"source={name}@{previous} alias={alias} target=vertex_endpoint"
    kept = "undeployed" if target.undeploy_previous else "kept at 0 %"
    print(f"[vertex] {alias} -> {name}@{version}; traffic {before} -> {after}", flush=True)
    return {
        "summary": f"{alias}: version {previous or 'none'} -> {version} of {name}; {how} on "
        f"{endpoint.resource_name} (deployed model {deployed_id}) with 100 % of the traffic, the models that "
        f"had it {kept}" + (f" (undo: tfrun job=promote {undo})" if undo else ""),
        "promotion": {
            "registry": "vertex",
            "model": name,
            "alias": alias,
            "version": version,
            "previous_version": previous,
            "undo": undo,
            "endpoint": endpoint.resource_name,
            "deployed_model_id": deployed_id,
            "deployed": how == "deployed",
            "traffic_before": before,
            "traffic_after": after,
            "undeployed": undeployed,
        },
    }
