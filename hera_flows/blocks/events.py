"""Small typed builders for Argo Events EventSources and Sensors.

Hera 7.1's ``hera.events.models`` mirror the Go structs without Go's inlining and emit shapes Argo Events
rejects (a nested ``webhookContext``, a base64 ``source.resource``), so these builders emit the documented
shape directly. What they encode from Argo Events' source (see ARGO-EVENTS-FACTS.md):

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
from hera_flows.config import RateLimit, SecretRef

EVENTS_API = "argoproj.io/v1alpha1"
# Small pods: an EventSource or Sensor only forwards events.
EVENT_POD_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def anchored(*alternatives: str) -> str:
    """An anchored RE2 regex matching exactly one of ``alternatives`` (Argo data filters are unanchored)."""
    escaped = [re.escape(value) for value in alternatives]
    return f"^({'|'.join(escaped)})$" if len(escaped) > 1 else f"^{escaped[0]}$"


def canonical_header(name: str) -> str:
    """Go's http.CanonicalHeaderKey: ``X-MLflow-Signature`` -> ``X-Mlflow-Signature``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


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
    filters: tuple[DataFilter, ...] = ()

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
class Constant:
    value: str


ParamSource = FromEvent | Constant


@dataclass(frozen=True)
class WorkflowSubmitTrigger:
    """Submit ``template`` (a WorkflowTemplate) with parameters mapped from one dependency's event."""

    name: str
    dependency: str
    template: str
    parameters: dict[str, ParamSource]
    rate_limit: RateLimit
    labels: dict[str, str] = field(default_factory=dict)

    def render(self, namespace: str) -> dict[str, Any]:
        arguments: list[dict[str, Any]] = []
        mappings: list[dict[str, Any]] = []
        for index, (param_name, source) in enumerate(self.parameters.items()):
            if isinstance(source, Constant):
                arguments.append({"name": param_name, "value": source.value})
                continue
            arguments.append({"name": param_name, "value": ""})
            src: dict[str, Any] = {"dependencyName": self.dependency, "dataKey": source.data_key}
            if source.default is not None:
                src["value"] = source.default
            mappings.append({"src": src, "dest": f"spec.arguments.parameters.{index}.value"})
        workflow = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {
                "generateName": f"{self.template}-",
                "namespace": namespace,
                "labels": {**security.MANAGED_BY, "hera-flows.io/triggered-by": "argo-events", **self.labels},
            },
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
