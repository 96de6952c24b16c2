"""ModelService: models:upload, get, list, patch, delete, and Vertex's model versions (REST v1):

* upload with `parentModel` adds a version to that Model (versionId "2", "3", … never reused); a new Model is
  version "1" and always carries the `default` alias. The request's `versionAliases` go to the new version; an
  alias another version had moves (Vertex: "if you apply an existing alias that is used in another model version,
  the alias is removed from that version"), `default` included.
* a name may carry a version: `models/ID@2` or an alias `models/ID@champion`; without one it is the default version.
  `list` shows each Model's default version; `models/ID:listVersions` every version.
* `models/ID@V:mergeVersionAliases` adds (`x`) and removes (`-x`) aliases of one version; aliases match
  [a-z][a-zA-Z0-9-]{0,126}[a-z0-9-] (non-numeric); `default` cannot be removed, only moved by adding it elsewhere.
* `models/ID@V:deleteVersion` deletes one version: not the only one (models.delete is for that), not the one with
  `default`, not one that is deployed. `models/ID` delete removes every version, refused while any is deployed.

Upload keeps the request's Model (containerSpec with imageUri, command, args, env, ports, predictRoute,
healthRoute; artifactUri; labels; anything else) and adds Vertex's output-only fields. For Vertex's
prebuilt TensorFlow images the artifact folder must hold exactly one saved_model.pb|pbtxt, checked in the
GCS emulator, as Vertex checks it. Delete is refused (FAILED_PRECONDITION) while the model is deployed or
being deployed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

from .containers import PREBUILT_TF
from .filters import compile_filter
from .wire import ApiError, etag, new_id, now

if TYPE_CHECKING:
    from .server import Fake, Request

FILTER_FIELDS = {"displayName", "labels", "name", "createTime", "updateTime", "description"}
INPUT_FORMATS = ["jsonl", "bigquery", "csv", "tf-record", "tf-record-gzip", "file-list"]
OUTPUT_FORMATS = ["jsonl", "bigquery"]
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]$")
DEFAULT = "default"


class ModelService:
    """Each stored Model is `{"name", "_versions": {id: version}, "_next": n}`; a version is a whole Model
    resource (its own artifactUri, containerSpec, labels, aliases, deployments), as Vertex answers it."""

    def __init__(self, fake: "Fake") -> None:
        self.fake = fake
        self.store = fake.store

    # lookup ------------------------------------------------------------------------------------------
    def family(self, name: str) -> dict:
        """The stored Model (every version) of a name, version part ignored."""
        return self.store.get("models", name.partition("@")[0], "Model")

    @staticmethod
    def default(family: dict) -> dict:
        return next(v for v in family["_versions"].values() if DEFAULT in v["versionAliases"])

    def resolve(self, name: str) -> dict:
        """The version a name means: `@<id>`, `@<alias>`, or the default version without one."""
        base, _, ref = name.partition("@")
        family = self.family(base)
        if not ref:
            return self.default(family)
        found = family["_versions"].get(ref) or next(
            (v for v in family["_versions"].values() if ref in v["versionAliases"]), None
        )
        if found is None:
            raise ApiError("NOT_FOUND", f'Model "{family["name"]}@{ref}" not found.')
        return found

    def version_of(self, name: str, version_id: str) -> Optional[dict]:
        """A version by Model name and id, or None once it is gone (a deployment's model may be deleted)."""
        family = self.store.resources["models"].get(self.store.normalise(name.partition("@")[0]))
        return None if family is None else family["_versions"].get(str(version_id))

    def view(self, model: dict) -> dict:
        deployed = [dict(ref) for ref in model.get("_deployments", [])]
        return {**model, "deployedModels": deployed} if deployed else model

    def versions(self) -> list[dict]:
        """Every version of every Model (the fake's state)."""
        return [self.view(v) for f in self.store.all("models") for v in f["_versions"].values()]

    # upload ------------------------------------------------------------------------------------------
    @staticmethod
    def _check_aliases(aliases: list[str], field: str) -> None:
        for alias in aliases:
            if not isinstance(alias, str) or not ALIAS.match(alias) or alias.isdigit():
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Invalid {field} {alias!r}: an alias must match [a-z][a-zA-Z0-9-]{{0,126}}[a-z-0-9].",
                )

    @staticmethod
    def _take_aliases(family: dict, version: dict, aliases: list[str]) -> None:
        """Give `aliases` to `version`, removing each from whichever other version had it."""
        for alias in aliases:
            for other in family["_versions"].values():
                if other is not version and alias in other["versionAliases"]:
                    other["versionAliases"].remove(alias)
                    other["versionUpdateTime"] = now()
            if alias not in version["versionAliases"]:
                version["versionAliases"].append(alias)

    def upload(self, req: "Request", project: str, location: str) -> dict:
        body = req.json()
        request_model = dict(body.get("model") or {})
        if not request_model.get("displayName"):
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: model.display_name; Message: Required field is not set.",
            )
        spec = request_model.get("containerSpec") or {}
        if not spec.get("imageUri"):
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: model.container_spec.image_uri; Message: Required field is not set.",
            )
        aliases = list(request_model.pop("versionAliases", None) or [])
        self._check_aliases(aliases, "model.version_aliases")
        artifact = request_model.get("artifactUri", "")
        if artifact and not artifact.startswith("gs://"):
            raise ApiError("INVALID_ARGUMENT", f"artifact_uri {artifact!r} must be a Cloud Storage URI (gs://).")
        if artifact and PREBUILT_TF.search(spec["imageUri"]) and self.fake.gcs.endpoint:
            self._check_saved_model(artifact)
        stamp = now()
        version = {
            **request_model,
            "versionAliases": [],
            "createTime": stamp,
            "updateTime": stamp,
            "versionCreateTime": stamp,
            "versionUpdateTime": stamp,
            "etag": etag(),
            "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"],
            "supportedInputStorageFormats": INPUT_FORMATS,
            "supportedOutputStorageFormats": OUTPUT_FORMATS,
            "modelSourceInfo": {"sourceType": "CUSTOM"},
            "_deployments": [],
        }
        with self.store.lock:
            if body.get("parentModel"):
                family = self.family(body["parentModel"])
                if not family["name"].startswith(self.store.parent(project, location) + "/"):
                    raise ApiError("INVALID_ARGUMENT", f"parent_model {body['parentModel']!r} is in another location.")
                version_id = str(family["_next"])

                def work() -> None:
                    family["_next"] += 1
                    version.update(
                        name=family["name"], versionId=version_id, createTime=self.default(family)["createTime"]
                    )
                    family["_versions"][version_id] = version
                    self._take_aliases(family, version, aliases)
            else:
                model_id = body.get("modelId") or new_id()
                if not _ID.match(model_id):
                    raise ApiError("INVALID_ARGUMENT", f"model_id {model_id!r} must match [a-z0-9][a-z0-9-]{{0,62}}.")
                name = self.store.name(project, location, "models", model_id)
                if name in self.store.resources["models"]:
                    raise ApiError("ALREADY_EXISTS", f'Model "{name}" already exists.')
                version_id = "1"
                family = {"name": name, "_versions": {"1": version}, "_next": 2}

                def work() -> None:
                    version.update(name=name, versionId="1")
                    self._take_aliases(family, version, [DEFAULT, *aliases])
                    self.store.put("models", family)

            return self.fake.quick_operation(
                req,
                family["name"],
                "UploadModelOperationMetadata",
                work,
                "UploadModelResponse",
                {"model": family["name"], "modelVersionId": version_id},
            )

    def _check_saved_model(self, artifact: str) -> None:
        top = [n for n in self.fake.gcs.names_under(artifact) if "/" not in n]
        found = [n for n in top if n in ("saved_model.pb", "saved_model.pbtxt")]
        if len(found) != 1:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Model directory {artifact.rstrip('/')}/ is expected to contain "
                "exactly one of: [saved_model.pb, saved_model.pbtxt].",
            )

    # read --------------------------------------------------------------------------------------------
    def get(self, req: "Request", project: str, location: str, model: str) -> dict:
        with self.store.lock:
            return self.view(self.resolve(self.store.name(project, location, "models", model)))

    def list(self, req: "Request", project: str, location: str) -> dict:
        with self.store.lock:
            page, token = self.store.list(
                "models",
                self.store.parent(project, location),
                req.query.get("filter"),
                FILTER_FIELDS,
                req.int_query("pageSize"),
                req.query.get("pageToken"),
                view=lambda family: self.view(self.default(family)),
            )
        out: dict = {"models": page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    def list_versions(self, req: "Request", project: str, location: str, model: str) -> dict:
        predicate = compile_filter(req.query.get("filter"), FILTER_FIELDS)
        with self.store.lock:
            family = self.family(self.store.name(project, location, "models", model))
            if "@" in model:
                raise ApiError("INVALID_ARGUMENT", f"listVersions takes a Model name without a version: {model!r}.")
            found = [self.view(v) for _, v in sorted(family["_versions"].items(), key=lambda kv: int(kv[0]))]
        found = [v for v in found if predicate(v)]
        start = int(req.query.get("pageToken") or 0)
        size = req.int_query("pageSize") or 100
        out: dict = {"models": found[start : start + size]} if found[start : start + size] else {}
        if start + size < len(found):
            out["nextPageToken"] = str(start + size)
        return out

    # change ------------------------------------------------------------------------------------------
    def patch(self, req: "Request", project: str, location: str, model: str) -> dict:
        body = req.json()
        mask = req.update_mask()
        with self.store.lock:
            stored = self.resolve(self.store.name(project, location, "models", model))
            for key in mask:
                if key not in ("displayName", "description", "labels", "versionDescription"):
                    raise ApiError("INVALID_ARGUMENT", f"Updating {key!r} is not supported.")
                if key in body:
                    stored[key] = body[key]
                else:
                    stored.pop(key, None)
            stored["updateTime"] = now()
            stored["etag"] = etag()
            return self.view(stored)

    def merge_aliases(self, req: "Request", project: str, location: str, model: str) -> dict:
        changes = list(req.json().get("versionAliases") or [])
        if not changes:
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: version_aliases; Message: Required field is not set.",
            )
        self._check_aliases([c.removeprefix("-") for c in changes], "version_aliases")
        add = [c for c in changes if not c.startswith("-")]
        remove = [c[1:] for c in changes if c.startswith("-") and c[1:] not in add]  # both: they cancel out
        add = [a for a in add if f"-{a}" not in changes]
        with self.store.lock:
            name = self.store.name(project, location, "models", model)
            if "@" not in model:
                raise ApiError("INVALID_ARGUMENT", f'The name "{name}" must include a version: models/ID@VERSION.')
            version = self.resolve(name)
            if DEFAULT in remove and DEFAULT in version["versionAliases"]:
                raise ApiError(
                    "INVALID_ARGUMENT",
                    "The default alias cannot be removed from a version: add it to another version to move it.",
                )
            family = self.family(name)
            self._take_aliases(family, version, add)
            version["versionAliases"] = [a for a in version["versionAliases"] if a not in remove]
            version["versionUpdateTime"] = version["updateTime"] = now()
            version["etag"] = etag()
            return self.view(version)

    @staticmethod
    def _refuse_if_deployed(version: dict) -> None:
        if version["_deployments"]:
            endpoints = sorted({ref["endpoint"] for ref in version["_deployments"]})
            raise ApiError(
                "FAILED_PRECONDITION",
                f'The Model "{version["name"]}@{version["versionId"]}" is deployed or being deployed '
                f"at the following Endpoint(s): {', '.join(endpoints)}.",
            )

    def delete(self, req: "Request", project: str, location: str, model: str) -> dict:
        name = self.store.name(project, location, "models", model)
        with self.store.lock:
            family = self.family(name)
            for version in family["_versions"].values():
                self._refuse_if_deployed(version)
            return self.fake.quick_operation(
                req,
                self.store.parent(project, location),
                "DeleteOperationMetadata",
                lambda: self.store.delete("models", family["name"]),
            )

    def delete_version(self, req: "Request", project: str, location: str, model: str) -> dict:
        name = self.store.name(project, location, "models", model)
        with self.store.lock:
            if "@" not in model:
                raise ApiError("INVALID_ARGUMENT", f'The name "{name}" must include a version: models/ID@VERSION.')
            family, version = self.family(name), self.resolve(name)
            if len(family["_versions"]) == 1:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    "Deleting the only version in the Model is not allowed. Use DeleteModel for deleting the Model.",
                )
            if DEFAULT in version["versionAliases"]:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f'Version {version["versionId"]} of "{family["name"]}" holds the default alias: move it to '
                    "another version before deleting this one.",
                )
            self._refuse_if_deployed(version)
            return self.fake.quick_operation(
                req,
                self.store.parent(project, location),
                "DeleteOperationMetadata",
                lambda: family["_versions"].pop(version["versionId"], None),
            )
