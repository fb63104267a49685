"""A thin stand-in for the Kubernetes API paths the triage guard and context steps call, on 127.0.0.1.

Used by ``make demo`` (a failed training workflow to triage) and by the tests (fixture ``triage_kube`` in
tests/support/fixtures_triage_kube.py).

Served (read-only, bearer token, JSON, 404 ``Status`` for what does not exist), exactly the requests the
``kubernetes`` client sends for the calls in ``hera_flows/steps/triage/kube.py``:

    GET /apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows/{name}
    GET /apis/argoproj.io/v1alpha1/namespaces/{ns}/workflowtemplates/{name}
    GET /api/v1/namespaces/{ns}/pods?labelSelector=k=v[,k=v]
    GET /api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name=<pod>
    GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=&tailLines=&limitBytes=

Logs follow the kubelet: ``tailLines`` first, then ``limitBytes`` bytes from the start of that tail. A log can be
a generated huge stream (``HugeLog``) that is never held in memory; ``ignore_log_limits`` makes the server
stream it whole, like a server that ignores the parameters, to show the client stops reading by itself.
Objects are built from the shared fixtures (``pod_for_node``, ``event``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hera_flows.local.standins import server


@dataclass
class HugeLog:
    """``lines`` generated log lines (``line_bytes`` each, newline included), then ``ending`` (e.g. a traceback)."""

    lines: int
    line_bytes: int = 100
    ending: str = ""

    def line(self, i: int) -> bytes:
        head = f"step {i} loss=0.{i % 997:03d} "
        return (head + "x" * (self.line_bytes - len(head) - 1) + "\n").encode()

    @property
    def size(self) -> int:
        return self.lines * self.line_bytes + len(self.ending.encode())

    def chunks(self, tail_lines: int | None) -> Iterator[bytes]:
        ending = self.ending.encode()
        ending_lines = ending.count(b"\n")
        start = 0
        if tail_lines is not None:
            start = max(0, self.lines - max(0, tail_lines - ending_lines))
            if tail_lines < ending_lines:
                yield b"".join(ending.splitlines(keepends=True)[-tail_lines:]) if tail_lines else b""
                return
        batch: list[bytes] = []
        for i in range(start, self.lines):
            batch.append(self.line(i))
            if len(batch) == 1000:
                yield b"".join(batch)
                batch = []
        if batch:
            yield b"".join(batch)
        yield ending


@dataclass
class TriageKubeAPI:
    host: str
    token: str
    workflows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    templates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    logs: dict[tuple[str, str, str], str | HugeLog] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    log_bytes_sent: dict[tuple[str, str, str], int] = field(default_factory=dict)
    ignore_log_limits: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- test set-up -------------------------------------------------------------------------------------

    def add_workflow(self, workflow: dict[str, Any]) -> None:
        meta = workflow["metadata"]
        self.workflows[(meta["namespace"], meta["name"])] = workflow

    def add_template(self, template: dict[str, Any]) -> None:
        meta = template["metadata"]
        self.templates[(meta["namespace"], meta["name"])] = template

    def add_pod(self, pod: dict[str, Any], *, events: list[dict[str, Any]] = (), logs: dict[str, Any] | None = None) -> None:
        meta = pod["metadata"]
        self.pods[(meta["namespace"], meta["name"])] = pod
        self.events[(meta["namespace"], meta["name"])] = list(events)
        for container, text in (logs or {}).items():
            self.logs[(meta["namespace"], meta["name"], container)] = text

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.host}}],
            "users": [{"name": "triage", "user": {"token": self.token}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "triage"}}],
            "current-context": "standin",
        }
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    def api_client(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.host
        configuration.api_key = {"authorization": self.token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    # --- serving -----------------------------------------------------------------------------------------

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:4] == ["apis", "argoproj.io", "v1alpha1", "namespaces"] and len(parts) == 7:
            store = {"workflows": self.workflows, "workflowtemplates": self.templates}.get(parts[5])
            if store is None:
                return 404, _status(404, "NotFound", "the server could not find the requested resource")
            found = store.get((parts[4], parts[6]))
            if found is None:
                return 404, _status(404, "NotFound", f'{parts[5]}.argoproj.io "{parts[6]}" not found')
            return 200, found
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 5 and parts[4] == "pods":
            wanted = dict(item.split("=", 1) for item in query.get("labelSelector", [""])[0].split(",") if item)
            items = [p for (ns, _), p in sorted(self.pods.items()) if ns == parts[3]
                     and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 5 and parts[4] == "events":
            selector = query.get("fieldSelector", [""])[0]
            name = selector.removeprefix("involvedObject.name=")
            return 200, {"kind": "EventList", "apiVersion": "v1", "metadata": {},
                         "items": self.events.get((parts[3], name), [])}
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 6 and parts[4] == "pods":
            pod = self.pods.get((parts[3], parts[5]))
            if pod is None:
                return 404, _status(404, "NotFound", f'pods "{parts[5]}" not found')
            return 200, pod
        return 404, _status(404, "NotFound", "the server could not find the requested resource")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _handler(api: TriageKubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, code: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            with api.lock:
                api.requests.append((url.path, query))
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                self._json(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            parts = url.path.strip("/").split("/")
            if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 7 and parts[6] == "log":
                self._log(parts[3], parts[5], query)
                return
            code, payload = api.route(url.path, query)
            self._json(code, payload)

        def _log(self, namespace: str, pod: str, query: dict[str, list[str]]) -> None:
            if (namespace, pod) not in api.pods:
                self._json(404, _status(404, "NotFound", f'pods "{pod}" not found'))
                return
            container = query.get("container", ["main"])[0]
            log = api.logs.get((namespace, pod, container))
            if log is None:
                self._json(400, _status(400, "BadRequest", f'container "{container}" in pod "{pod}" is waiting '
                                                            "to start: trying and failing to pull image"))
                return
            tail = None if api.ignore_log_limits or "tailLines" not in query else int(query["tailLines"][0])
            limit = None if api.ignore_log_limits or "limitBytes" not in query else int(query["limitBytes"][0])
            if isinstance(log, str):
                lines = log.encode().splitlines(keepends=True)
                chunks: Iterator[bytes] = iter([b"".join(lines[-tail:] if tail is not None else lines)])
            else:
                chunks = log.chunks(tail)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")  # body delimited by closing, like a streamed log
            self.end_headers()
            sent = 0
            key = (namespace, pod, container)
            try:
                for chunk in chunks:
                    if limit is not None:
                        chunk = chunk[: max(0, limit - sent)]
                    if not chunk:
                        if limit is not None and sent >= limit:
                            break
                        continue
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    with api.lock:
                        api.log_bytes_sent[key] = sent
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    return Handler


def start_triage_kube() -> tuple[TriageKubeAPI, Callable[[], None]]:
    """Start the stand-in on a free port; returns it and the function that stops it."""
    loopback = server.bind()
    api = TriageKubeAPI(host=server.url_of(loopback), token=uuid.uuid4().hex)
    loopback.RequestHandlerClass = _handler(api)
    return api, server.serve(loopback, "triage-kube-stand-in")


# --- objects built from the shared fixtures -------------------------------------------------------------------


def pod_for_node(workflow: dict[str, Any], node_id: str, *, main: dict[str, Any],
                 conditions: list[dict[str, Any]] | None = None, phase: str | None = None) -> dict[str, Any]:
    """The pod Argo creates for ``node_id`` (pod-name-format v2: ``<workflow>-<template>-<node hash>``)."""
    meta = workflow["metadata"]
    node = workflow["status"]["nodes"][node_id]
    name = f"{meta['name']}-{node['templateName']}-{node_id.rsplit('-', 1)[1]}"
    statuses = [{"name": "main", "image": main.get("image", "registry.example.com/ml/train:1.0"),
                 "restartCount": 0, "ready": False, "state": main["state"]}]
    if "terminated" in main["state"]:
        statuses.append({"name": "wait", "image": "quay.io/argoproj/argoexec:v3.7.18", "restartCount": 0,
                         "ready": False, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "labels": {"workflows.argoproj.io/workflow": meta["name"], "workflows.argoproj.io/completed": "true"},
            "annotations": {"workflows.argoproj.io/node-id": node_id,
                            "workflows.argoproj.io/node-name": node["name"]},
        },
        "spec": {"containers": [{"name": "wait"}, {"name": "main"}], "nodeName": node.get("hostNodeName", "")},
        "status": {"phase": phase or ("Failed" if "terminated" in main["state"] else "Pending"),
                   "conditions": conditions or [], "containerStatuses": statuses},
    }


def event(pod: dict[str, Any], reason: str, message: str, *, type_: str = "Warning", count: int = 1) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
        "involvedObject": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta["uid"], "fieldPath": "spec.containers{main}"},
        "reason": reason, "message": message, "type": type_, "count": count,
        "firstTimestamp": "2026-11-22T09:00:07Z", "lastTimestamp": "2026-11-22T09:12:40Z",
        "source": {"component": "kubelet"},
    }
