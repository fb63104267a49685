"""A thin stand-in for a KServe model server (no Kubernetes here): real HTTP on 127.0.0.1, both protocols.

It follows the KServe V1 protocol (``POST /v1/models/<name>:predict`` with ``{"instances": [...]}`` ->
``{"predictions": [...]}``) and the Open Inference Protocol (``POST /v2/models/<name>/infer`` with ``inputs``
tensors -> ``{"model_name", "id", "outputs": [...]}``), plus their readiness/metadata GETs. Unknown models get
KServe's 404 ``{"error": "Model with name <name> does not exist."}``. Tests steer it through attributes:
``delay`` (seconds before answering), ``status`` (forced status code), ``malformed`` (200 with a body that
breaks the protocol), ``raw_body`` (exact 200 body), ``fail_first`` / ``fail_status`` (the first N inference
requests fail, e.g. a rolling update), ``prefix`` (a path prefix such as an ingress route). Every request is
recorded in ``requests``.

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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from hera_flows.local.standins import server


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class KServeStandIn:
    model: str = "fraud-detector"
    prefix: str = ""
    delay: float = 0.0
    status: int | None = None
    malformed: bool = False
    raw_body: bytes | None = None
    fail_first: int = 0
    fail_status: int = 500
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""
    _inference_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def inference_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    # --- protocol --------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        """(status, body, content type) for one request."""
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return self._json(404, {"error": f"no route for {path}"})
            path = path[len(self.prefix):]
        if method == "GET":
            return self._get(path)
        v1 = re.fullmatch(r"/v1/models/([^/:]+):predict", path)
        v2 = re.fullmatch(r"/v2/models/([^/]+)(?:/versions/[^/]+)?/infer", path)
        if not (v1 or v2):
            return self._json(404, {"error": f"no route for {path}"})
        with self._lock:
            self._inference_count += 1
            count = self._inference_count
        if self.delay:
            time.sleep(self.delay)
        if count <= self.fail_first:
            return self._json(self.fail_status, {"error": "upstream connect error or disconnect/reset"})
        if self.status is not None:
            return self._json(self.status, {"error": f"forced status {self.status}"})
        name = (v1 or v2).group(1)
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
        return self._json(200, {"name": self.model, "versions": [], "platform": "mlserver",
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
        return self._json(200, {"model_name": self.model, "model_version": "1",
                                "id": request.get("id") or str(uuid.uuid4()), "parameters": {},
                                "outputs": [output]})

    @staticmethod
    def _json(status: int, body: Any) -> tuple[int, bytes, str]:
        return status, json.dumps(body).encode(), "application/json"


def _handler(server_state: KServeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server_state.requests.append(RecordedRequest(method, self.path, dict(self.headers.items()), body))
            status, payload, content_type = server_state.handle(method, self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

    return Handler


def start_kserve(model: str = "fraud-detector") -> tuple[KServeStandIn, Callable[[], None]]:
    """Start the stand-in serving ``model`` on a free port; returns it and the function that stops it."""
    state = KServeStandIn(model=model)
    loopback = server.bind(_handler(state))
    state.url = server.url_of(loopback)
    return state, server.serve(loopback, "kserve-stand-in")
