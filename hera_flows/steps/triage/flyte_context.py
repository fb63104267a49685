"""`hera-flows step triage-flyte-context`: the triage context of a failed Flyte execution, from its event.

The same classifier as for Argo and Kubeflow runs reads it (classify.py: ``evidence`` lines and ``pods[].logs``):
the execution error's code and message are status evidence (Flyte writes the pod's termination there, e.g.
``Reason [OOMKilled]``), and the message is also offered as the log of the failed node so a Python traceback in a
USER error is read as one. The pipeline's identity (dedupe key, issue title) is the launch plan when the event
carries it (``cloudEventVersion: v2`` with ``enrichAllWorkflowEventTypes``), else ``<project>-<domain>``; the owner
is the event's ``--owner-key`` label, else ``--owners`` of ``project/domain`` or ``project``.
"""

from __future__ import annotations

import re
from typing import Any

from hera_flows.steps.common import StepError, log, parse_json
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.redact import redact_data
from hera_flows.steps.triage.context import cap_context
from hera_flows.steps.triage.flyte import Execution, console_url

MAX_MESSAGE = 8000

CONTRACT = Step(
    name="triage-flyte-context",
    entry="hera_flows.steps.triage.flyte_context:main",
    summary="the failed Flyte execution's facts, error evidence and owner, as the triage context",
    flags=(
        Flag("owner-key", "label of the execution naming the pipeline's owner"),
        Flag("owners", "project/domain or project -> owner when the execution names none", form="json",
             optional=True),
        Flag("console-url", "FlyteConsole, for a link to the execution", optional=True),
    ),
    inputs=("event",),
    outputs=("context",),
)


def build_context(execution: Execution, *, owner_key: str, owners: dict[str, str], console: str) -> dict[str, Any]:
    namespace = f"{execution.project}-{execution.domain}"  # Flyte's default namespace_mapping template
    message = execution.error_message[-MAX_MESSAGE:]
    evidence = [f"flyte error code: {execution.error_code}"] if execution.error_code else []
    evidence += [f"flyte error: {' '.join(line.split())}" for line in re.split(r"[\r\n]+", message) if line.strip()]
    owner = execution.labels.get(owner_key) or owners.get(f"{execution.project}/{execution.domain}") \
        or owners.get(execution.project) or ""
    notes = []
    if not execution.launch_plan:
        notes.append("the event names no launch plan (cloudEventVersion v1, or v2 without "
                     "enrichAllWorkflowEventTypes): failures are grouped per project and domain")
    node = re.search(r"\[([a-z0-9-]+-n[0-9]+[-0-9]*)\]", message)
    context = {
        "pattern": "failure_triage",
        "source": "flyte",
        "case": "failed",
        "workflow": {
            "name": execution.name, "namespace": namespace, "uid": "", "phase": execution.phase,
            "message": " ".join(message.split())[:500], "started_at": "", "finished_at": execution.occurred_at,
            "template": "", "pipeline": execution.launch_plan or namespace, "owner": owner[:100],
        },
        "flyte": {"project": execution.project, "domain": execution.domain, "launch_plan": execution.launch_plan,
                  "error_code": execution.error_code, "error_kind": execution.error_kind,
                  "producer": execution.producer, "url": console_url(console, execution), "shape": execution.shape},
        "offloaded": False,
        "nodes": [],
        "pods": [{"name": node.group(1) if node else execution.name, "step": node.group(1) if node else "execution",
                  "node_id": "", "phase": execution.phase, "containers": [], "events": [],
                  "logs": {"error": {"tail": message, "bytes_read": len(message), "truncated": False, "error": ""}}}]
        if message.strip() else [],
        "workflow_template": {"name": "", "found": False, "templates": {}},
        "failing_templates": [],
        "evidence": evidence,
        "notes": notes,
    }
    redacted: dict[str, Any] = redact_data(context)  # error messages leave the cluster (issues, agent context)
    return redacted


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    data = parse_json(CONTRACT.param("event", required=True), "the guard's event")
    try:
        execution = Execution(**data)
    except TypeError:
        raise StepError("the guard's event is not a normalised Flyte execution") from None
    owners = args.owners or {}
    if not isinstance(owners, dict):
        raise StepError("--owners must be a JSON object")
    context = build_context(execution, owner_key=args.owner_key, owners={str(k): str(v) for k, v in owners.items()},
                            console=args.console_url or "")
    text = cap_context(context)
    log(f"triage-flyte-context: {execution.key}: {len(context['evidence'])} evidence line(s), {len(text)} bytes")
    CONTRACT.write(args.outputs, context=text)
    return 0
