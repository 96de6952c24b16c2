"""MLflow's model registry in tfrun's jobs: job=promote's check and step for `models:/…` sources, a `models:/…`
deploy source brought here, and a finished run's export registered (track.register=true).

The registry is the `track` config's MLflow store (track=mlflow), else MLFLOW_TRACKING_URI, else the local
store in the launch folder (tfrun.tasks.registry.config.registry_uri).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from tfrun.tasks.core.problems import PromoteError
from tfrun.tasks.registry import client as registry
from tfrun.tasks.registry import config as registry_config

CACHE = ".tfrun-registry"  # where models:/ deploy sources are brought, in the launch folder: NAME/VERSION/


def _open(track: Any) -> tuple[Any, str]:
    uri = registry_config.registry_uri(track)
    return registry.open_client(uri, registry_config.timeout_s(track)), uri


def _one_line(given: str, uri: str, err: BaseException) -> str:
    """An unexpected failure of the registry (a 5xx, a dropped connection) as one line naming the reference."""
    text = str(getattr(err, "message", None) or err).strip().splitlines()
    return f"{given}: the registry at {uri} failed ({type(err).__name__}: {text[0] if text else ''})"


def check(config: Any) -> None:
    """In the runner, before the record: the server answers and the version (or alias) the source names exists."""
    given = str(config.source)
    uri = registry_config.registry_uri(config.track)
    try:
        client, uri = _open(config.track)
        registry.resolve(client, registry_config.parse(given), uri)
    except (registry.RegistryError, ValueError) as err:
        raise PromoteError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - a user's command gets one line, not MLflow's traceback
        raise PromoteError(_one_line(given, uri, err)) from None


def promote_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """Point `cfg.alias` at the version `cfg.source` names; the result says which version it pointed at before."""
    ref = registry_config.parse(str(cfg.source))
    alias = str(cfg.alias)
    client, uri = _open(cfg.track)
    version = int(registry.resolve(client, ref, uri).version)
    previous: Optional[int] = registry.alias_version(client, ref.name, alias)
    registry.set_alias(client, ref.name, alias, version)
    now = registry.alias_version(client, ref.name, alias)
    if now != version:
        raise PromoteError(f"{ref.name}@{alias} points at version {now} after setting it to {version}")
    undo = None if previous is None or previous == version else f"source=models:/{ref.name}/{previous} alias={alias}"
    if previous is None:
        moved = f"set to version {version} (no version had it before)"
    elif previous == version:
        moved = f"already pointed at version {version}"
    else:
        moved = f"moved from version {previous} to version {version}"
    return {
        "summary": f"{ref.name}@{alias} {moved} in MLflow's registry at {uri}"
        + (f" (undo: tfrun job=promote {undo})" if undo else ""),
        "promotion": {
            "registry": "mlflow",
            "uri": uri,
            "source": ref.given,
            "model": ref.name,
            "alias": alias,
            "version": version,
            "previous_version": previous,
            "undo": undo,
        },
    }


def materialise(given: str, track: Any, cache: Path = Path(CACHE)) -> Path:
    """A `models:/…` deploy source brought into the launch folder (tfrun.tasks.registry.client.materialise);
    a RegistryError (one line) when it cannot be."""
    try:
        ref = registry_config.parse(given)
    except ValueError as err:
        raise registry.RegistryError(str(err)) from None
    if not registry_config.mlflow_installed():
        raise registry.RegistryError(f"{given}: models:/ sources need the mlflow extra: pip install 'tfrun[mlflow]'")
    uri = registry_config.registry_uri(track)
    try:
        client, uri = _open(track)
        return registry.materialise(client, ref, uri, cache)
    except registry.RegistryError:
        raise
    except Exception as err:  # noqa: BLE001 - as for check
        raise registry.RegistryError(_one_line(given, uri, err)) from None
