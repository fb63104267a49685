"""`hera-flows step guard`: the first task of a pattern. It authenticates the event, refuses replays,
normalises the event into a few plain outputs and decides whether the run proceeds or ends as a skip.

Rejections (bad or missing signature, stale timestamp, replayed delivery, malformed body) end the run with
``decision=rejected`` and the reason in one sentence: the run is Succeeded (its pod is garbage-collected at once,
nothing else runs), labelled ``hera-flows.io/decision=rejected`` and counted by the guard-decision metric, whose
alert fires on any rejection (a forgery, or a webhook secret that does not match). Valid events that are not a
promotion end quietly with ``decision=skip``. Nothing after the guard reads the raw event: downstream steps get the
verified model, version and alias only.

The body and signature headers come from the Workflow's annotations (hera_flows/steps/event_data.py), and a
signed timestamp is checked against ``received-at``, when the EventSource received the delivery: a flood of
forgeries queued ahead of it on the Sensor's rate limit cannot make a genuine delivery stale.

``event-source=reconciler`` is a run the ``promotion-reconcile`` CronWorkflow started for a promotion whose
webhook was lost (hera_flows/steps/promotion/reconcile.py): its body (``{"model", "version", "alias", "reason"}``)
is in the same annotation; like a manual run it carries no signature (only identities allowed to create
Workflows in the namespace can start one).

Whatever started it, a proceeding run claims its model version while it runs (a pending Lease per
``<model>@v<version>``, confirmed when review succeeded, released by the exit handler otherwise): an event and the
reconciler arriving together for the same version never both build its branch; the later one ends
``skipped-in-progress``. A later event for the same version proceeds and updates the same PR.
"""

from __future__ import annotations

import argparse
import json
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hera_flows.steps import event_data, naming
from hera_flows.steps.common import StepError, log, param, secret
from hera_flows.steps.contract import GUARD_FLAGS, GUARD_OUTPUTS, RUN_IDENTITY, Flag, Step, merged
from hera_flows.steps.promotion import verify
from hera_flows.steps.run_labels import label_workflow, run_labels

PROMOTION_BRANCH_PREFIX = "model-promotion"
MAX_NAME_LENGTH = 256  # MLflow's registered model name column
MAX_ALIAS_LENGTH = 256
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MLFLOW_PROMOTION = ("model_version_alias", "created")
DATABRICKS_PROMOTION = "MODEL_VERSION_TRANSITIONED_STAGE"
SOURCES = ("mlflow", "databricks", "reconciler")


def _now() -> float:
    return time.time()


@dataclass
class Outcome:
    """What the guard decided, with the normalised event fields (empty when a skip happens before them)."""

    decision: str
    reason: str
    source: str
    model: str = ""
    version: str = ""
    alias: str = ""
    stage: str | None = None
    delivery_id: str | None = None
    timestamp: str | None = None
    manual: bool = False
    replay_key: str | None = field(default=None, repr=False)
    rollout_step: int | None = None  # a later canary step (the reconciler's); None: the first (or only) one


CONTRACT = Step(
    name="promotion-guard",
    entry="hera_flows.steps.promotion.guard:main",
    summary="verify a registry promotion event, refuse replays, and decide whether the run proceeds",
    flags=(
        *GUARD_FLAGS,
        Flag("aliases", "MLflow aliases that mean 'promote'", form="csv"),
        Flag("stages", "Databricks stages that mean 'promote'", form="csv"),
        Flag("tolerance-seconds", "accepted difference between a signed timestamp and its receipt", kind=int),
        Flag("rollout-steps", "canary traffic steps in percent (empty: promote at once)", form="csv"),
    ),
    inputs=("event-source", "received-at", "manual", "model-name", "version", "alias", *RUN_IDENTITY),
    outputs=merged(GUARD_OUTPUTS, ("model", "version", "alias", "title", "rollout-step")),
)


# --- input validation ------------------------------------------------------------------------------------


def _check_text(value: Any, what: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StepError(f"the {what} is missing or empty")
    if len(value) > max_length:
        raise StepError(f"the {what} is longer than {max_length} characters")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or ch in _BIDI_CONTROLS:
            raise StepError(f"the {what} {value[:80]!r} contains control characters")
    return value


def model_name(value: Any) -> str:
    return _check_text(value, "model name", MAX_NAME_LENGTH)


def model_version(value: Any) -> str:
    """A registry version: a positive integer, returned without leading zeros."""
    text = value if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) == 0:
        raise StepError(f"the model version {str(value)[:40]!r} is not a positive integer")
    return str(int(text))


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat().replace("+00:00", "Z")


# --- event sources ---------------------------------------------------------------------------------------


def _manual() -> Outcome:
    model = model_name(param("model-name"))
    version = model_version(param("version"))
    alias = param("alias", "manual") or "manual"
    _check_text(alias, "alias", MAX_ALIAS_LENGTH)
    return Outcome("proceed", "manual run", "manual", model, version, alias, timestamp=_iso(_now()), manual=True)


def _field(args: argparse.Namespace, name: str) -> str:
    return event_data.field(name, namespace=args.state_namespace)


def received_at(value: str, now: float, tolerance_seconds: int) -> float:
    """When the EventSource received the delivery (the event context's RFC 3339 ``time``); ``now`` when unknown
    (a step called by hand). A time ahead of this pod's clock by more than the tolerance is not believed."""
    text = value.strip()
    if not text:
        return now
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StepError(f"received-at {text[:40]!r} is not an RFC 3339 time "
                        "(it comes from the event context)") from None
    epoch = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    if epoch - now > tolerance_seconds:
        raise verify.Rejected(f"the delivery was received at {text}, {int(epoch - now)} s in the future: check clocks")
    return epoch


def _mlflow(args: argparse.Namespace, body: str, webhook_secret: str) -> Outcome:
    delivery_id, stamp = _field(args, "delivery-id"), _field(args, "timestamp")
    payload = verify.verify_mlflow(
        body,
        signature=_field(args, "signature"),
        delivery_id=delivery_id,
        timestamp=stamp,
        secret=webhook_secret,
        tolerance_seconds=args.tolerance_seconds,
        now=received_at(param("received-at"), _now(), args.tolerance_seconds),
    )
    timestamp = _iso(int(stamp))
    entity, action = payload.get("entity"), payload.get("action")
    if (entity, action) != MLFLOW_PROMOTION:
        return Outcome("skip", f"MLflow event {entity}.{action} is not a promotion (model_version_alias.created)",
                       "mlflow", delivery_id=delivery_id, timestamp=timestamp)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise verify.MalformedBody("the MLflow event has no 'data' object")
    alias = _check_text(data.get("alias"), "alias", MAX_ALIAS_LENGTH)
    aliases = list(args.aliases)
    if alias not in aliases:
        return Outcome("skip", f"alias {alias!r} is not one of the promotion aliases ({', '.join(aliases)})",
                       "mlflow", alias=alias, delivery_id=delivery_id, timestamp=timestamp)
    model = model_name(data.get("name"))
    version = model_version(data.get("version"))
    return Outcome("proceed", f"{model} v{version} got the alias {alias!r}", "mlflow", model, version, alias,
                   delivery_id=delivery_id, timestamp=timestamp, replay_key=f"mlflow:{delivery_id}")


def _databricks(args: argparse.Namespace, body: str) -> Outcome:
    configured = secret("HF_DATABRICKS_SECRET", required=False)
    signature = _field(args, "databricks-signature")
    if not configured and signature:
        log("promotion-guard: X-Databricks-Signature present but HF_DATABRICKS_SECRET is not configured; "
            "relying on the EventSource's bearer token")
    payload = verify.verify_databricks(
        body, signature=signature, secret=configured, tolerance_seconds=args.tolerance_seconds,
        now=received_at(param("received-at"), _now(), args.tolerance_seconds),
    )
    event_ms = verify.event_timestamp_ms(payload)
    timestamp = _iso(event_ms / 1000)
    event = payload.get("event")
    if event != DATABRICKS_PROMOTION:
        return Outcome("skip", f"Databricks event {str(event)[:80]!r} is not a stage transition", "databricks",
                       timestamp=timestamp)
    stage = _check_text(payload.get("to_stage"), "target stage", MAX_ALIAS_LENGTH)
    stages = list(args.stages)
    if stage not in stages:
        return Outcome("skip", f"stage {stage!r} is not one of the promotion stages ({', '.join(stages)})",
                       "databricks", alias=stage, stage=stage, timestamp=timestamp)
    model = model_name(payload.get("model_name"))
    version = model_version(payload.get("version"))
    webhook_id = str(payload.get("webhook_id") or "")
    return Outcome("proceed", f"{model} v{version} moved to stage {stage!r}", "databricks", model, version, stage,
                   stage=stage, timestamp=timestamp,
                   replay_key=f"databricks:{json.dumps([webhook_id, event_ms, model, version])}")


# --- the step --------------------------------------------------------------------------------------------


def _reconciler(args: argparse.Namespace, body: str) -> Outcome:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        raise StepError("the reconciler's event body is not JSON") from None
    if not isinstance(data, dict):
        raise StepError("the reconciler's event body must be a JSON object")
    model = model_name(data.get("model"))
    version = model_version(str(data.get("version", "")))
    alias = _check_text(data.get("alias"), "alias", MAX_ALIAS_LENGTH)
    reason = str(data.get("reason") or "the registry and the repository disagree")[:300]
    step = data.get("rollout_step")
    steps = [int(s) for s in args.rollout_steps]
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step not in steps):
        raise StepError(f"the reconciler's rollout_step {str(step)[:10]!r} is not one of the steps {steps}")
    return Outcome("proceed", f"reconciler: {model} v{version} ({alias}): {reason}", "reconciler", model, version,
                   alias, timestamp=_iso(_now()), rollout_step=step if steps and step != steps[0] else None)


# A claim on a model version while one run promotes it; once its review succeeded the version is free again (a later
# event proceeds and updates the same PR).
IN_FLIGHT_SECONDS = 0


def _claim_version(args: argparse.Namespace, outcome: Outcome) -> Outcome:
    """Hold ``<model>@v<version>`` while this run promotes it; another run holding it turns this one into a skip."""
    from hera_flows.steps.state import open_store

    holder = param("workflow-uid") or param("workflow-name")
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the version claim needs its run)")
    key = _key(outcome)
    decision = open_store(args.state_namespace).acquire_cooldown(
        naming.lease_name("promotion-run", key), holder, IN_FLIGHT_SECONDS, key=key,
        pending_seconds=args.claim_seconds)
    if decision.proceed:
        return outcome
    return Outcome("skipped-in-progress", f"{key}: {decision.reason}", outcome.source, outcome.model,
                   outcome.version, outcome.alias, manual=outcome.manual, rollout_step=outcome.rollout_step)


def _parts(outcome: Outcome) -> tuple[str, ...]:
    """What names a run's unit of work: the model version, and a later canary step (its own branch and PR)."""
    parts = (outcome.model, f"v{outcome.version}")
    return (*parts, f"{outcome.rollout_step}pct") if outcome.rollout_step is not None else parts


def _key(outcome: Outcome) -> str:
    return naming.dedupe_key(*_parts(outcome))


def _claim_replay(args: argparse.Namespace, outcome: Outcome) -> None:
    """Record the delivery; a second workflow for the same delivery is refused (an Argo retry is not)."""
    from hera_flows.steps.state import WorkflowOwner, open_store

    workflow_name, workflow_uid = param("workflow-name"), param("workflow-uid")
    holder = workflow_uid or workflow_name
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the replay record needs its run)")
    owner = WorkflowOwner(workflow_name, workflow_uid) if workflow_name and workflow_uid else None
    store = open_store(args.state_namespace)
    key = outcome.replay_key or ""
    if not store.claim_once(naming.lease_name("replay", key), holder, owner, key=key,
                            pending_seconds=args.claim_seconds):
        what = outcome.delivery_id or f"of {outcome.model} v{outcome.version} at {outcome.timestamp}"
        raise verify.Rejected(f"delivery {what} was already processed by another workflow (replay refused)")


def _title(outcome: Outcome, step: int = 100) -> str:
    if not outcome.model:
        return ""
    canary = f" (canary {step} %)" if step < 100 else ""
    if outcome.manual and outcome.alias == "manual":
        return f"Promote {outcome.model} v{outcome.version} (manual run){canary}"
    return f"Promote {outcome.model} v{outcome.version} to {outcome.alias}{canary}"


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    if args.tolerance_seconds <= 0:
        raise StepError("--tolerance-seconds must be a positive number of seconds")

    manual = param("manual", "false")
    if manual not in ("true", "false", ""):
        raise StepError(f"the parameter manual must be 'true' or 'false', not {manual[:20]!r}")
    if manual == "true":
        outcome = _manual()
    else:
        source = param("event-source")
        if source not in SOURCES:
            raise StepError(f"unknown event-source {source[:40]!r}: expected one of {', '.join(SOURCES)}")
        webhook_secret = secret("HF_WEBHOOK_SECRET") if source == "mlflow" else ""
        body = _field(args, "event-body")
        if not body.strip():
            raise StepError("the event body is empty (was the workflow submitted by hand without manual=true?)")
        try:
            if source == "reconciler":
                outcome = _reconciler(args, body)
            else:
                outcome = _mlflow(args, body, webhook_secret) if source == "mlflow" else _databricks(args, body)
            if outcome.decision == "proceed" and outcome.replay_key:
                _claim_replay(args, outcome)
        except verify.Rejected as exc:
            # A forged, stale, replayed or malformed delivery: one line, nothing claimed, nothing else runs.
            outcome = Outcome("rejected", str(exc), source)
    if outcome.decision == "proceed":
        outcome = _claim_version(args, outcome)

    proceed = outcome.decision == "proceed"
    steps = [int(s) for s in args.rollout_steps]
    step = outcome.rollout_step if outcome.rollout_step is not None else (steps[0] if steps else 100)
    event = {
        "source": outcome.source,
        "model": outcome.model or None,
        "version": outcome.version or None,
        # a Databricks promotion has a stage, not an alias (the alias output carries the stage for titles)
        "alias": None if outcome.source == "databricks" else (outcome.alias or None),
        "stage": outcome.stage,
        "delivery_id": outcome.delivery_id,
        "timestamp": outcome.timestamp,
        "manual": outcome.manual,
    }
    CONTRACT.write(
        args.outputs,
        decision=outcome.decision,
        reason=outcome.reason,
        model=outcome.model,
        version=outcome.version,
        alias=outcome.alias,
        dedupe_key=_key(outcome) if proceed else "",
        branch=naming.branch_name(PROMOTION_BRANCH_PREFIX, *_parts(outcome)) if proceed else "",
        title=_title(outcome, step) if proceed else "",
        rollout_step=str(step) if proceed else "",
        event=json.dumps(event, ensure_ascii=False, sort_keys=True),
    )
    label_workflow(args.state_namespace, param("workflow-name"), run_labels(
        outcome.decision,
        dedupe_key=_key(outcome) if outcome.model else "",
        model=outcome.model,
    ))
    log(f"promotion-guard: decision={outcome.decision} source={outcome.source} model={outcome.model or '-'} "
        f"version={outcome.version or '-'} alias={outcome.alias or '-'}: {outcome.reason}")
    return 0
