"""`hera-flows step triage-flyte-guard`: decide whether a Flyte execution event gets triaged, exactly once.

The Sensor writes the webhook body into this Workflow's annotation (never a parameter: event_data.py); the guard
reads it, normalises it (flyte.py) and ends the run as a quiet ``skip`` with a one-line reason when the body is
not a Flyte workflow-execution event, the phase is not a failure (FAILED, TIMED_OUT), the project is not
triaged (``--projects``), the failure is older than ``--max-age-seconds``, or another run already claimed the
execution (a cloud event can be delivered more than once). The claim is a Lease named from the execution id
(``naming.lease_name("triage", "flyte/<project>/<domain>/<name>")``), created race-free and owned by this run.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from hera_flows.steps import event_data, naming
from hera_flows.steps.common import StepError, log, param
from hera_flows.steps.contract import GUARD_FLAGS, GUARD_OUTPUTS, RUN_IDENTITY, Flag, Step, merged
from hera_flows.steps.run_labels import label_workflow, run_labels
from hera_flows.steps.state import WorkflowOwner, open_store
from hera_flows.steps.triage.flyte import Execution, FlyteEventError, parse_event
from hera_flows.steps.triage.guard import Decision

CONTRACT = Step(
    name="triage-flyte-guard",
    entry="hera_flows.steps.triage.flyte_guard:main",
    summary="read the Flyte execution event from the run's annotation, skip non-failures and repeats, claim it",
    flags=(
        *GUARD_FLAGS,
        Flag("projects", "Flyte projects to triage (empty: all)", form="csv"),
        Flag("max-age-seconds", "failures that happened longer ago are skipped", kind=int),
    ),
    inputs=RUN_IDENTITY,
    outputs=merged(GUARD_OUTPUTS, ("title",)),
)


def occurred(text: str) -> datetime | None:
    """A protobuf JSON Timestamp (RFC 3339, up to nanoseconds) as an aware datetime, or None."""
    if not text:
        return None
    head, _, fraction = text.replace("Z", "").partition(".")
    try:
        parsed = datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else ""))
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def decide(execution: Execution, *, projects: list[str], max_age_seconds: int, now: float) -> Decision:
    """Everything but the claim: a pure function of the event."""
    if not execution.failed:
        return Decision("skip", f"execution {execution.key} is {execution.phase}, not a failure")
    if projects and execution.project not in projects:
        return Decision("skip", f"project {execution.project} is not triaged (failure_triage.flyte.projects)")
    when = occurred(execution.occurred_at)
    if when is not None and now - when.timestamp() > max_age_seconds:
        return Decision("skip", f"execution {execution.key} failed {int(now - when.timestamp())} s ago, more than "
                                f"{max_age_seconds} s")
    return Decision("proceed", f"execution {execution.key} ended {execution.phase}", "failed")


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    run_name, run_uid = param("workflow-name"), param("workflow-uid")
    holder = run_uid or run_name
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the dedupe record needs its run)")
    body = event_data.field("event-body", namespace=args.state_namespace)
    execution: Execution | None = None
    key = ""
    try:
        execution = parse_event(json.loads(body) if body.strip() else None)
    except (FlyteEventError, ValueError) as exc:
        decision = Decision("skip", f"not a Flyte execution event: {' '.join(str(exc).split())[:300]}")
    else:
        key = naming.dedupe_key("flyte", execution.key)
        decision = decide(execution, projects=list(args.projects), max_age_seconds=args.max_age_seconds,
                          now=time.time())
        if decision.decision == "proceed":
            owner = WorkflowOwner(run_name, run_uid) if run_name and run_uid else None
            store = open_store(args.state_namespace)
            lease = naming.lease_name("triage", f"flyte/{execution.key}")
            if not store.claim_once(lease, holder, owner, key=key, pending_seconds=args.claim_seconds):
                current = store.get(lease) or {}
                by = (current.get("spec") or {}).get("holderIdentity") or "another run"
                decision = Decision("skip", f"execution {execution.key} was already triaged by {by}")
    log(f"triage-flyte-guard: {decision.decision}: {decision.reason}")
    label_workflow(args.state_namespace, run_name, run_labels(decision.decision, dedupe_key=key),
                   who="triage-flyte-guard")
    proceed = decision.decision == "proceed" and execution is not None
    CONTRACT.write(
        args.outputs,
        decision=decision.decision,
        reason=decision.reason,
        dedupe_key=key,
        branch="",
        event=json.dumps(execution.as_dict(), sort_keys=True) if proceed and execution else "{}",
        title=f"Triage Flyte execution {execution.key} ({execution.phase})" if proceed and execution else "",
    )
    return 0
