"""`hera-flows step drift-guard`: turn one delivery into at most one remediation, race-free.

The Sensor's ``rateLimit`` only delays events (docs/upstream-facts.md#events-sensor), so discarding happens here:

1. **normalise** the body into drift events (an Alertmanager group with N firing alerts gives N events);
2. **filter**: keep the configured severities (re-applied here: the Sensor cannot filter per alert of a
   group) and the workflow's own model (its mutex is per model);
3. **cooldown**, per (model, feature): ``LeaseStore.acquire_cooldown`` — a create or a resourceVersion
   compare-and-swap on one Lease per key, so two workflows started in the same second for the same key cannot
   both proceed. The claim is *pending* until the run's review succeeded (then confirmed for the whole window)
   and released by the run's exit handler otherwise, so a failed run never locks its key. The first key of the
   delivery that is not cooling down is chosen; the others are recorded in the ``considered`` output;
4. **ceilings**: the open drift PRs (forge) plus slots reserved by runs still in flight (one Lease, updated by
   compare-and-swap) must stay below ``--max-open-prs`` overall and below ``--max-open-prs-per-model`` for the
   event's model (one model's params file must not collect a pile of PRs, whatever feature names an alert
   invents); a key whose PR is already open needs no new slot (its PR is updated). A key refused by a ceiling
   keeps no cooldown: its pending claim is released at once.

A skipped run ends Succeeded with ``decision=skipped-<why>`` (``proceed`` otherwise), the ``reason`` output,
and the label
``hera-flows.io/decision=skipped-<why>`` on its Workflow (plus ``hera-flows.io/dedupe-key``, a hash). Labelling
uses the guard's own ServiceAccount (``patch workflows``); locally it is written to a file instead.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hera_flows.steps import event_data, naming
from hera_flows.steps.common import StepError, TransientError, log, param, secret
from hera_flows.steps.contract import GUARD_FLAGS, GUARD_OUTPUTS, RUN_IDENTITY, Flag, Step, merged
from hera_flows.steps.drift.normalise import FEATURE, NAME, SEVERITIES, SOURCES, DriftEvent, key_hash, normalise
from hera_flows.steps.drift.pr import PR_TITLE
from hera_flows.steps.run_labels import label_workflow, run_labels

CEILING_LEASE_KEY = "drift-open-pr-ceiling"
_CAS_ATTEMPTS = 10


@dataclass(frozen=True)
class Settings:
    severities: tuple[str, ...] = ("high", "critical")
    cooldown_seconds: float = 21600
    max_open_prs: int = 10  # 0: no ceiling (mode retrain opens no PRs)
    branch_prefix: str = "drift"
    reservation_seconds: float = 3600  # how long a proceeding run holds a ceiling slot before its PR exists
    max_open_prs_per_model: int = 0  # 0: no per-model ceiling
    claim_seconds: float = 3600  # how long a cooldown claim stays pending (the run's deadline)


@dataclass
class Decision:
    proceed: bool
    label: str  # the decision output and label: proceed | skipped-filter | skipped-cooldown | skipped-ceiling
    reason: str
    event: DriftEvent | None = None
    branch: str = ""
    dedupe_key: str = ""
    considered: list[dict[str, Any]] = field(default_factory=list)


def dedupe_key(event: DriftEvent) -> str:
    return naming.dedupe_key(event.model, event.feature)


def branch_for(prefix: str, model: str, feature: str) -> str:
    """``<prefix>/<model>-<feature>-<id>``; ``<id>`` is a hash of the key, so every event of a key gets the same
    branch and the review step updates the same PR."""
    return naming.branch_name(prefix, model, feature, key_hash(model, feature, 8))


def decide(
    events: list[DriftEvent],
    *,
    settings: Settings,
    store: Any,
    open_branches: Callable[[], Any],
    holder: str,
    model: str = "",
    now: datetime | None = None,
) -> Decision:
    """The guard's decision for one delivery (see the module docstring). ``store`` is a LeaseStore."""
    moment = now or store.now()  # the API server's clock in a cluster: a skewed pod clock moves no cooldown
    considered: list[dict[str, Any]] = []
    candidates: dict[tuple[str, str], DriftEvent] = {}
    for event in events:
        entry = {"model": event.model, "feature": event.feature, "severity": event.severity, "id": event.id}
        if event.severity not in settings.severities:
            considered.append({**entry, "outcome": f"severity {event.severity} not in {list(settings.severities)}"})
        elif model and event.model != model:
            considered.append({**entry, "outcome": f"model differs from this workflow's ({model}); group your "
                                                   "alerts by model"})
        elif event.key in candidates:
            considered.append({**entry, "outcome": "duplicate of an earlier alert of this delivery"})
        else:
            candidates[event.key] = event
    if not candidates:
        return Decision(False, "skipped-filter",
                        f"no firing drift event with severity in {list(settings.severities)}"
                        + (f" for model {model}" if model else ""), considered=considered)

    branches: dict[str, str] | None = None
    first_skip: Decision | None = None
    for event in candidates.values():
        key = dedupe_key(event)
        branch = branch_for(settings.branch_prefix, event.model, event.feature)
        entry = {"model": event.model, "feature": event.feature, "severity": event.severity, "id": event.id}
        lease = naming.lease_name("drift-cooldown", key)
        cooldown = store.acquire_cooldown(lease, holder, settings.cooldown_seconds, moment, key=key,
                                          pending_seconds=settings.claim_seconds)
        if not cooldown.proceed:
            considered.append({**entry, "outcome": cooldown.reason})
            first_skip = first_skip or Decision(False, "skipped-cooldown", f"{key}: {cooldown.reason}", event,
                                                branch, key)
            continue
        if settings.max_open_prs > 0:
            if branches is None:
                branches = _as_titles(open_branches(), settings.branch_prefix)
            refusal = reserve_slot(store, branch, branches, settings, holder, moment, model=event.model)
            if refusal:
                store.release(holder, name=lease)  # a key the ceiling refuses keeps no cooldown
                reason = f"{refusal}; {key} is skipped (no cooldown started: a later alert is evaluated again)"
                considered.append({**entry, "outcome": reason})
                first_skip = first_skip or Decision(False, "skipped-ceiling", reason, event, branch, key)
                continue
        considered.append({**entry, "outcome": "proceed"})
        return Decision(True, "proceed", f"{key}: {cooldown.reason}", event, branch, key, considered)
    assert first_skip is not None
    first_skip.considered = considered
    return first_skip


def _as_titles(open_prs: Any, prefix: str) -> dict[str, str]:
    """Open drift PRs as {branch: title} (a plain set of branches means the titles are unknown)."""
    items = open_prs.items() if isinstance(open_prs, dict) else ((b, "") for b in open_prs)
    return {b: t for b, t in items if b.startswith(prefix + "/")}


def _model_of_title(title: str) -> str | None:
    head, sep, _ = title.partition(": drift on ")
    return head[len("Retrain "):] if sep and head.startswith("Retrain ") else None


def reserve_slot(store: Any, branch: str, open_prs: dict[str, str], settings: Settings, holder: str,
                 now: datetime, *, model: str = "") -> str:
    """Count ``branch`` against the ceilings, race-free; "" when it got a slot, else why not.

    Overall: open PRs + unexpired reservations < max_open_prs. Per model: the model's open PRs (by title) and
    reservations < max_open_prs_per_model."""
    from hera_flows.steps.state import (
        RESERVATION_LABEL,
        RESERVATIONS_ANNOTATION,
        AlreadyExists,
        Conflict,
        aware,
        micro_time,
        parse_time,
        reservations,
    )

    now = aware(now)  # never a whole second: the Kubernetes client would send it without the fraction
    if branch in open_prs:
        return ""  # its PR is updated, no new PR
    name = naming.lease_name("drift-ceiling", CEILING_LEASE_KEY)
    for _ in range(_CAS_ATTEMPTS):
        current = store.get(name)
        oldest = now - timedelta(seconds=settings.reservation_seconds)
        live = {b: r for b, r in reservations(current).items()
                if (parse_time(r["at"]) or oldest) > oldest and b not in open_prs}
        if branch in live:
            return ""
        if len(open_prs) + len(live) >= settings.max_open_prs:
            return f"ceiling: {settings.max_open_prs} drift pull requests are open or being opened"
        if settings.max_open_prs_per_model > 0 and model:
            mine = sum(1 for title in open_prs.values() if _model_of_title(title) == model)
            mine += sum(1 for r in live.values() if r.get("model") == model)
            if mine >= settings.max_open_prs_per_model:
                return (f"model ceiling: {model} has {mine} drift pull request(s) open or being opened (at most "
                        f"{settings.max_open_prs_per_model})")
        live[branch] = {"at": micro_time(now), "run": holder, "model": model}
        lease: dict[str, Any] = json.loads(json.dumps(current)) if current else {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": store.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "hera-flows"}},
            "spec": {}}
        lease["metadata"].pop("managedFields", None)
        lease["metadata"].setdefault("labels", {})[RESERVATION_LABEL] = "true"
        lease["metadata"].setdefault("annotations", {})[RESERVATIONS_ANNOTATION] = json.dumps(live, sort_keys=True)
        # Every reservation is at most reservation_seconds old at renewTime: once the Lease expires, none is live
        # and gc-leases may delete it.
        lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": holder, "renewTime": micro_time(now),
                         "leaseDurationSeconds": max(1, min(int(settings.reservation_seconds), 2**31 - 1))}
        try:
            store.create(lease) if current is None else store.replace(lease)
        except (AlreadyExists, Conflict):
            continue
        return ""
    raise TransientError("the drift ceiling record kept changing while reserving a slot; try again later")


# --- the step --------------------------------------------------------------------------------------------


def _manual_event() -> list[DriftEvent]:
    from hera_flows.steps.drift.normalise import checked_name, severity

    model = checked_name(param("model"), "the model parameter")
    feature = checked_name(param("feature"), "the feature parameter", FEATURE)
    level = severity(param("severity") or "critical", "the severity parameter")
    return [DriftEvent(model, feature, level, "manual", None, None, "manual", f"manual-{int(time.time())}")]


def _open_branches(args: argparse.Namespace) -> Callable[[], dict[str, str]]:
    def fetch() -> dict[str, str]:
        from hera_flows.steps.forge.base import open_forge

        with open_forge(args.forge, api_url=args.api_url, repo_slug=args.repo_slug,
                        token=secret("HF_FORGE_TOKEN")) as forge:
            return {pr.head: pr.title for pr in forge.list_open_prs(args.branch_prefix + "/")}

    return fetch


CONTRACT = Step(
    name="drift-guard",
    entry="hera_flows.steps.drift.guard:main",
    summary="turn one drift delivery into at most one remediation, race-free",
    flags=(
        *GUARD_FLAGS,
        Flag("severities", "severities that are remediated", form="csv"),
        Flag("cooldown-seconds", "one remediation per (model, feature) in this window", kind=float),
        Flag("max-open-prs", "open drift PRs at most; 0 disables the ceiling (mode retrain)", kind=int),
        Flag("max-open-prs-per-model", "open drift PRs per model at most; 0 disables it", kind=int),
        Flag("reservation-seconds", "how long a proceeding run holds a ceiling slot before its PR must exist",
             kind=float),
        Flag("branch-prefix", "the drift branches' prefix"),
        Flag("forge", "forge kind", choices=("github", "gitlab")),
        Flag("api-url", "the forge's REST API root"),
        Flag("repo-slug", "the repository whose open PRs count against the ceiling", optional=True),
    ),
    inputs=("event-source", "model", "manual", "feature", "severity", *RUN_IDENTITY),
    outputs=merged(GUARD_OUTPUTS, ("model", "feature", "severity", "metric", "metric-value", "threshold", "source",
                                   "id", "title", "considered")),
)


def main(argv: list[str]) -> int:
    from hera_flows.steps.state import open_store

    args = CONTRACT.parse(argv)
    severities = tuple(args.severities)
    unknown = [s for s in severities if s not in SEVERITIES]
    if unknown or not severities:
        raise StepError(f"--severities: {unknown or 'empty'} (known: {', '.join(SEVERITIES)})")
    if args.max_open_prs > 0 and not args.repo_slug:
        raise StepError("--repo-slug is required for the open-PR ceiling (or set --max-open-prs=0)")
    settings = Settings(severities, args.cooldown_seconds, args.max_open_prs, args.branch_prefix,
                        args.reservation_seconds, args.max_open_prs_per_model, args.claim_seconds)

    manual = param("manual", "false")
    if manual not in ("true", "false", ""):
        raise StepError(f"the parameter manual must be 'true' or 'false', not {manual[:20]!r}")
    model = param("model").strip()
    if manual == "true":
        events = _manual_event()
    else:
        source = param("event-source").strip()
        if source not in SOURCES:
            raise StepError(f"unknown event-source {source[:40]!r} (known: {', '.join(SOURCES)})")
        body = event_data.field("event-body", namespace=args.state_namespace)
        if not body.strip():
            raise StepError("the event body is empty (was the workflow submitted by hand without manual=true?)")
        events = normalise(source, body)
        if model and not NAME.match(model):
            raise StepError(f"the model parameter {model[:60]!r} is not a valid name")
    workflow_name, workflow_uid = param("workflow-name"), param("workflow-uid")
    holder = workflow_uid or workflow_name
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the cooldown record needs its run)")

    decision = decide(events, settings=settings, store=open_store(args.state_namespace),
                      open_branches=_open_branches(args), holder=holder, model=model)
    chosen = decision.event
    label_workflow(args.state_namespace, workflow_name, run_labels(
        decision.label,
        dedupe_key=dedupe_key(chosen) if chosen is not None else "",
        model=chosen.model if chosen is not None else model,
    ), who="drift-guard")

    event = decision.event
    proceed = decision.proceed
    CONTRACT.write(
        args.outputs,
        decision=decision.label,
        reason=decision.reason,
        dedupe_key=decision.dedupe_key if proceed else "",
        branch=decision.branch if proceed else "",
        model=event.model if event and proceed else "",
        feature=event.feature if event and proceed else "",
        severity=event.severity if event and proceed else "",
        metric=event.metric if event and proceed else "",
        metric_value="" if not (event and proceed) or event.metric_value is None else repr(event.metric_value),
        threshold="" if not (event and proceed) or event.threshold is None else repr(event.threshold),
        source=event.source if event and proceed else "",
        id=event.id if event and proceed else "",
        title=PR_TITLE.format(model=event.model, feature=event.feature) if event and proceed else "",
        event=json.dumps(event.to_dict() if event and proceed else {}, sort_keys=True),
        considered=json.dumps(decision.considered[:200], sort_keys=True),
    )
    log(f"drift-guard: decision={decision.label}: {decision.reason}; "
        f"{len(events)} firing event(s), {len(decision.considered)} considered")
    return 0
