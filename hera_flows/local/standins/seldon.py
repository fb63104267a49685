"""A thin stand-in for Seldon Core 2's inference mesh (no Kubernetes here): real HTTP on 127.0.0.1, V2 only.

Seldon Core 2 routes an Open Inference Protocol request by the ``Seldon-Model`` header, not by the path alone
(``POST /v2/models/<name>/infer`` with ``Seldon-Model: <name>``); a request without it does not reach the model.
Its answers name the model with Seldon's own generation suffix (``"model_name": "<name>_<n>"``, ``"model_version":
"<n>"``), which counts Model updates, not registry versions. Everything else — failure injection, recording,
``served_version`` — is the KServe stand-in's (``kserve.KServeStandIn``), which this extends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from hera_flows.local.standins.base import Raw, RecordedRequest, Reply
from hera_flows.local.standins.kserve import KServeStandIn

MODEL_HEADER = "Seldon-Model"


class SeldonMeshStandIn(KServeStandIn):
    """The mesh; ``generation`` is the Seldon Model generation its answers report."""

    thread_name: ClassVar[str] = "seldon-stand-in"

    def __init__(self, model: str = "fraud-detector", *, generation: int = 1, **options: Any) -> None:
        super().__init__(model, **options)
        self.generation = generation

    def respond(self, request: RecordedRequest) -> Reply:
        if request.method == "POST":
            routed = request.headers.get(MODEL_HEADER)
            if routed != self.model:
                return 404, {"error": f"no model routed by header {MODEL_HEADER}={routed!r}"}, {}
        status, body, content_type = self.answer(request.method, request.path, request.raw)
        if request.method == "POST" and status == 200 and self.raw_body is None:
            data = json.loads(body)
            data["model_name"] = f"{self.model}_{self.generation}"
            data["model_version"] = str(self.generation)
            body = json.dumps(data).encode()
        return status, Raw(body, content_type), {}


def start_seldon(model: str = "fraud-detector") -> tuple[SeldonMeshStandIn, Callable[[], None]]:
    """Start the mesh stand-in routing ``model`` on a free port; returns it and the function that stops it."""
    state = SeldonMeshStandIn(model=model).start()
    return state, state.stop
