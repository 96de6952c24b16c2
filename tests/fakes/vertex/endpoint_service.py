"""EndpointService (create, get, list, patch, delete, deployModel, undeployModel) and PredictionService
(predict, rawPredict) with Vertex's rules:

* deployModel validates the DeployedModel at once (the model exists, dedicated resources only, machine and
  accelerator, replica counts, traffic split summing to 100 with "0" naming the model being deployed),
  then answers a running operation; the model's container is started and the operation completes only
  when its health route answers 200, or fails (FAILED_PRECONDITION, with the container's log) when the
  process exits or is not healthy within containerSpec.deploymentTimeout (else the fake's default).
  An empty trafficSplit leaves the endpoint's split as it is (the new model gets no traffic).
* deployModel takes a Model name with a version (`@2`, `@alias`) or its default version; the DeployedModel
  names the Model without one and its `modelVersionId`.
* undeployModel: a deployed model that has traffic can be undeployed only when the request's trafficSplit
  moves its traffic elsewhere, or when it is the endpoint's last model; its process is stopped.
* delete of an endpoint with deployed (or deploying) models is FAILED_PRECONDITION.
* predict routes each request to one deployed model drawn by the traffic split's weights, POSTs
  {"instances", "parameters"} to its container's predict route and answers Vertex's PredictResponse.
  Container errors are passed on with the container's HTTP status and body text.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from .machines import check_dedicated
from .wire import ApiError, etag, now, status_name

if TYPE_CHECKING:
    from .server import Fake, Raw, Request

FILTER_FIELDS = {"displayName", "labels", "name", "createTime", "updateTime", "description", "endpoint"}
PAYLOAD_LIMIT = 1_572_864  # 1.5 MB: online prediction request limit of public endpoints


class EndpointService:
    def __init__(self, fake: "Fake") -> None:
        self.fake = fake
        self.store = fake.store

    # resources ---------------------------------------------------------------------------------------
    @staticmethod
    def view(endpoint: dict) -> dict:
        out = {k: v for k, v in endpoint.items() if k not in ("deployedModels", "trafficSplit")}
        if endpoint["deployedModels"]:
            out["deployedModels"] = endpoint["deployedModels"]
        if endpoint["trafficSplit"]:
            out["trafficSplit"] = endpoint["trafficSplit"]
        return out

    def create(self, req: "Request", project: str, location: str) -> dict:
        body = req.json()
        if not body.get("displayName"):
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: endpoint.display_name; Message: Required field is not set.",
            )
        if body.get("network") or body.get("privateServiceConnectConfig"):
            raise ApiError("UNIMPLEMENTED", "fake-vertex emulates public endpoints only.")
        endpoint_id = req.query.get("endpointId") or req.query.get("endpoint_id") or self.fake.new_id()
        if not endpoint_id.isdigit() and not endpoint_id.replace("-", "").isalnum():
            raise ApiError("INVALID_ARGUMENT", f"endpoint_id {endpoint_id!r} is not valid.")
        name = self.store.name(project, location, "endpoints", endpoint_id)
        stamp = now()
        endpoint = {
            **body,
            "name": name,
            "createTime": stamp,
            "updateTime": stamp,
            "etag": etag(),
            "deployedModels": [],
            "trafficSplit": {},
            "_pending": {},
        }
        with self.store.lock:
            if name in self.store.resources["endpoints"]:
                raise ApiError("ALREADY_EXISTS", f'Endpoint "{name}" already exists.')
            return self.fake.quick_operation(
                req,
                name,
                "CreateEndpointOperationMetadata",
                lambda: self.store.put("endpoints", endpoint),
                "Endpoint",
                self.view(endpoint),
            )

    def _endpoint(self, project: str, location: str, endpoint: str) -> dict:
        return self.store.get("endpoints", self.store.name(project, location, "endpoints", endpoint), "Endpoint")

    def get(self, req: "Request", project: str, location: str, endpoint: str) -> dict:
        with self.store.lock:
            return self.view(self._endpoint(project, location, endpoint))

    def list(self, req: "Request", project: str, location: str) -> dict:
        with self.store.lock:
            page, token = self.store.list(
                "endpoints",
                self.store.parent(project, location),
                req.query.get("filter"),
                FILTER_FIELDS,
                req.int_query("pageSize"),
                req.query.get("pageToken"),
                view=self._filter_view,
            )
        out: dict = {"endpoints": [self.view(e) for e in page]} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    @staticmethod
    def _filter_view(endpoint: dict) -> dict:  # `endpoint=<id>` is a documented filter field
        return {**endpoint, "endpoint": endpoint["name"].rsplit("/", 1)[-1]}

    def patch(self, req: "Request", project: str, location: str, endpoint: str) -> dict:
        body = req.json()
        mask = req.update_mask()
        with self.store.lock:
            stored = self._endpoint(project, location, endpoint)
            for key in mask:
                if key == "trafficSplit":
                    stored["trafficSplit"] = self._check_split(stored, body.get("trafficSplit") or {})
                elif key in ("displayName", "description", "labels"):
                    if key in body:
                        stored[key] = body[key]
                    else:
                        stored.pop(key, None)
                else:
                    raise ApiError("INVALID_ARGUMENT", f"Updating {key!r} is not supported.")
            stored["updateTime"] = now()
            stored["etag"] = etag()
            return self.view(stored)

    def delete(self, req: "Request", project: str, location: str, endpoint: str) -> dict:
        with self.store.lock:
            stored = self._endpoint(project, location, endpoint)
            busy = [d["id"] for d in stored["deployedModels"]] + list(stored["_pending"])
            if busy:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f'The Endpoint "{stored["name"]}" has deployed or deploying '
                    f"models ({', '.join(busy)}): undeploy them before deleting the Endpoint.",
                )
            return self.fake.quick_operation(
                req,
                self.store.parent(project, location),
                "DeleteOperationMetadata",
                lambda: self.store.delete("endpoints", stored["name"]),
            )

    # traffic -----------------------------------------------------------------------------------------
    @staticmethod
    def _check_split(endpoint: dict, split: dict, new_key: str | None = None) -> dict:
        """A validated traffic split: known DeployedModel ids (or "0" for the one being deployed), 0..100,
        summing to 100; empty is allowed (no traffic)."""
        known = {d["id"] for d in endpoint["deployedModels"]}
        if new_key is not None:
            known.add(new_key)
        out = {}
        for key, value in split.items():
            if key not in known:
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f'Traffic split refers to DeployedModel "{key}", which is not '
                    f'deployed to Endpoint "{endpoint["name"]}".',
                )
            try:
                percent = int(value)
            except (TypeError, ValueError):
                raise ApiError("INVALID_ARGUMENT", f"Traffic split value {value!r} is not an integer.") from None
            if not 0 <= percent <= 100:
                raise ApiError("INVALID_ARGUMENT", f"Traffic split value {percent} is not within [0, 100].")
            out[key] = percent
        if out and sum(out.values()) != 100:
            raise ApiError("INVALID_ARGUMENT", f"The traffic split must sum to 100, got {sum(out.values())}.")
        return out

    # deploy ------------------------------------------------------------------------------------------
    def deploy(self, req: "Request", project: str, location: str, endpoint: str) -> dict:
        body = req.json()
        requested = dict(body.get("deployedModel") or {})
        if not requested.get("model"):
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: deployed_model.model; Message: Required field is not set.",
            )
        with self.store.lock:
            stored = self._endpoint(project, location, endpoint)
            model = self.fake.model_service.resolve(requested["model"])
            if "dedicatedResources" not in requested:
                kind = "shared_resources" if "sharedResources" in requested else "automatic_resources"
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f'Model "{model["name"]}" does not support {kind}: deployed_model.dedicated_resources is required.',
                )
            dedicated = check_dedicated(requested["dedicatedResources"])
            split = self._check_split(stored, body.get("trafficSplit") or {}, new_key="0")
            deployed_id = self.fake.new_id()
            deployed = {
                **requested,
                "id": deployed_id,
                "model": model["name"],
                "modelVersionId": model["versionId"],
                "displayName": requested.get("displayName") or model["displayName"],
                "dedicatedResources": dedicated,
            }
            op, go_on = self.fake.start_operation(req, stored["name"], "DeployModelOperationMetadata")
            if not go_on:
                return op
            stored["_pending"][deployed_id] = deployed
            model["_deployments"].append({"endpoint": stored["name"], "deployedModelId": deployed_id})
        threading.Thread(
            target=self._deploy_worker,
            args=(op, stored, deployed, model, split),
            name=f"deploy-{deployed_id}",
            daemon=True,
        ).start()
        return op

    def _deploy_timeout(self, model: dict) -> float:
        raw = str((model.get("containerSpec") or {}).get("deploymentTimeout", "")).rstrip("s")
        try:
            return float(raw) if raw else self.fake.deploy_timeout
        except ValueError:
            return self.fake.deploy_timeout

    def _deploy_worker(self, op: dict, endpoint: dict, deployed: dict, model: dict, split: dict) -> None:
        deployed_id = deployed["id"]
        try:
            container = self.fake.launcher.start(
                deployed_id,
                "endpoint",
                model,
                project_number=endpoint["name"].split("/")[1],
                endpoint_id=endpoint["name"].rsplit("/", 1)[-1],
                machine_spec=deployed["dedicatedResources"]["machineSpec"],
            )
            self.fake.launcher.wait_healthy(container, self._deploy_timeout(model), self.fake.ops.cancel_event(op))
            with self.store.lock:
                final = {deployed_id if key == "0" else key: value for key, value in split.items()}
                live = {d["id"] for d in endpoint["deployedModels"]} | {deployed_id}
                if any(key not in live for key in final):
                    raise ApiError("ABORTED", "The traffic split refers to a DeployedModel undeployed meanwhile.")
                endpoint["_pending"].pop(deployed_id, None)
                deployed["createTime"] = now()
                deployed["status"] = {
                    "availableReplicaCount": deployed["dedicatedResources"]["minReplicaCount"],
                    "lastUpdateTime": deployed["createTime"],
                }
                endpoint["deployedModels"].append(deployed)
                if final:
                    endpoint["trafficSplit"] = final
                endpoint["updateTime"] = now()
                endpoint["etag"] = etag()
                self.fake.ops.succeed(op, "DeployModelResponse", {"deployedModel": deployed})
        except ApiError as error:
            self.fake.launcher.stop(deployed_id)
            with self.store.lock:
                endpoint["_pending"].pop(deployed_id, None)
                self._forget(model, endpoint["name"], deployed_id)
                self.fake.ops.fail(op, error)
        except Exception as exc:  # a bug of the fake: fail the operation, keep it visible
            self.fake.launcher.stop(deployed_id)
            with self.store.lock:
                endpoint["_pending"].pop(deployed_id, None)
                self._forget(model, endpoint["name"], deployed_id)
                self.fake.ops.fail(op, ApiError("INTERNAL", f"fake-vertex deploy error: {exc!r}"))

    @staticmethod
    def _forget(model: dict, endpoint_name: str, deployed_id: str) -> None:
        model["_deployments"] = [
            ref
            for ref in model["_deployments"]
            if (ref["endpoint"], ref["deployedModelId"]) != (endpoint_name, deployed_id)
        ]

    def undeploy(self, req: "Request", project: str, location: str, endpoint: str) -> dict:
        body = req.json()
        deployed_id = body.get("deployedModelId")
        if not deployed_id:
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: deployed_model_id; Message: Required field is not set.",
            )
        with self.store.lock:
            stored = self._endpoint(project, location, endpoint)
            if deployed_id in stored["_pending"]:
                raise ApiError("FAILED_PRECONDITION", f'DeployedModel "{deployed_id}" is being deployed.')
            deployed = next((d for d in stored["deployedModels"] if d["id"] == deployed_id), None)
            if deployed is None:
                raise ApiError("NOT_FOUND", f'DeployedModel "{deployed_id}" not found in Endpoint "{stored["name"]}".')
            others = [d for d in stored["deployedModels"] if d["id"] != deployed_id]
            requested = body.get("trafficSplit") or {}
            if requested:
                split = self._check_split(stored, requested)
                if split.get(deployed_id, 0) > 0:
                    raise ApiError(
                        "FAILED_PRECONDITION",
                        f'DeployedModel "{deployed_id}" would still have '
                        f"{split[deployed_id]}% of the traffic: the traffic split must give it none.",
                    )
                split.pop(deployed_id, None)
            else:
                current = stored["trafficSplit"].get(deployed_id, 0)
                if current > 0 and others:
                    raise ApiError(
                        "FAILED_PRECONDITION",
                        f'DeployedModel "{deployed_id}" has {current}% of the '
                        "Endpoint's traffic: undeploy it with a traffic split that moves its traffic "
                        "to the other DeployedModels.",
                    )
                split = {k: v for k, v in stored["trafficSplit"].items() if k != deployed_id}
            op, go_on = self.fake.start_operation(req, stored["name"], "UndeployModelOperationMetadata")
            if not go_on:
                return op
            stored["deployedModels"] = others
            stored["trafficSplit"] = split if others else {}
            stored["updateTime"] = now()
            stored["etag"] = etag()
            model = self.fake.model_service.version_of(deployed["model"], deployed["modelVersionId"])
            if model is not None:
                self._forget(model, stored["name"], deployed_id)
        self.fake.launcher.stop(deployed_id)
        return self.fake.ops.succeed(op, "UndeployModelResponse", {})

    # prediction --------------------------------------------------------------------------------------
    def _route(self, endpoint: dict) -> dict:
        """The DeployedModel a request goes to: drawn by the traffic split's weights."""
        live = {d["id"]: d for d in endpoint["deployedModels"]}
        weighted = [(key, value) for key, value in endpoint["trafficSplit"].items() if value > 0 and key in live]
        if not weighted:
            if not live:
                raise ApiError("FAILED_PRECONDITION", f'Endpoint "{endpoint["name"]}" has no deployed model.')
            raise ApiError(
                "FAILED_PRECONDITION",
                f'Endpoint "{endpoint["name"]}" has no traffic split: no DeployedModel receives traffic.',
            )
        keys, weights = zip(*weighted)
        return live[self.fake.rng.choices(keys, weights=weights)[0]]

    def _target(self, project: str, location: str, endpoint: str) -> tuple[dict, dict, object]:
        with self.store.lock:
            stored = self._endpoint(project, location, endpoint)
            deployed = self._route(stored)
            model = self.fake.model_service.version_of(deployed["model"], deployed["modelVersionId"]) or {}
            container = self.fake.launcher.running.get(deployed["id"])
        if container is None or not container.alive():
            raise ApiError("UNAVAILABLE", f'DeployedModel "{deployed["id"]}": the model server is not running.')
        return deployed, model, container

    def predict(self, req: "Request", project: str, location: str, endpoint: str) -> dict:
        if len(req.raw) > PAYLOAD_LIMIT:
            raise ApiError("INVALID_ARGUMENT", f"Request payload size exceeds the limit: {PAYLOAD_LIMIT} bytes.")
        body = req.json()
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise ApiError(
                "INVALID_ARGUMENT", "List of found errors:\t1.Field: instances; Message: Required field is not set."
            )
        deployed, model, container = self._target(project, location, endpoint)
        payload = {"instances": instances}
        if "parameters" in body:
            payload["parameters"] = body["parameters"]
        status, data = self._call(container, json.dumps(payload).encode(), "application/json")
        if status != 200:
            raise ApiError(status_name(status), data.decode(errors="replace"), http_status=status)
        try:
            answer = json.loads(data)
            predictions = answer["predictions"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(
                "INTERNAL", f"The model server's response is not JSON with a 'predictions' field: {data[:200]!r}"
            ) from None
        return {
            "predictions": predictions,
            "deployedModelId": deployed["id"],
            "model": deployed["model"],
            "modelDisplayName": model.get("displayName", ""),
            "modelVersionId": deployed["modelVersionId"],
        }

    def raw_predict(self, req: "Request", project: str, location: str, endpoint: str) -> "Raw":
        from .server import Raw

        if len(req.raw) > PAYLOAD_LIMIT:
            raise ApiError("INVALID_ARGUMENT", f"Request payload size exceeds the limit: {PAYLOAD_LIMIT} bytes.")
        deployed, model, container = self._target(project, location, endpoint)
        content_type = req.headers.get("Content-Type", "application/json")
        status, data = self._call(container, req.raw, content_type)
        return Raw(
            status,
            data,
            {
                "Content-Type": "application/json",
                "X-Vertex-AI-Deployed-Model-Id": deployed["id"],
                "X-Vertex-AI-Model": deployed["model"],
                "X-Vertex-AI-Model-Display-Name": model.get("displayName", ""),
                "X-Vertex-AI-Model-Version-Id": deployed["modelVersionId"],
            },
        )

    def _call(self, container, body: bytes, content_type: str) -> tuple[int, bytes]:
        try:
            status, data, _headers = self.fake.launcher.call(
                container,
                "POST",
                container.predict_route,
                body,
                {"Content-Type": content_type},
                timeout=self.fake.predict_timeout,
            )
        except OSError as exc:
            raise ApiError("UNAVAILABLE", f"The model server did not answer: {exc}") from None
        return status, data
