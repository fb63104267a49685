"""A thin stand-in for a KServe model server (no Kubernetes here): real HTTP on 127.0.0.1, both protocols.

It follows the KServe V1 protocol (``POST /v1/models/<name>:predict`` with ``{"instances": [...]}`` ->
``{"predictions": [...]}``) and the Open Inference Protocol (``POST /v2/models/<name>/infer`` with ``inputs``
tensors -> ``{"model_name", "id", "outputs": [...]}``), plus their readiness/metadata GETs. Unknown models get
KServe's 404 ``{"error": "Model with name <name> does not exist."}``. Tests steer it through attributes:
``delay`` (seconds before answering), ``status`` (forced status code), ``malformed`` (200 with a body that
breaks the protocol), ``raw_body`` (exact 200 body), ``fail_first`` / ``fail_status`` (the first N inference
requests fail, e.g. a rolling update), ``prefix`` (a path prefix such as an ingress route), ``served_version``
(the version it reports: V2 ``model_version`` and the metadata's ``versions``; None reports none, as a runtime
without a configured version does). Every request is
recorded in ``requests`` (with the full path, prefix included) and ``fail(...)`` injects failures, the same way
for every stand-in (``base.StandIn``).

Used by ``make demo`` (the staging smoke test of a promotion) and by the tests (fixture ``kserve_server`` in
tests/support/fixtures_kserve.py).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from hera_flows.local.standins.base import Raw, RecordedRequest, Reply, StandIn


class KServeStandIn(StandIn):
    """The model server (requests, ``fail``, the server: ``base.StandIn``); ``url`` is its root."""

    serialized: ClassVar[bool] = False  # a ``delay`` must not hold up the other requests
    thread_name: ClassVar[str] = "kserve-stand-in"

    def __init__(self, model: str = "fraud-detector", *, prefix: str = "", delay: float = 0.0,
                 status: int | None = None, malformed: bool = False, raw_body: bytes | None = None,
                 fail_first: int = 0, fail_status: int = 500, served_version: str | None = None) -> None:
        super().__init__()
        self.served_version = served_version
        self.model, self.prefix, self.delay, self.status = model, prefix, delay, status
        self.malformed, self.raw_body = malformed, raw_body
        self.fail_first, self.fail_status = fail_first, fail_status
        self._inference_count = 0
        self._count_lock = threading.Lock()

    @property
    def inference_requests(self) -> list[RecordedRequest]:
        return self.requests_to("POST")

    def failure_body(self, code: int) -> Any:
        return {"error": f"injected status {code}"}

    def respond(self, request: RecordedRequest) -> Reply:
        status, body, content_type = self.answer(request.method, request.path, request.raw)
        return status, Raw(body, content_type), {}

    # --- protocol --------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        """(status, body, content type) for one request."""
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return self._json(404, {"error": f"no route for {path}"})
            path = path[len(self.prefix):]
        if method == "GET":
            return self._get(path)
        v1 = re.fullmatch(r"/v1/models/([^/:]+):predict", path)
        v2 = re.fullmatch(r"/v2/models/([^/]+)(?:/versions/[^/]+)?/infer", path)
        route = v1 or v2
        if route is None:
            return self._json(404, {"error": f"no route for {path}"})
        with self._count_lock:
            self._inference_count += 1
            count = self._inference_count
        if self.delay:
            time.sleep(self.delay)
        if count <= self.fail_first:
            return self._json(self.fail_status, {"error": "upstream connect error or disconnect/reset"})
        if self.status is not None:
            return self._json(self.status, {"error": f"forced status {self.status}"})
        name = route.group(1)
        if name != self.model:
            return self._json(404, {"error": f"Model with name {name} does not exist."})
        if self.raw_body is not None:
            return 200, self.raw_body, "application/json"
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            return self._json(400, {"error": "Unrecognized request format: invalid JSON"})
        return self._predict_v1(request) if v1 else self._infer_v2(request)

    def _get(self, path: str) -> tuple[int, bytes, str]:
        if path in ("/", "/v2/health/live", "/v2/health/ready"):
            return self._json(200, {"status": "alive"} if path == "/" else {"live": True, "ready": True})
        match = re.fullmatch(r"/v(1|2)/models/([^/]+?)(/ready)?", path)
        if not match or match.group(2) != self.model:
            return self._json(404, {"error": f"no route or model for {path}"})
        if match.group(1) == "1":
            return self._json(200, {"name": self.model, "ready": True})
        if match.group(3):
            return self._json(200, {"name": self.model, "ready": True})
        versions = [self.served_version] if self.served_version is not None else []
        return self._json(200, {"name": self.model, "versions": versions, "platform": "mlserver",
                                "inputs": [], "outputs": []})

    def _predict_v1(self, request: Any) -> tuple[int, bytes, str]:
        instances = request.get("instances") if isinstance(request, dict) else None
        if not isinstance(instances, list):
            return self._json(400, {"error": 'Expected "instances" to be a list'})
        if self.malformed:
            return self._json(200, {"prediction": "not a list"})
        return self._json(200, {"predictions": [i % 2 for i, _ in enumerate(instances)]})

    def _infer_v2(self, request: Any) -> tuple[int, bytes, str]:
        inputs = request.get("inputs") if isinstance(request, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return self._json(422, {"error": 'Expected "inputs" to be a non-empty list'})
        first = inputs[0]
        if not isinstance(first, dict) or not {"name", "shape", "datatype", "data"} <= set(first):
            return self._json(422, {"error": "each input needs name, shape, datatype and data"})
        batch = first["shape"][0] if first["shape"] else 1
        if self.malformed:
            return self._json(200, {"model_name": self.model, "outputs": [{"name": "output-0", "data": [1]}]})
        output = {"name": "output-0", "shape": [batch], "datatype": "INT64", "data": [0] * batch}
        answer: dict[str, Any] = {"model_name": self.model, "id": request.get("id") or str(uuid.uuid4()),
                                  "parameters": {}, "outputs": [output]}
        if self.served_version is not None:
            answer["model_version"] = self.served_version
        return self._json(200, answer)

    @staticmethod
    def _json(status: int, body: Any) -> tuple[int, bytes, str]:
        return status, json.dumps(body).encode(), "application/json"


def start_kserve(model: str = "fraud-detector") -> tuple[KServeStandIn, Callable[[], None]]:
    """Start the stand-in serving ``model`` on a free port; returns it and the function that stops it."""
    state = KServeStandIn(model=model).start()
    return state, state.stop
