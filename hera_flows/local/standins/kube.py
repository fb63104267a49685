"""The thinnest faithful stand-in for the Kubernetes API, on 127.0.0.1 with a free port: one generic object
store (what the Lease store of the guards and GC writes) plus what the failure-triage steps read (workflows,
pods, events, pod logs).

Used by ``make demo`` (a failed training workflow to triage) and by the tests (fixtures ``kube_api`` and
``triage_kube`` in tests/support/fixtures_kube.py).

It follows the API's documented behaviour, for any namespaced resource path
(``/api/v1/namespaces/{ns}/{resource}[/{name}]``, ``/apis/{group}/{version}/namespaces/{ns}/{resource}[/{name}]``):

- ``/version`` (the server's version, and its clock in the ``Date`` header every answer carries);
- list (GET on the collection: ``<Kind>List``, filtered by equality-based ``labelSelector`` and ``fieldSelector``
  query parameters, e.g. ``involvedObject.name=<pod>`` for events; 400 on a selector it cannot parse; items in
  key order, as etcd returns them) and create (POST: 201, or 409 with a Status ``reason: AlreadyExists``);
- ``.../{name}`` GET, PUT and DELETE (404 ``reason: NotFound`` when absent); PUT with ``metadata.resourceVersion``
  is a compare-and-swap (409 ``reason: Conflict`` when stale), without one an unconditional update; DELETE with
  a ``DeleteOptions`` body honours ``preconditions.resourceVersion`` and ``preconditions.uid`` (409 ``reason:
  Conflict``, "Precondition failed", when they no longer match) and answers a ``Status`` with ``status:
  Success``;
- every write bumps one store-wide ``resourceVersion``; ``uid`` and ``creationTimestamp`` are set on create and
  kept on update; the body's ``apiVersion``/``kind`` must be the resource's, ownerReferences need apiVersion,
  kind, name and uid (422 Invalid otherwise), and Lease MicroTime fields exactly six fractional digits (the API
  server's RFC3339Micro layout);
- ``GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=&tailLines=&limitBytes=`` like the kubelet:
  ``tailLines`` first, then ``limitBytes`` bytes from the start of that tail; 404 for an unknown pod, 400 for a
  container without a log (it never started). A log can be a generated huge stream (``HugeLog``) that is never
  held in memory; ``ignore_log_limits`` makes the server stream it whole, like a server that ignores the
  parameters, to show the client stops reading by itself;
- bearer-token authentication (401 Status otherwise).

Objects the tests or the demo seed (``add_workflow``, ``add_template``, ``add_pod``, ``add``) are in the same
store the API writes, so a workflow stored either way is what a reader gets. Requests are recorded and failures
injected as for every stand-in (``base.StandIn``); ``lose_responses`` applies the next writes but drops the
connection instead of answering, ``clock_offset`` skews the server's clock. Each check-and-write happens under
one lock, as etcd's transactions do; logs stream outside it. Pods and events for the triage tests are built
from the shared fixtures (``pod_for_node``, ``event``).
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hera_flows.local.standins.base import DROP, ApiError, RecordedRequest, Reply, StandIn, Stream, timestamp

_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<namespace>[^/]+)"
                   r"/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<subresource>[^/]+))?$")
_MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
_SELECTOR_TERM = re.compile(r"^(!?)([A-Za-z0-9./_-]+)(?:\s*(==|=|!=)\s*([A-Za-z0-9._-]*))?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_EVENT_CLOCK = itertools.count(time.time_ns())
VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-hera-flows-stand-in"}
KINDS = {
    "configmaps": "ConfigMap", "events": "Event", "leases": "Lease", "pods": "Pod", "secrets": "Secret",
    "services": "Service", "cronworkflows": "CronWorkflow", "workflows": "Workflow",
    "workflowtemplates": "WorkflowTemplate",
}
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}
Selector = list[tuple[str, str, str | None]]


@dataclass(frozen=True)
class Resource:
    """A resource type: its API group ("" for the core group), version and plural name."""

    group: str
    version: str
    plural: str

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def kind(self) -> str:
        return KINDS.get(self.plural) or self.plural[:1].upper() + self.plural[1:].removesuffix("s")

    @property
    def group_resource(self) -> str:
        """How the API server names it in messages: ``leases.coordination.k8s.io``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Resource:
        """The resource an object (with ``apiVersion`` and ``kind``) belongs to."""
        group, _, version = str(obj.get("apiVersion", "v1")).rpartition("/")
        kind = str(obj["kind"])
        plural = next((p for p, k in KINDS.items() if k == kind), kind.lower() + "s")
        return cls(group, version, plural)


LEASES = Resource("coordination.k8s.io", "v1", "leases")
PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
WORKFLOWS = Resource("argoproj.io", "v1alpha1", "workflows")
WORKFLOW_TEMPLATES = Resource("argoproj.io", "v1alpha1", "workflowtemplates")


def parse_selector(selector: str, *, fields: bool = False) -> Selector | None:
    """A ``labelSelector`` (or, with ``fields``, a ``fieldSelector``) as (op, key, value) terms with op in
    exists/!exists/=/!=; None when it does not parse. Set-based terms (``in``, ``notin``) are not needed by
    hera-flows and are refused like a malformed selector."""
    terms: Selector = []
    for raw in selector.split(","):
        raw = raw.strip()
        if not raw:
            continue
        match = _SELECTOR_TERM.match(raw)
        if not match or (match.group(1) and match.group(3)) or (fields and match.group(3) is None):
            return None
        negate, key, op, value = match.groups()
        if op is None:
            terms.append(("!exists" if negate else "exists", key, None))
        else:
            terms.append(("!=" if op == "!=" else "=", key, value))
    return terms


def selector_matches(terms: Selector, labels: dict[str, str]) -> bool:
    for op, key, value in terms:
        if op == "exists" and key not in labels or op == "!exists" and key in labels:
            return False
        if op == "=" and labels.get(key) != value or op == "!=" and labels.get(key) == value:
            return False
    return True


def field_value(obj: dict[str, Any], path: str) -> str:
    """The value a field selector compares: the dotted ``path`` in ``obj`` as a string ("" when absent)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def status(code: int, reason: str, message: str, name: str | None = None,
           resource: Resource = LEASES) -> dict[str, Any]:
    """A failure ``Status`` object, as the API server answers errors."""
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
        body["details"] = {"name": name, "group": resource.group, "kind": resource.plural}
    return body


def failure(code: int, reason: str, message: str, name: str | None = None, resource: Resource = LEASES) -> ApiError:
    """The ``ApiError`` that answers ``status(...)``."""
    return ApiError(code, message, reason=reason, name=name, payload=status(code, reason, message, name, resource))


def _not_served() -> ApiError:
    return failure(404, "NotFound", "the server could not find the requested resource")


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


class KubeStandIn(StandIn):
    """The API server: objects (``objects``, with views such as ``leases`` and ``pods``), pod logs, the server."""

    serialized: ClassVar[bool] = False  # objects are read and written under ``lock``; logs stream outside it
    thread_name: ClassVar[str] = "kube-stand-in"

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token or uuid.uuid4().hex
        # (group, plural) -> (namespace, name) -> object
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.logs: dict[tuple[str, str, str], str | HugeLog] = {}  # (namespace, pod, container)
        self.log_bytes_sent: dict[tuple[str, str, str], int] = {}
        self.ignore_log_limits = False
        self.resource_version = 100
        # Apply the next N writes but drop the connection instead of answering (a lost response).
        self.lose_responses = 0
        # The API server's clock against the real one (seconds): every answer's Date header follows it.
        self.clock_offset = 0.0

    # --- the store and test set-up -----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.base_url

    def store(self, resource: Resource) -> dict[tuple[str, str], dict[str, Any]]:
        """The objects of ``resource`` by (namespace, name); changes to it are the server's state."""
        return self.objects.setdefault(resource.key, {})

    @property
    def leases(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.store(LEASES)

    @property
    def pods(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.store(PODS)

    @property
    def events(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.store(EVENTS)

    @property
    def workflows(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.store(WORKFLOWS)

    @property
    def templates(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.store(WORKFLOW_TEMPLATES)

    def add(self, obj: dict[str, Any]) -> None:
        """Store ``obj`` (with apiVersion, kind, metadata.namespace and metadata.name) as it is."""
        meta = obj["metadata"]
        with self.lock:
            self.store(Resource.of(obj))[(meta["namespace"], meta["name"])] = obj

    def add_workflow(self, workflow: dict[str, Any]) -> None:
        meta = workflow["metadata"]
        with self.lock:
            self.workflows[(meta["namespace"], meta["name"])] = workflow

    def add_template(self, template: dict[str, Any]) -> None:
        meta = template["metadata"]
        with self.lock:
            self.templates[(meta["namespace"], meta["name"])] = template

    def add_pod(self, pod: dict[str, Any], *, events: Sequence[dict[str, Any]] = (),
                logs: dict[str, str | HugeLog] | None = None) -> None:
        """Store ``pod``, replace its events by ``events`` and set its containers' ``logs``."""
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        with self.lock:
            self.pods[(namespace, name)] = pod
            for key in [k for k, e in self.events.items()
                        if k[0] == namespace and field_value(e, "involvedObject.name") == name]:
                del self.events[key]
            for item in events:
                self.events[(namespace, item["metadata"]["name"])] = item
            for container, text in (logs or {}).items():
                self.logs[(namespace, name, container)] = text

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

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
            "clusters": [{"name": "standin", "cluster": {"server": self.host}}],
            "users": [{"name": "standin", "user": {"token": self.token}}],
            "contexts": [{"name": "standin",
                          "context": {"cluster": "standin", "user": "standin", "namespace": namespace}}],
            "current-context": "standin",
        }
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    # --- request handling (hooks of base.StandIn) --------------------------------------------------------------

    def clock(self) -> float:
        return time.time() + self.clock_offset

    def failure_body(self, code: int) -> Any:
        return status(code, REASONS.get(code, "InternalError" if code >= 500 else "BadRequest"),
                      f"injected failure (HTTP {code})")

    def error_reply(self, error: ApiError) -> Reply:
        if error.payload is not None:
            return error.status, error.payload, {}
        return error.status, status(error.status, error.reason or REASONS.get(error.status, ""), str(error.message)), {}

    def respond(self, request: RecordedRequest) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise failure(401, "Unauthorized", "Unauthorized")
        if request.method == "GET" and request.path.rstrip("/") == "/version":  # readable by every identity
            return 200, VERSION, {}
        match = _PATH.match(request.path)
        if not match:
            raise _not_served()
        resource = Resource(match["group"] or "", match["version"] or match["core"], match["resource"])
        namespace, name, subresource = match["namespace"], match["name"], match["subresource"]
        if subresource is not None:
            if resource.key == PODS.key and subresource == "log" and request.method == "GET":
                return self._log(namespace, name, request.query)
            raise _not_served()
        with self.lock:
            try:
                reply = self._serve_object(request, resource, namespace, name)
            except ApiError as error:
                reply = self.error_reply(error)
            if request.method in ("POST", "PUT") and self.lose_responses > 0:
                self.lose_responses -= 1
                return reply[0], DROP, {}
        return reply

    def _serve_object(self, request: RecordedRequest, resource: Resource, namespace: str, name: str | None) -> Reply:
        if name is None and request.method == "GET":
            return self._list(resource, namespace, request.query)
        if name is None and request.method == "POST":
            return self._create(resource, namespace, request.raw)
        if name is not None and request.method == "GET":
            found = self.store(resource).get((namespace, name))
            if found is None:
                raise self._absent(resource, name)
            return 200, found, {}
        if name is not None and request.method == "PUT":
            return self._update(resource, namespace, name, request.raw)
        if name is not None and request.method == "DELETE":
            return self._delete(resource, namespace, name, request.raw)
        raise failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    @staticmethod
    def _absent(resource: Resource, name: str) -> ApiError:
        return failure(404, "NotFound", f'{resource.group_resource} "{name}" not found', name, resource)

    def _next_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def _list(self, resource: Resource, namespace: str, query: dict[str, list[str]]) -> Reply:
        labels = parse_selector((query.get("labelSelector") or [""])[0])
        if labels is None:
            raise failure(400, "BadRequest", "unable to parse requirement: invalid label selector")
        fields = parse_selector((query.get("fieldSelector") or [""])[0], fields=True)
        if fields is None:
            raise failure(400, "BadRequest", "invalid field selector")
        items = [
            obj for (ns, _), obj in sorted(self.store(resource).items(), key=lambda item: item[0])
            if ns == namespace and selector_matches(labels, obj.get("metadata", {}).get("labels") or {})
            and selector_matches(fields, {key: field_value(obj, key) for _, key, _ in fields})
        ]
        return 200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                     "metadata": {"resourceVersion": str(self.resource_version)}, "items": items}, {}

    def _decode(self, resource: Resource, raw: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise failure(400, "BadRequest", f"error decoding JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise failure(400, "BadRequest", "the body is not an object")
        if obj.get("kind", resource.kind) != resource.kind or \
                obj.get("apiVersion", resource.api_version) != resource.api_version:
            raise failure(400, "BadRequest", f"the body is not a {resource.api_version} {resource.kind}")
        if resource.key == LEASES.key:
            self._check_lease_spec(obj.get("spec") or {})
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            if not all(isinstance(ref.get(k), str) and ref.get(k) for k in ("apiVersion", "kind", "name", "uid")):
                raise failure(422, "Invalid", "metadata.ownerReferences: apiVersion, kind, name and uid are required")
        return obj

    @staticmethod
    def _check_lease_spec(spec: dict[str, Any]) -> None:
        for time_field in ("acquireTime", "renewTime"):
            value = spec.get(time_field)
            if value is not None and not (isinstance(value, str) and _MICRO_TIME.match(value)):
                raise failure(400, "BadRequest", f'parsing time "{value}" as RFC3339Micro: cannot parse')
        for int_field in ("leaseDurationSeconds", "leaseTransitions"):
            value = spec.get(int_field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise failure(400, "BadRequest", f"spec.{int_field}: expected an integer")

    def _create(self, resource: Resource, namespace: str, raw: bytes) -> Reply:
        obj = self._decode(resource, raw)
        metadata = obj.setdefault("metadata", {})
        name = metadata.get("name", "")
        if not name or not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
            qualified = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
            raise failure(422, "Invalid", f'{qualified} "{name}" is invalid: metadata.name', name, resource)
        if metadata.get("namespace", namespace) != namespace:
            raise failure(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                             "sent on the request")
        store = self.store(resource)
        if (namespace, name) in store:
            raise failure(409, "AlreadyExists", f'{resource.group_resource} "{name}" already exists', name, resource)
        metadata.update(namespace=namespace, uid=str(uuid.uuid4()), resourceVersion=self._next_version(),
                        creationTimestamp=timestamp())
        obj.update(kind=resource.kind, apiVersion=resource.api_version)
        store[(namespace, name)] = obj
        return 201, obj, {}

    def _update(self, resource: Resource, namespace: str, name: str, raw: bytes) -> Reply:
        obj = self._decode(resource, raw)
        metadata = obj.setdefault("metadata", {})
        if metadata.get("name") != name:
            raise failure(400, "BadRequest", "the name of the object does not match the name on the URL")
        store = self.store(resource)
        current = store.get((namespace, name))
        if current is None:
            raise self._absent(resource, name)
        wanted = metadata.get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise failure(409, "Conflict", f'Operation cannot be fulfilled on {resource.group_resource} "{name}": the '
                                           "object has been modified; please apply your changes to the latest "
                                           "version and try again", name, resource)
        metadata.update(namespace=namespace, uid=current["metadata"]["uid"],
                        creationTimestamp=current["metadata"]["creationTimestamp"],
                        resourceVersion=self._next_version())
        obj.update(kind=resource.kind, apiVersion=resource.api_version)
        store[(namespace, name)] = obj
        return 200, obj, {}

    def _delete(self, resource: Resource, namespace: str, name: str, raw: bytes) -> Reply:
        store = self.store(resource)
        current = store.get((namespace, name))
        if current is None:
            raise self._absent(resource, name)
        try:
            options = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise failure(400, "BadRequest", f"error decoding DeleteOptions: {exc}") from None
        preconditions = (options or {}).get("preconditions") or {}
        meta = current["metadata"]
        for field_name, wanted, actual in (("ResourceVersion", preconditions.get("resourceVersion"),
                                            meta.get("resourceVersion")),
                                           ("UID", preconditions.get("uid"), meta.get("uid"))):
            if wanted and wanted != actual:
                raise failure(409, "Conflict", f'Operation cannot be fulfilled on {resource.group_resource} "{name}": '
                                               f"Precondition failed: {field_name} in precondition: {wanted}, "
                                               f"{field_name} in object meta: {actual}", name, resource)
        del store[(namespace, name)]
        self._next_version()
        return 200, {**status(200, "", ""), "status": "Success", "message": None,
                     "details": {"name": name, "group": resource.group, "kind": resource.plural,
                                 "uid": meta.get("uid")}}, {}

    def _log(self, namespace: str, pod: str, query: dict[str, list[str]]) -> Reply:
        container = query.get("container", ["main"])[0]
        with self.lock:
            exists = (namespace, pod) in self.pods
            log = self.logs.get((namespace, pod, container))
        if not exists:
            raise self._absent(PODS, pod)
        if log is None:
            raise failure(400, "BadRequest", f'container "{container}" in pod "{pod}" is waiting to start: trying '
                                             "and failing to pull image")
        tail = None if self.ignore_log_limits or "tailLines" not in query else int(query["tailLines"][0])
        limit = None if self.ignore_log_limits or "limitBytes" not in query else int(query["limitBytes"][0])
        if isinstance(log, str):
            lines = log.encode().splitlines(keepends=True)
            chunks: Iterator[bytes] = iter([b"".join(lines[-tail:] if tail is not None else lines)])
        else:
            chunks = log.chunks(tail)
        key = (namespace, pod, container)

        def limited() -> Iterator[bytes]:
            given = 0
            for chunk in chunks:
                if limit is not None:
                    if given >= limit:
                        return
                    chunk = chunk[: limit - given]
                given += len(chunk)
                yield chunk

        def sent(total: int) -> None:
            with self.lock:
                self.log_bytes_sent[key] = total

        return 200, Stream("text/plain", limited(), sent), {}


def start_triage_kube() -> tuple[KubeStandIn, Callable[[], None]]:
    """Start a stand-in on a free port (the demo's cluster to triage); returns it and the function that stops it."""
    api = KubeStandIn().start()
    return api, api.stop


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


def event(pod: dict[str, Any], reason: str, message: str, *, type_: str = "Warning",
          count: int = 1) -> dict[str, Any]:
    """An Event about ``pod`` as the kubelet reports it."""
    meta = pod["metadata"]
    return {
        "apiVersion": "v1", "kind": "Event",
        # named like the kubelet names events (<object>.<creation time in ns, hex>): a list is in creation order
        "metadata": {"name": f"{meta['name']}.{next(_EVENT_CLOCK):x}", "namespace": meta["namespace"]},
        "involvedObject": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta["uid"], "fieldPath": "spec.containers{main}"},
        "reason": reason, "message": message, "type": type_, "count": count,
        "firstTimestamp": "2026-11-22T09:00:07Z", "lastTimestamp": "2026-11-22T09:12:40Z",
        "source": {"component": "kubelet"},
    }
