"""The thinnest faithful stand-in for the Kubernetes API, for ``coordination.k8s.io/v1`` Leases only.

It follows the API's documented behaviour for what the lease store relies on:

- ``/version`` (the server's version, and its clock in the ``Date`` header every answer carries);
- ``/apis/coordination.k8s.io/v1/namespaces/{ns}/leases`` GET (LeaseList, filtered by an equality-based
  ``labelSelector`` query parameter; 400 on a selector it cannot parse) and POST (create: 201, or 409 with a
  Status ``reason: AlreadyExists``);
- ``.../leases/{name}`` GET, PUT and DELETE (404 ``reason: NotFound`` when absent); PUT with
  ``metadata.resourceVersion`` is a compare-and-swap (409 ``reason: Conflict`` when stale), without one it is an
  unconditional update (Leases allow it); DELETE with a ``DeleteOptions`` body honours
  ``preconditions.resourceVersion`` and ``preconditions.uid`` (409 ``reason: Conflict``, "Precondition failed",
  when they no longer match) and answers a ``Status`` with ``status: Success``;
- every write bumps one store-wide ``resourceVersion``; ``uid`` and ``creationTimestamp`` are set on create
  and kept on update;
- bearer-token authentication (401 Status otherwise); MicroTime fields must carry exactly six fractional
  digits (the API server's RFC3339Micro layout) and ownerReferences need apiVersion, kind, name and uid
  (422 Invalid otherwise).

It serves one request per thread, and each check-and-write happens under one lock, as etcd's transactions do.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from hera_flows.local.standins import server

_PATH = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases(?:/([^/]+))?$")
_MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
_SELECTOR_TERM = re.compile(r"^(!?)([A-Za-z0-9./_-]+)(?:\s*(==|=|!=)\s*([A-Za-z0-9._-]*))?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GROUP_RESOURCE = "leases.coordination.k8s.io"


def parse_selector(selector: str) -> list[tuple[str, str, str | None]] | None:
    """``labelSelector`` as (op, key, value) terms with op in exists/!exists/=/!=; None when it does not parse.
    Set-based terms (``in``, ``notin``) are not needed by hera-flows and are refused like a malformed selector."""
    terms: list[tuple[str, str, str | None]] = []
    for raw in selector.split(","):
        raw = raw.strip()
        if not raw:
            continue
        match = _SELECTOR_TERM.match(raw)
        if not match or (match.group(1) and match.group(3)):
            return None
        negate, key, op, value = match.groups()
        if op is None:
            terms.append(("!exists" if negate else "exists", key, None))
        else:
            terms.append(("!=" if op == "!=" else "=", key, value))
    return terms


def selector_matches(terms: list[tuple[str, str, str | None]], labels: dict[str, str]) -> bool:
    for op, key, value in terms:
        if op == "exists" and key not in labels or op == "!exists" and key in labels:
            return False
        if op == "=" and labels.get(key) != value or op == "!=" and labels.get(key) == value:
            return False
    return True


def status(code: int, reason: str, message: str, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if name is not None:
        body["details"] = {"name": name, "group": "coordination.k8s.io", "kind": "leases"}
    return body


@dataclass
class FakeKubeAPI:
    host: str
    token: str
    leases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    resource_version: int = 100
    # Apply the next N writes but drop the connection instead of answering (a lost response).
    lose_responses: int = 0
    # The API server's clock against the real one (seconds): every answer's Date header follows it.
    clock_offset: float = 0.0

    def api_client(self) -> Any:
        """A configured ``kubernetes.client.ApiClient`` pointed at this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.host
        configuration.api_key = {"authorization": self.token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.host}}],
            "users": [{"name": "guard", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "guard", "namespace": namespace}}],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    # --- request handling (called by the HTTP handler) ----------------------------------------------------

    def _next_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path.split("?", 1)[0].rstrip("/") == "/version":  # readable by every authenticated identity
            return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-hera-flows-stand-in"}
        match = _PATH.match(path.split("?", 1)[0])
        if not match:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        namespace, name = match.group(1), match.group(2)
        query = urllib.parse.parse_qs(path.split("?", 1)[1] if "?" in path else "")
        with self.lock:
            self.requests.append((method, path))
            if name is None and method == "GET":
                terms = parse_selector((query.get("labelSelector") or [""])[0])
                if terms is None:
                    return 400, status(400, "BadRequest", "unable to parse requirement: invalid label selector")
                items = [lease for (ns, _), lease in sorted(self.leases.items())
                         if ns == namespace and selector_matches(terms, lease["metadata"].get("labels") or {})]
                return 200, {"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1",
                             "metadata": {"resourceVersion": str(self.resource_version)}, "items": items}
            if name is None and method == "POST":
                return self._create(namespace, body)
            if name is not None and method == "GET":
                lease = self.leases.get((namespace, name))
                if lease is None:
                    return 404, status(404, "NotFound", f'{GROUP_RESOURCE} "{name}" not found', name)
                return 200, lease
            if name is not None and method == "PUT":
                return self._update(namespace, name, body)
            if name is not None and method == "DELETE":
                return self._delete(namespace, name, body)
        return 405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _decode(self, body: bytes) -> tuple[dict[str, Any] | None, tuple[int, dict[str, Any]] | None]:
        try:
            obj = json.loads(body)
        except ValueError as exc:
            return None, (400, status(400, "BadRequest", f"error decoding JSON: {exc}"))
        if not isinstance(obj, dict):
            return None, (400, status(400, "BadRequest", "the body is not an object"))
        if obj.get("kind", "Lease") != "Lease" or obj.get("apiVersion", "coordination.k8s.io/v1") != \
                "coordination.k8s.io/v1":
            return None, (400, status(400, "BadRequest", "the body is not a coordination.k8s.io/v1 Lease"))
        spec = obj.get("spec") or {}
        for time_field in ("acquireTime", "renewTime"):
            value = spec.get(time_field)
            if value is not None and not (isinstance(value, str) and _MICRO_TIME.match(value)):
                return None, (400, status(400, "BadRequest", f'parsing time "{value}" as RFC3339Micro: cannot parse'))
        for int_field in ("leaseDurationSeconds", "leaseTransitions"):
            value = spec.get(int_field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return None, (400, status(400, "BadRequest", f"spec.{int_field}: expected an integer"))
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            if not all(isinstance(ref.get(k), str) and ref.get(k) for k in ("apiVersion", "kind", "name", "uid")):
                return None, (422, status(422, "Invalid", "metadata.ownerReferences: apiVersion, kind, name and uid "
                                                          "are required"))
        return obj, None

    def _create(self, namespace: str, body: bytes) -> tuple[int, dict[str, Any]]:
        obj, error = self._decode(body)
        if error:
            return error
        assert obj is not None
        metadata = obj.setdefault("metadata", {})
        name = metadata.get("name", "")
        if not name or not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
            return 422, status(422, "Invalid", f'Lease.coordination.k8s.io "{name}" is invalid: metadata.name', name)
        if metadata.get("namespace", namespace) != namespace:
            return 400, status(400, "BadRequest", "the namespace of the provided object does not match the "
                                                  "namespace sent on the request")
        if (namespace, name) in self.leases:
            return 409, status(409, "AlreadyExists", f'{GROUP_RESOURCE} "{name}" already exists', name)
        metadata.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_version(),
            creationTimestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        obj.update(kind="Lease", apiVersion="coordination.k8s.io/v1")
        self.leases[(namespace, name)] = obj
        return 201, obj

    def _delete(self, namespace: str, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        current = self.leases.get((namespace, name))
        if current is None:
            return 404, status(404, "NotFound", f'{GROUP_RESOURCE} "{name}" not found', name)
        try:
            options = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return 400, status(400, "BadRequest", f"error decoding DeleteOptions: {exc}")
        preconditions = (options or {}).get("preconditions") or {}
        meta = current["metadata"]
        wanted_rv = preconditions.get("resourceVersion")
        if wanted_rv and wanted_rv != meta["resourceVersion"]:
            return _precondition_failed(name, "ResourceVersion", wanted_rv, meta["resourceVersion"])
        wanted_uid = preconditions.get("uid")
        if wanted_uid and wanted_uid != meta["uid"]:
            return _precondition_failed(name, "UID", wanted_uid, meta["uid"])
        del self.leases[(namespace, name)]
        self._next_version()
        return 200, {**status(200, "", ""), "status": "Success", "message": None,
                     "details": {"name": name, "group": "coordination.k8s.io", "kind": "leases", "uid": meta["uid"]}}

    def _update(self, namespace: str, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        obj, error = self._decode(body)
        if error:
            return error
        assert obj is not None
        metadata = obj.setdefault("metadata", {})
        if metadata.get("name") != name:
            return 400, status(400, "BadRequest", "the name of the object does not match the name on the URL")
        current = self.leases.get((namespace, name))
        if current is None:
            return 404, status(404, "NotFound", f'{GROUP_RESOURCE} "{name}" not found', name)
        wanted = metadata.get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            return 409, status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {GROUP_RESOURCE} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                name,
            )
        metadata.update(
            namespace=namespace,
            uid=current["metadata"]["uid"],
            creationTimestamp=current["metadata"]["creationTimestamp"],
            resourceVersion=self._next_version(),
        )
        obj.update(kind="Lease", apiVersion="coordination.k8s.io/v1")
        self.leases[(namespace, name)] = obj
        return 200, obj


def _precondition_failed(name: str, field_name: str, wanted: str, actual: str) -> tuple[int, dict[str, Any]]:
    return 409, status(
        409, "Conflict",
        f'Operation cannot be fulfilled on {GROUP_RESOURCE} "{name}": Precondition failed: {field_name} in '
        f"precondition: {wanted}, {field_name} in object meta: {actual}",
        name,
    )


def _handler(api: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            import time
            from email.utils import formatdate

            return formatdate((timestamp or time.time()) + api.clock_offset, usegmt=True)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                code, payload = 401, status(401, "Unauthorized", "Unauthorized")
            else:
                code, payload = api.handle(self.command, self.path, body)
                with api.lock:
                    lose = api.lose_responses > 0 and self.command in ("POST", "PUT")
                    api.lose_responses -= 1 if lose else 0
                if lose:
                    self.close_connection = True
                    return
            data = json.dumps(payload).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


@pytest.fixture
def kube_api() -> Iterator[FakeKubeAPI]:
    """A fake Kubernetes API for Leases on 127.0.0.1 (free port); ``.api_client()`` gives a configured client."""
    token = uuid.uuid4().hex
    loopback = server.bind()
    api = FakeKubeAPI(host=server.url_of(loopback), token=token)
    loopback.RequestHandlerClass = _handler(api)
    stop = server.serve(loopback, "fake-kube-api")
    try:
        yield api
    finally:
        stop()
