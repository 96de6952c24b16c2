"""Every rendered manifest against the Kubernetes API's schemas, offline, with kubernetes-validate (the k8s extra).

Strict: a field the schema does not know is an error, as `kubectl apply --validate=strict` would report it. The
Kubernetes version is kubernetes-validate's newest unless one is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


class ManifestInvalid(ValueError):
    """A manifest the Kubernetes schemas reject; the message names the file, the object and the field."""


def available() -> Optional[str]:
    """kubernetes-validate's version when it is installed, else None."""
    try:
        from kubernetes_validate import version
    except ImportError:
        return None
    return str(version.__version__) if hasattr(version, "__version__") else "installed"


def newest_kubernetes() -> str:
    import kubernetes_validate

    return str(kubernetes_validate.latest_version())


def validate_files(paths: list[Path], kubernetes_version: Optional[str] = None) -> dict[str, Any]:
    """Validate each YAML document of `paths` (strict); {kubernetes_version, checked: [file: kind/name]} or
    ManifestInvalid naming the first that fails."""
    import kubernetes_validate
    import yaml

    version = kubernetes_version or newest_kubernetes()
    checked = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            what = f"{path.name}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                where = ".".join(str(p) for p in err.path) or "(top level)"
                raise ManifestInvalid(f"{what} is not a valid {doc.get('kind')} at {where}: {err.message}") from None
            except kubernetes_validate.SchemaNotFoundError as err:
                raise ManifestInvalid(f"{what}: no Kubernetes {version} schema for it ({err})") from None
            checked.append(what)
    return {"kubernetes_version": version, "strict": True, "checked": checked}
