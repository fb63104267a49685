"""Small typed builders for Argo Events EventSources and Sensors.

Hera 7.1's ``hera.events.models`` mirror the Go structs without Go's inlining and emit shapes Argo Events
rejects (a nested ``webhookContext``, a base64 ``source.resource``), so these builders emit the documented
shape directly. What they encode from Argo Events' source (docs/upstream-facts.md#events-sensor):

- data filter values are unanchored regexes, so every value is written as ``^(a|b)$`` with escaping;
- ``rateLimit.requestsPerUnit`` must be >= 1 (0 panics the sensor), and the limiter delays, never drops;
- ``atLeastOnce: true`` so trigger retries apply and nothing waiting on the rate limit is acked early;
- a WorkflowTemplate is submitted as a Workflow with ``workflowTemplateRef`` and event fields mapped into
  ``spec.arguments.parameters.N.value`` (``submit-from`` cannot pass parameters);
- webhook header names arrive Go-canonicalised with array values: ``header.X-Mlflow-Signature.0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hera_flows.blocks import security
from hera_flows.config import NetworkSource, RateLimit, SecretRef
from hera_flows.steps.event_data import canonical_header

EVENTS_API = "argoproj.io/v1alpha1"
# Every EventSource and Sensor pod serves Prometheus metrics on this port (Argo Events' controllers set it).
METRICS_PORT = 7777
# Webhook bodies travel in an annotation of the Workflow, and all annotations of an object share 256 KiB.
REGISTRY_PAYLOAD_LIMIT = 64 * 1024  # an MLflow or Databricks registry event is a few hundred bytes
ALERT_PAYLOAD_LIMIT = 192 * 1024  # an Alertmanager group: bound it with max_alerts in the webhook receiver
# Small pods: an EventSource or Sensor only forwards events.
EVENT_POD_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def anchored(*alternatives: str) -> str:
    """An anchored RE2 regex matching exactly one of ``alternatives`` (Argo data filters are unanchored)."""
    escaped = [re.escape(value) for value in alternatives]
    return f"^({'|'.join(escaped)})$" if len(escaped) > 1 else f"^{escaped[0]}$"


def header_key(name: str) -> str:
    """The sensor dataKey of the first value of a webhook header."""
    return f"header.{canonical_header(name)}.0"


# ---------------------------------------------------------------------------------------------------------
# EventSources


@dataclass(frozen=True)
class WebhookEndpoint:
    """One webhook endpoint of an EventSource; ``auth_secret`` makes Argo Events demand a bearer token."""

    event_name: str
    port: int
    endpoint: str
    auth_secret: SecretRef | None = None
    method: str = "POST"
    max_payload_size: int = 1_048_576


def _pod_template(service_account: str) -> dict[str, Any]:
    """Restricted pod; /tmp stays writable because the argoWorkflow trigger writes the Workflow to a temp file
    before it runs `argo submit`, and the root filesystem is read-only."""
    return {
        "serviceAccountName": service_account,
        "securityContext": security.pod_security_context_dict(),
        "container": {
            "securityContext": security.container_security_context_dict(),
            "resources": EVENT_POD_RESOURCES,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def _metadata(name: str, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {**security.MANAGED_BY, **(labels or {})}}


def webhook_event_source(
    name: str, namespace: str, endpoints: list[WebhookEndpoint], *, event_bus: str
) -> dict[str, Any]:
    """An EventSource serving ``endpoints`` and the Service that exposes their ports inside the cluster."""
    ports = sorted({e.port for e in endpoints})
    webhook: dict[str, Any] = {}
    for e in endpoints:
        spec: dict[str, Any] = {
            "port": str(e.port),
            "endpoint": e.endpoint,
            "method": e.method,
            # Not used by the webhook server; the schema requires it, so it documents where to send events.
            "url": f"http://{name}-eventsource-svc.{namespace}.svc:{e.port}{e.endpoint}",
            "maxPayloadSize": e.max_payload_size,
        }
        if e.auth_secret is not None:
            spec["authSecret"] = {"name": e.auth_secret.name, "key": e.auth_secret.key}
        webhook[e.event_name] = spec
    return {
        "apiVersion": EVENTS_API,
        "kind": "EventSource",
        "metadata": _metadata(name, namespace),
        "spec": {
            "eventBusName": event_bus,
            "template": _pod_template(security.EVENTSOURCE_SA),
            "service": {"ports": [{"name": f"http-{p}", "port": p, "targetPort": p} for p in ports]},
            "webhook": webhook,
        },
    }


# ---------------------------------------------------------------------------------------------------------
# Sensors


@dataclass(frozen=True)
class DataFilter:
    """Pass an event only when the string at ``path`` matches one of ``values`` exactly."""

    path: str
    values: tuple[str, ...]

    def render(self) -> dict[str, Any]:
        return {"path": self.path, "type": "string", "value": [anchored(*self.values)]}


@dataclass(frozen=True)
class Dependency:
    name: str
    event_source: str
    event_name: str
    filters: tuple[DataFilter | RegexFilter, ...] = ()

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "eventSourceName": self.event_source, "eventName": self.event_name}
        if self.filters:
            out["filters"] = {"data": [f.render() for f in self.filters], "dataLogicalOperator": "and"}
        return out


@dataclass(frozen=True)
class FromEvent:
    """A workflow parameter taken from the event at ``data_key`` (gjson path); ``default`` when absent."""

    data_key: str
    default: str | None = ""


@dataclass(frozen=True)
class FromContext:
    """A value from the event's context (``contextKey``): e.g. ``time``, when the EventSource received the event
    (RFC 3339, set by the EventSource, not by the sender; docs/upstream-facts.md#events-webhook)."""

    context_key: str


@dataclass(frozen=True)
class Constant:
    value: str


ParamSource = FromEvent | FromContext | Constant


def _source(dependency: str, source: FromEvent | FromContext) -> dict[str, Any]:
    if isinstance(source, FromContext):
        return {"dependencyName": dependency, "contextKey": source.context_key}
    src: dict[str, Any] = {"dependencyName": dependency, "dataKey": source.data_key}
    if source.default is not None:
        src["value"] = source.default
    return src


def annotation_dest(key: str) -> str:
    """The sjson path of an annotation of the submitted Workflow: every '.' in the key escaped with '\\'."""
    return "metadata.annotations." + key.replace(".", "\\.")


@dataclass(frozen=True)
class WorkflowSubmitTrigger:
    """Submit ``template`` (a WorkflowTemplate) with parameters mapped from one dependency's event."""

    name: str
    dependency: str
    template: str
    parameters: dict[str, ParamSource]
    rate_limit: RateLimit
    labels: dict[str, str] = field(default_factory=dict)
    # Untrusted event fields travel in annotations of the Workflow, which Argo never substitutes; parameters carry
    # only constants, the event's context and values a filter has already checked.
    annotations: dict[str, FromEvent | FromContext] = field(default_factory=dict)

    def render(self, namespace: str) -> dict[str, Any]:
        arguments: list[dict[str, Any]] = []
        mappings: list[dict[str, Any]] = []
        for index, (param_name, source) in enumerate(self.parameters.items()):
            if isinstance(source, Constant):
                arguments.append({"name": param_name, "value": source.value})
                continue
            arguments.append({"name": param_name, "value": ""})
            mappings.append({"src": _source(self.dependency, source),
                             "dest": f"spec.arguments.parameters.{index}.value"})
        for key, source in self.annotations.items():
            mappings.append({"src": _source(self.dependency, source), "dest": annotation_dest(key)})
        metadata: dict[str, Any] = {
            "generateName": f"{self.template}-",
            "namespace": namespace,
            "labels": {**security.MANAGED_BY, "hera-flows.io/triggered-by": "argo-events", **self.labels},
        }
        if self.annotations:
            metadata["annotations"] = {key: "" for key in self.annotations}
        workflow = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": metadata,
            "spec": {
                "workflowTemplateRef": {"name": self.template},
                "arguments": {"parameters": arguments},
            },
        }
        return {
            "template": {
                "name": self.name,
                "conditions": self.dependency,
                "argoWorkflow": {
                    "operation": "submit",
                    "source": {"resource": workflow},
                    "parameters": mappings,
                },
            },
            # Retries and the DLQ only apply with atLeastOnce; without it events waiting on the rate
            # limiter are lost when the sensor restarts.
            "atLeastOnce": True,
            "retryStrategy": {"steps": 3, "duration": "10s", "factor": 2, "jitter": 0.2},
            "rateLimit": {"unit": self.rate_limit.unit, "requestsPerUnit": self.rate_limit.requests_per_unit},
        }


def sensor(
    name: str,
    namespace: str,
    dependencies: list[Dependency],
    triggers: list[WorkflowSubmitTrigger],
    *,
    event_bus: str,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    names = [d.name for d in dependencies]
    if len(set(names)) != len(names):
        raise ValueError(f"sensor {name}: dependency names must be unique: {names}")
    for trigger in triggers:
        if trigger.dependency not in names:
            raise ValueError(f"sensor {name}: trigger {trigger.name} uses unknown dependency {trigger.dependency}")
        if trigger.rate_limit.requests_per_unit < 1:
            raise ValueError("rateLimit.requestsPerUnit must be >= 1 (0 crashes the sensor)")
    return {
        "apiVersion": EVENTS_API,
        "kind": "Sensor",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "eventBusName": event_bus,
            "template": _pod_template(security.SENSOR_SA),
            "dependencies": [d.render() for d in dependencies],
            "triggers": [t.render(namespace) for t in triggers],
        },
    }


# ---------------------------------------------------------------------------------------------------------
# Resource EventSources (Kubernetes objects watched by an informer)


@dataclass(frozen=True)
class LabelRequirement:
    """One Kubernetes label-selector requirement, applied by the API server to the EventSource's watch.

    ``operation`` is a ``k8s.io/apimachinery/pkg/selection`` operator: ``==``, ``!=``, ``in``, ``notin`` (``value``
    is then comma-separated), ``exists`` or ``!`` (does not exist; no value). ``!=`` and ``notin`` also match
    objects that do not carry the label at all.
    """

    key: str
    operation: str
    value: str = ""

    def render(self) -> dict[str, Any]:
        if self.operation not in ("=", "==", "!=", "in", "notin", "exists", "!"):
            raise ValueError(f"unsupported label selector operation {self.operation!r}")
        if self.operation in ("exists", "!") and self.value:
            raise ValueError(f"label selector operation {self.operation!r} takes no value")
        # The schema requires ``value``; Argo Events passes no values to ``exists``/``!`` when it is empty.
        return {"key": self.key, "operation": self.operation, "value": self.value}


@dataclass(frozen=True)
class FieldRequirement:
    """A client-side filter on the object: the string at gjson path ``key`` matches the RE2 ``value``.

    ``operation`` must be explicit (``==`` or ``!=``): Argo Events rejects every event when it is empty
    (docs/upstream-facts.md#events-resource-filters). A path that does not exist rejects the event whatever the
    operation.
    """

    key: str
    value: str
    operation: str = "=="

    def render(self) -> dict[str, Any]:
        if self.operation not in ("=", "==", "!="):
            raise ValueError(f"unsupported field filter operation {self.operation!r}")
        return {"key": self.key, "operation": self.operation, "value": self.value}


@dataclass(frozen=True)
class ResourceWatch:
    """One named event of a resource EventSource: objects of one resource in one namespace."""

    event_name: str
    namespace: str
    group: str
    version: str
    resource: str
    event_types: tuple[str, ...]
    labels: tuple[LabelRequirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    def render(self) -> dict[str, Any]:
        unknown = set(self.event_types) - {"ADD", "UPDATE", "DELETE"}
        if not self.event_types or unknown:
            raise ValueError(f"{self.event_name}: event types must be ADD, UPDATE or DELETE, not {sorted(unknown)}")
        if not self.namespace:
            raise ValueError(f"{self.event_name}: a namespace is required (an empty one watches the whole cluster)")
        spec: dict[str, Any] = {
            "namespace": self.namespace,
            "group": self.group,
            "version": self.version,
            "resource": self.resource,
            "eventTypes": list(self.event_types),
        }
        selector: dict[str, Any] = {}
        if self.labels:
            selector["labels"] = [r.render() for r in self.labels]
        if self.fields:
            selector["fields"] = [r.render() for r in self.fields]
        if selector:
            spec["filter"] = selector
        return spec


def resource_event_source(
    name: str, namespace: str, watches: list[ResourceWatch], *, event_bus: str, service_account: str
) -> dict[str, Any]:
    """An EventSource whose informers watch Kubernetes objects (one entry per namespace and selector).

    It runs as ``service_account``, which needs list/watch on the resource in each watched namespace; the pod
    template has no ``automountServiceAccountToken`` field, so that ServiceAccount must allow automounting.
    """
    names = [w.event_name for w in watches]
    if not watches or len(set(names)) != len(names):
        raise ValueError(f"event source {name}: event names must be present and unique: {names}")
    return {
        "apiVersion": EVENTS_API,
        "kind": "EventSource",
        "metadata": _metadata(name, namespace),
        "spec": {
            "eventBusName": event_bus,
            "template": _pod_template(service_account),
            "resource": {w.event_name: w.render() for w in watches},
        },
    }


# ---------------------------------------------------------------------------------------------------------
# Kafka EventSources (a consumer group per topic)


@dataclass(frozen=True)
class KafkaTopic:
    """One named event of a Kafka EventSource: the records of one topic, consumed by a consumer group.

    What Argo Events delivers (``pkg/eventsources/sources/kafka/start.go``, ``events.KafkaEventData``):
    ``{"topic", "key", "partition", "body", "timestamp", "headers": {name: value}}``, with ``body`` the record's
    JSON value (``jsonBody: true``; a value that is not JSON fails to marshal and is dropped by the EventSource,
    counted in ``argo_events_events_processing_failed_total``) and the event context's ``id``
    ``<eventsource>:<event>:<first broker>:<topic>:<partition>:<offset>``. With a consumer group the offset is
    committed once the event is on the event bus (``session.MarkMessage`` after ``dispatch``).
    """

    event_name: str
    brokers: tuple[str, ...]
    topic: str
    consumer_group: str
    start_from_oldest: bool = False
    ca_cert: SecretRef | None = None
    client_cert: SecretRef | None = None
    client_key: SecretRef | None = None
    sasl_mechanism: str | None = None
    sasl_user: SecretRef | None = None
    sasl_password: SecretRef | None = None
    version: str | None = None

    def render(self) -> dict[str, Any]:
        if not self.brokers or not self.topic:
            raise ValueError(f"{self.event_name}: a Kafka event needs brokers and a topic")
        spec: dict[str, Any] = {
            "url": ",".join(self.brokers),
            "topic": self.topic,
            "jsonBody": True,
            "consumerGroup": {"groupName": self.consumer_group, "oldest": self.start_from_oldest,
                              "rebalanceStrategy": "range"},
            "connectionBackoff": {"duration": "10s", "factor": 2, "jitter": 0.2, "steps": 5},
        }
        if self.version:
            spec["version"] = self.version
        tls = {key: {"name": ref.name, "key": ref.key} for key, ref in (
            ("caCertSecret", self.ca_cert), ("clientCertSecret", self.client_cert),
            ("clientKeySecret", self.client_key)) if ref is not None}
        if tls:
            if ("clientCertSecret" in tls) != ("clientKeySecret" in tls):
                raise ValueError(f"{self.event_name}: a client certificate needs its key (and the key its cert)")
            spec["tls"] = tls
        if self.sasl_mechanism:
            if self.sasl_user is None or self.sasl_password is None:
                raise ValueError(f"{self.event_name}: SASL needs a user and a password Secret")
            spec["sasl"] = {"mechanism": self.sasl_mechanism,
                            "userSecret": {"name": self.sasl_user.name, "key": self.sasl_user.key},
                            "passwordSecret": {"name": self.sasl_password.name, "key": self.sasl_password.key}}
        return spec


def kafka_event_source(name: str, namespace: str, topics: list[KafkaTopic], *, event_bus: str) -> dict[str, Any]:
    """An EventSource consuming ``topics``; it needs no Service (it connects out to the brokers)."""
    names = [t.event_name for t in topics]
    if not topics or len(set(names)) != len(names):
        raise ValueError(f"event source {name}: event names must be present and unique: {names}")
    return {
        "apiVersion": EVENTS_API,
        "kind": "EventSource",
        "metadata": _metadata(name, namespace),
        "spec": {
            "eventBusName": event_bus,
            "template": _pod_template(security.EVENTSOURCE_SA),
            "kafka": {t.event_name: t.render() for t in topics},
        },
    }


# ---------------------------------------------------------------------------------------------------------
# Calendar EventSources


def calendar_event_source(
    name: str,
    namespace: str,
    event_name: str,
    *,
    schedule: str,
    timezone: str,
    event_bus: str,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An EventSource that emits ``event_name`` on a cron ``schedule`` in ``timezone``.

    Argo Events delivers ``{"eventTime": "<Go time.String() of the tick>", "metadata": {...}}``; the tick is in
    the schedule's time zone, so ``eventTime``'s first ten characters are the local date of the run. It needs
    no Service (nothing connects to it) and no persistence: a missed tick is not replayed, the next one comes.
    """
    calendar: dict[str, Any] = {"schedule": schedule, "timezone": timezone}
    if metadata:
        calendar["metadata"] = dict(metadata)
    return {
        "apiVersion": EVENTS_API,
        "kind": "EventSource",
        "metadata": _metadata(name, namespace),
        "spec": {
            "eventBusName": event_bus,
            "template": _pod_template(security.EVENTSOURCE_SA),
            "calendar": {event_name: calendar},
        },
    }


@dataclass(frozen=True)
class RegexFilter:
    """Pass an event only when the string at ``path`` matches ``pattern``, an RE2 regex written by the caller
    (anchor it yourself: data filter values are unanchored). For checks a list of exact values cannot express,
    e.g. a name charset or case-insensitive severities; it renders like :class:`DataFilter`."""

    path: str
    pattern: str

    def render(self) -> dict[str, Any]:
        if not (self.pattern.startswith("^") or self.pattern.startswith("(?i)^")) or not self.pattern.endswith("$"):
            raise ValueError(f"filter on {self.path}: anchor the regex with ^...$ (data filters are unanchored)")
        return {"path": self.path, "type": "string", "value": [self.pattern]}


def with_image_pull_secrets(document: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """Set ``imagePullSecrets`` on an EventSource's or Sensor's pod template (a private registry mirroring the
    Argo Events image). Applied by `generate` to every EventSource and Sensor, so the builders above need no
    configuration and a new pattern cannot forget it."""
    if not secrets:
        return document
    if document.get("kind") not in ("EventSource", "Sensor"):
        raise ValueError(f"imagePullSecrets: {document.get('kind')} is not an EventSource or Sensor")
    template = document["spec"].setdefault("template", {})
    template["imagePullSecrets"] = [{"name": name} for name in secrets]
    return document


def event_source_network_policy(
    event_source: str, namespace: str, *, restricted: dict[int, list[NetworkSource]], open_ports: list[int]
) -> dict[str, Any]:
    """A NetworkPolicy on one EventSource's pods: each ``restricted`` port admits only its sources, each of
    ``open_ports`` (and the metrics port) admits anyone; every other inbound connection is dropped.

    Argo Events labels the pods ``eventsource-name: <name>`` (and ``controller: eventsource-controller``); those
    are the only labels selected on, so the policy applies whatever else the controller version adds.
    """
    ingress: list[dict[str, Any]] = []
    for port, sources in sorted(restricted.items()):
        peers: list[dict[str, Any]] = []
        for source in sources:
            if source.cidr is not None:
                peers.append({"ipBlock": {"cidr": source.cidr}})
                continue
            peer: dict[str, Any] = {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": source.namespace}}}
            if source.pod_labels:
                peer["podSelector"] = {"matchLabels": dict(sorted(source.pod_labels.items()))}
            peers.append(peer)
        ingress.append({"from": peers, "ports": [{"protocol": "TCP", "port": port}]})
    others = sorted({*open_ports, METRICS_PORT} - set(restricted))
    ingress.append({"ports": [{"protocol": "TCP", "port": port} for port in others]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{event_source}-eventsource-ingress", namespace),
        "spec": {
            "podSelector": {"matchLabels": {"controller": "eventsource-controller", "eventsource-name": event_source}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }
