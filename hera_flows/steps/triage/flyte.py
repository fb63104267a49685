"""Flyte workflow-execution events: the shapes FlyteAdmin publishes, normalised for failure triage.

Flyte does not run on Argo; FlyteAdmin publishes a cloud event for every workflow-execution phase
(flyteorg/flyte v1.16.8, ``flyteadmin/pkg/async/cloudevent``; the shared fixture ``flyte/README.md``). Delivered over
HTTP in CloudEvents binary mode (``ce-*`` headers, body = the event's data, as a Kafka/NATS-to-HTTP bridge
delivers it), the body is one of:

- ``cloudEventVersion: v1`` (the default): jsonpb of ``flyteidl.admin.WorkflowExecutionEventRequest``,
  ``{"event": {"executionId": {project, domain, name}, "producerId", "phase", "occurredAt", "error": {...}}}``;
- ``v2``: jsonpb of ``flyteidl.event.CloudEventWorkflowExecution``, ``{"rawEvent": {...same event...}}``, plus
  ``launchPlanId`` and ``labels`` for a failure only with ``eventsPublisher.enrichAllWorkflowEventTypes``.

A structured-mode CloudEvent (``{"specversion": ..., "data": {...}}``) is unwrapped. ``error`` is
``flyteidl.core.ExecutionError`` (``code``, ``message``, ``kind`` USER|SYSTEM|UNKNOWN). Anything else is refused
with one line saying why.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# flyteidl.core.WorkflowExecution.Phase (jsonpb writes the name; a number is accepted too)
PHASES = ("UNDEFINED", "QUEUED", "RUNNING", "SUCCEEDING", "SUCCEEDED", "FAILING", "FAILED", "ABORTED", "TIMED_OUT",
          "ABORTING")
FAILED_PHASES = ("FAILED", "TIMED_OUT")  # ABORTED is a person's decision, not a failure
ERROR_KINDS = ("UNKNOWN", "USER", "SYSTEM")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,126}[a-z0-9])?$")
_EXECUTION = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class FlyteEventError(ValueError):
    """The body is not a Flyte workflow-execution event; the message says why, on one line."""


@dataclass
class Execution:
    project: str
    domain: str
    name: str
    phase: str
    occurred_at: str
    producer: str = ""
    error_code: str = ""
    error_message: str = ""
    error_kind: str = ""
    launch_plan: str = ""  # only in v2 events enriched with launchPlanId
    labels: dict[str, str] = field(default_factory=dict)
    shape: str = "v1"

    @property
    def failed(self) -> bool:
        return self.phase in FAILED_PHASES

    @property
    def key(self) -> str:
        """The execution's identity (a Flyte execution id is unique within its project and domain)."""
        return f"{self.project}/{self.domain}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any, what: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise FlyteEventError(f"{what} is missing or not a string")
    if pattern is not None and not pattern.match(value):
        raise FlyteEventError(f"{what} {value[:80]!r} is not a Flyte name")
    return value


def _phase(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(PHASES):
        return PHASES[value]
    if isinstance(value, str) and value in PHASES:
        return value
    raise FlyteEventError(f"phase {str(value)[:40]!r} is not a flyteidl WorkflowExecution phase")


def parse_event(body: Any) -> Execution:
    """The execution a FlyteAdmin cloud event is about (v1 or v2 data, or a structured-mode CloudEvent)."""
    if isinstance(body, dict) and "specversion" in body:
        if "data_base64" in body:
            raise FlyteEventError("the CloudEvent carries protobuf (data_base64); send it with JSON data "
                                  "(cloudEvents over kafka/nats; the aws/gcp senders publish protobuf)")
        body = body.get("data")
    if not isinstance(body, dict):
        raise FlyteEventError("the body is not a JSON object")
    if isinstance(body.get("event"), dict):
        event, shape, extra = body["event"], "v1", {}
    elif isinstance(body.get("rawEvent"), dict):
        event, shape, extra = body["rawEvent"], "v2", body
    else:
        raise FlyteEventError("neither `event` (cloudEventVersion v1) nor `rawEvent` (v2): not a Flyte "
                              "workflow-execution event (node and task events are not triaged)")
    execution_id = event.get("executionId")
    if not isinstance(execution_id, dict):
        raise FlyteEventError("event.executionId is missing")
    error = event.get("error") if isinstance(event.get("error"), dict) else {}
    kind = error.get("kind", "UNKNOWN")
    if isinstance(kind, int) and not isinstance(kind, bool) and 0 <= kind < len(ERROR_KINDS):
        kind = ERROR_KINDS[kind]
    launch_plan: dict[str, Any] = extra["launchPlanId"] if isinstance(extra.get("launchPlanId"), dict) else {}
    labels: dict[str, Any] = extra["labels"] if isinstance(extra.get("labels"), dict) else {}
    return Execution(
        project=_text(execution_id.get("project"), "executionId.project", _NAME),
        domain=_text(execution_id.get("domain"), "executionId.domain", _NAME),
        name=_text(execution_id.get("name"), "executionId.name", _EXECUTION),
        phase=_phase(event.get("phase", "UNDEFINED")),
        occurred_at=str(event.get("occurredAt") or ""),
        producer=str(event.get("producerId") or ""),
        error_code=str(error.get("code") or ""),
        error_message=str(error.get("message") or ""),
        error_kind=str(kind) if kind in ERROR_KINDS else "UNKNOWN",
        launch_plan=str(launch_plan.get("name") or ""),
        labels={str(k): str(v) for k, v in labels.items()},
        shape=shape,
    )


def console_url(base: str, execution: Execution) -> str:
    """The execution's page in FlyteConsole (``/projects/<p>/domains/<d>/executions/<name>``)."""
    if not base:
        return ""
    return f"{base.rstrip('/')}/projects/{execution.project}/domains/{execution.domain}/executions/{execution.name}"
