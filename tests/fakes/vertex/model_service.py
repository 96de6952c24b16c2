"""ModelService: models:upload, get, list, patch, delete (one version per model: "1", alias "default").

Upload keeps the request's Model (containerSpec with imageUri, command, args, env, ports, predictRoute,
healthRoute; artifactUri; labels; anything else) and adds Vertex's output-only fields. For Vertex's
prebuilt TensorFlow images the artifact folder must hold exactly one saved_model.pb|pbtxt, checked in the
GCS emulator, as Vertex checks it. Delete is refused (FAILED_PRECONDITION) while the model is deployed or
being deployed. Model versions (parentModel, @2, aliases) are not emulated.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .containers import PREBUILT_TF
from .wire import ApiError, etag, new_id, now

if TYPE_CHECKING:
    from .server import Fake, Request

FILTER_FIELDS = {"displayName", "labels", "name", "createTime", "updateTime", "description"}
INPUT_FORMATS = ["jsonl", "bigquery", "csv", "tf-record", "tf-record-gzip", "file-list"]
OUTPUT_FORMATS = ["jsonl", "bigquery"]
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ModelService:
    def __init__(self, fake: "Fake") -> None:
        self.fake = fake
        self.store = fake.store

    def resolve(self, name: str) -> dict:
        """The stored model for a name that may carry a version (`@1`, `@default`)."""
        base, _, version = name.partition("@")
        model = self.store.get("models", base, "Model")
        if version and version not in (model["versionId"], *model["versionAliases"]):
            raise ApiError(
                "NOT_FOUND",
                f'Model "{model["name"]}@{version}" not found: only version '
                f"{model['versionId']} exists (fake-vertex keeps one version per model).",
            )
        return model

    def view(self, model: dict) -> dict:
        deployed = [dict(ref) for ref in model.get("_deployments", [])]
        return {**model, "deployedModels": deployed} if deployed else model

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
        if body.get("parentModel"):
            raise ApiError("UNIMPLEMENTED", "fake-vertex does not emulate model versions (parentModel).")
        artifact = request_model.get("artifactUri", "")
        if artifact and not artifact.startswith("gs://"):
            raise ApiError("INVALID_ARGUMENT", f"artifact_uri {artifact!r} must be a Cloud Storage URI (gs://).")
        if artifact and PREBUILT_TF.search(spec["imageUri"]) and self.fake.gcs.endpoint:
            self._check_saved_model(artifact)
        model_id = body.get("modelId") or new_id()
        if not _ID.match(model_id):
            raise ApiError("INVALID_ARGUMENT", f"model_id {model_id!r} must match [a-z0-9][a-z0-9-]{{0,62}}.")
        name = self.store.name(project, location, "models", model_id)
        stamp = now()
        model = {
            **request_model,
            "name": name,
            "versionId": "1",
            "versionAliases": ["default"],
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
            if name in self.store.resources["models"]:
                raise ApiError("ALREADY_EXISTS", f'Model "{name}" already exists.')
            return self.fake.quick_operation(
                req,
                name,
                "UploadModelOperationMetadata",
                lambda: self.store.put("models", model),
                "UploadModelResponse",
                {"model": name, "modelVersionId": "1"},
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
                view=self.view,
            )
        out: dict = {"models": page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    def patch(self, req: "Request", project: str, location: str, model: str) -> dict:
        body = req.json()
        mask = req.update_mask()
        with self.store.lock:
            stored = self.resolve(self.store.name(project, location, "models", model))
            for key in mask:
                if key not in ("displayName", "description", "labels"):
                    raise ApiError("INVALID_ARGUMENT", f"Updating {key!r} is not supported.")
                if key in body:
                    stored[key] = body[key]
                else:
                    stored.pop(key, None)
            stored["updateTime"] = now()
            stored["etag"] = etag()
            return self.view(stored)

    def delete(self, req: "Request", project: str, location: str, model: str) -> dict:
        name = self.store.name(project, location, "models", model)
        with self.store.lock:
            stored = self.resolve(name)
            if stored["_deployments"]:
                endpoints = sorted({ref["endpoint"] for ref in stored["_deployments"]})
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f'The Model "{stored["name"]}" is deployed or being deployed '
                    f"at the following Endpoint(s): {', '.join(endpoints)}.",
                )
            return self.fake.quick_operation(
                req,
                self.store.parent(project, location),
                "DeleteOperationMetadata",
                lambda: self.store.delete("models", stored["name"]),
            )
