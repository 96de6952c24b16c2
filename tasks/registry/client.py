"""Talking to MLflow's model registry with MLflow's documented client API (MlflowClient), imported inside the
functions only: a registered version made from a run's export, a reference resolved to its version, an alias
moved, a version's files brought here.

A registered version's artifact is a folder `tfrun_model/` of the MLflow run: the SavedModel (`saved_model/`)
and the tfrun record of the run that exported it (`record.json`), so a deploy of `models:/…` adopts that run's
data config and checks every file's sha256 against the record exactly as it does for a run dir. Every failure
a user can cause or meet (an unknown name, version or alias; a server that does not answer) is a RegistryError
with one line that names it and what exists.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from tfrun.tasks.core import sources
from tfrun.tasks.core.files import sha256_file
from tfrun.tasks.core.record_io import write_json_atomic
from tfrun.tasks.registry.config import Reference

ARTIFACT = "tfrun_model"  # the MLflow run's folder a version points at
SAVED_MODEL = sources.REGISTRY_SAVED_MODEL
MARKER = sources.REGISTRY_MARKER  # written beside a version brought here (tfrun.tasks.core.sources reads it)
RUN_TAG = "tfrun.run_id"
WEIGHTS_TAG = "tfrun.weights_sha256"
SHA256_TAG = "tfrun.saved_model_sha256"
METRIC_TAG = "tfrun.metric."
SHOWN = 10  # names, versions or aliases listed when one is missing
READY_WAIT_S = 60.0  # a new version's wait to be READY (a local or self-hosted registry is at once)


class RegistryError(RuntimeError):
    """A registry request that cannot be answered as asked: the message is one line naming what and why."""


def open_client(uri: str, timeout_s: float) -> Any:
    """An MlflowClient for `uri` whose requests each wait `timeout_s` and are retried twice (variables the user
    set win), after checking that a tracking server answers at all (one line if not)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, timeout_s))))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    quiet()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as answer:
                if answer.status != 200:
                    raise RegistryError(f"the MLflow server at {uri} answered /health with {answer.status}")
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise RegistryError(f"the MLflow server at {uri} did not answer ({getattr(err, 'reason', err)})") from None
    elif uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        raise RegistryError(
            f"no MLflow store at {uri} (no such file here): track=mlflow track.uri=… or MLFLOW_TRACKING_URI names it"
        )
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def quiet() -> None:
    """No progress bars for artifact transfers: a run's console shows tfrun's lines (the user's setting wins)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _missing(err: BaseException) -> bool:
    return getattr(err, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN]) + (f", … ({len(items)} in all)" if len(items) > SHOWN else "")
    return shown or "none"


def _versions(client: Any, name: str) -> list[str]:
    found = client.search_model_versions(f"name = '{name}'")
    return sorted((str(v.version) for v in found), key=int)


def resolve(client: Any, ref: Reference, uri: str) -> Any:
    """The ModelVersion `ref` names; a RegistryError naming the missing name, version or alias and what exists."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(ref.name)
    except MlflowException as err:
        if not _missing(err):
            raise RegistryError(f"{ref.given}: {err.message.splitlines()[0]}") from None
        names = sorted(m.name for m in client.search_registered_models(max_results=100))
        raise RegistryError(
            f"{ref.given}: no registered model {ref.name!r} at {uri} (registered models: {_listed(names)})"
        ) from None
    if ref.alias is not None:
        aliases = dict(model.aliases or {})
        if ref.alias not in aliases:
            known = [f"{a} → version {v}" for a, v in sorted(aliases.items())]
            raise RegistryError(f"{ref.given}: {ref.name} has no alias {ref.alias!r} (its aliases: {_listed(known)})")
        return client.get_model_version_by_alias(ref.name, ref.alias)
    try:
        return client.get_model_version(ref.name, str(ref.version))
    except MlflowException as err:
        if not _missing(err):
            raise RegistryError(f"{ref.given}: {err.message.splitlines()[0]}") from None
        raise RegistryError(
            f"{ref.given}: {ref.name} has no version {ref.version} (its versions: {_listed(_versions(client, ref.name))})"
        ) from None


def alias_version(client: Any, name: str, alias: str) -> Optional[int]:
    """The version `alias` points at now, or None."""
    version = dict(client.get_registered_model(name).aliases or {}).get(alias)
    return None if version is None else int(version)


def set_alias(client: Any, name: str, alias: str, version: int) -> None:
    client.set_registered_model_alias(name, alias, str(version))


def register(
    client: Any,
    run_id: str,
    name: str,
    saved_model: Path,
    record_path: Path,
    record: dict[str, Any],
) -> Any:
    """A new version of the registered model `name` (created if missing): the SavedModel and its run's record as
    the MLflow run's `tfrun_model/` artifact, tagged with tfrun's run id, the weights' and files' sha256 and the
    final metrics. The ModelVersion made."""
    from mlflow.exceptions import MlflowException

    quiet()
    client.log_artifacts(run_id, str(saved_model), f"{ARTIFACT}/{SAVED_MODEL}")
    client.log_artifact(run_id, str(record_path), ARTIFACT)
    try:
        client.get_registered_model(name)
    except MlflowException as err:
        if not _missing(err):
            raise
        try:
            client.create_registered_model(name, description="Exported by tfrun (track.register=true)")
        except MlflowException as again:  # another run made it in between
            if getattr(again, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                raise
    artifact = sources.saved_model_artifact(record) or {}
    final = (record.get("metrics") or {}).get("final") or {}
    tags = {
        RUN_TAG: str(record.get("run_id")),
        WEIGHTS_TAG: str(record.get("weights_sha256")),
        SHA256_TAG: str(artifact.get("sha256")),
        **{
            f"{METRIC_TAG}{key}": repr(value)
            for key, value in sorted(final.items())
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        },
    }
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{ARTIFACT}"
    version = client.create_model_version(name, source, run_id=run_id, tags=tags, await_creation_for=0)
    deadline = time.monotonic() + READY_WAIT_S  # MLflow's own wait logs a line at INFO: this one is quiet
    while version.status != "READY" and time.monotonic() < deadline:
        time.sleep(0.5)
        version = client.get_model_version(name, version.version)
    if version.status != "READY":
        raise RegistryError(f"version {version.version} of {name} is {version.status}, not READY")
    return version


def materialise(client: Any, ref: Reference, uri: str, cache: Path) -> Path:
    """The version `ref` names, brought into `cache`/NAME/VERSION: its SavedModel, its run's record and a
    `registry.json` saying what was asked for and what it resolved to. A fresh download each time, swapped in
    only when it differs from what is there (a deploy reading the folder is not disturbed)."""
    version = resolve(client, ref, uri)
    number = int(version.version)
    folder = cache / ref.name / str(number)
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{number}-", dir=folder.parent))
    try:
        import mlflow.artifacts

        download_uri = client.get_model_version_download_uri(ref.name, str(number))
        got = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=download_uri, dst_path=str(fresh), tracking_uri=uri, registry_uri=uri
            )
        )
        if not (got / SAVED_MODEL / sources.GRAPH).is_file() or not (got / sources.RECORD_NAME).is_file():
            raise RegistryError(
                f"{ref.given}: version {number} of {ref.name} is not a tfrun registration "
                f"(its files hold no {SAVED_MODEL}/{sources.GRAPH} and {sources.RECORD_NAME}; source {version.source})"
            )
        (got / MARKER).write_text(
            json.dumps(
                {
                    "reference": ref.given,
                    "registry": "mlflow",
                    "uri": uri,
                    "name": ref.name,
                    "version": number,
                    "alias": ref.alias,
                    "mlflow_run_id": version.run_id,
                    "source": version.source,
                },
                indent=1,
            )
        )
        if folder.is_dir() and _same_files(folder, got):
            write_json_atomic(folder / MARKER, json.loads((got / MARKER).read_text()))  # this reference's
            return folder
        old = folder.with_name(f".{number}-old-{os.getpid()}")
        if folder.exists():
            folder.rename(old)
        got.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
        return folder
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def _same_files(a: Path, b: Path) -> bool:
    """Whether two folders hold the same files with the same bytes, the marker aside."""

    def listing(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): sha256_file(p) for p in root.rglob("*") if p.is_file() and p.name != MARKER
        }

    return listing(a) == listing(b)
