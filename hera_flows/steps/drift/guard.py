"""`hera-flows step drift-guard`: turn one delivery into its remediations — every key of it, each race-free.

The Sensor's ``rateLimit`` only delays events (docs/upstream-facts.md#events-sensor), so discarding happens here:

1. **authenticate** a source that signs its deliveries (``signature``: HMAC-SHA256 on the body as Argo Events
   delivers it) and **deduplicate** its delivery id (a retried attempt is not remediated twice);
2. **map** the event through the source's mapping (hera_flows/steps/drift/normalise.py): one delivery gives every
   drift event in it (an Alertmanager group with N firing alerts gives N); a record that cannot be mapped (no
   model, a bad name) is reported with its one-line reason, never dropped silently;
3. **filter**: keep the configured severities, drop duplicate keys of the delivery;
4. for **every** remaining (model, feature) key — ``model@*`` for a model-level event — in order:
   **cooldown** (``LeaseStore.acquire_cooldown``: a create or a resourceVersion compare-and-swap on one Lease per
   key, so two workflows started in the same second for the same key cannot both proceed; the claim is pending
   until that key's review succeeded, then confirmed for the whole window, and released by the run's exit handler
   otherwise), then the **ceilings**: the open drift PRs (forge) plus slots reserved by runs still in flight (one
   Lease, compare-and-swap) must stay below ``--max-open-prs`` overall and ``--max-open-prs-per-model`` per model
   across all the keys of the delivery; a key refused by a ceiling keeps no cooldown. At most
   ``--max-keys-per-run`` keys proceed; the rest wait for the next delivery (recorded).

The keys that proceed are the ``remediations`` output, a JSON list the workflow fans out over: each is remediated
by its own context -> agent -> review -> smoke chain under a per-model mutex (one remediation per model at a
time). A run with nothing to remediate ends Succeeded with ``decision=skipped-<why>`` (``proceed`` otherwise),
the ``reason`` output, and the label ``hera-flows.io/decision`` on its Workflow (plus ``hera-flows.io/dedupe-key``,
a hash of the first key). Decisions: ``proceed``, ``skipped-filter`` (nothing firing at a remediated severity),
``skipped-cooldown``, ``skipped-ceiling``, ``skipped-unmapped`` (nothing in the event could be mapped to a model),
``skipped-duplicate`` (a signed delivery seen before), ``rejected`` (a bad signature, a stale or malformed
delivery).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hera_flows.steps import event_data, naming
from hera_flows.steps.common import StepError, TransientError, log, param, secret
from hera_flows.steps.contract import GUARD_FLAGS, GUARD_OUTPUTS, RUN_IDENTITY, Flag, Step, merged
from hera_flows.steps.drift.normalise import (
    FEATURE,
    MODEL_LEVEL,
    NAME,
    SEVERITIES,
    Delivery,
    DriftEvent,
    Source,
    default_source,
    deliver,
    key_hash,
    parse_body,
    source_from_spec,
)
from hera_flows.steps.drift.pr import title_for
from hera_flows.steps.run_labels import label_workflow, run_labels

CEILING_LEASE_KEY = "drift-open-pr-ceiling"
_CAS_ATTEMPTS = 10
MAX_CONSIDERED = 200


@dataclass(frozen=True)
class Settings:
    severities: tuple[str, ...] = ("high", "critical")
    cooldown_seconds: float = 21600
    max_open_prs: int = 10  # 0: no ceiling (mode retrain opens no PRs)
    branch_prefix: str = "drift"
    reservation_seconds: float = 3600  # how long a proceeding run holds a ceiling slot before its PR exists
    max_open_prs_per_model: int = 0  # 0: no per-model ceiling
    claim_seconds: float = 3600  # how long a cooldown claim stays pending (the run's deadline)
    max_keys_per_run: int = 0  # 0: every key of the delivery; 1: the first key only (the one-key behaviour)


@dataclass(frozen=True)
class Remediation:
    """One key this run remediates: what the fanned-out chain receives (every value a string, for withParam)."""

    event: DriftEvent
    dedupe_key: str
    branch: str
    lease: str  # the key's cooldown claim, confirmed by this key's own review

    def item(self, confirm_also: tuple[str, ...] = ()) -> dict[str, str]:
        event = self.event
        return {
            "model": event.model,
            "feature": event.feature,
            "dedupe-key": self.dedupe_key,
            "branch": self.branch,
            "title": title_for(event.model, event.feature),
            "severity": event.severity,
            "metric": event.metric,
            "metric-value": "" if event.metric_value is None else repr(event.metric_value),
            "threshold": "" if event.threshold is None else repr(event.threshold),
            "source": event.source,
            "id": event.id,
            "event": json.dumps(event.to_dict(), sort_keys=True),
            "claims": ",".join((self.lease, *confirm_also)),
        }


@dataclass
class Decision:
    proceed: bool
    label: str  # the decision output and label (see the module docstring)
    reason: str
    remediations: list[Remediation] = field(default_factory=list)
    considered: list[dict[str, Any]] = field(default_factory=list)
    skip: Remediation | None = None  # the first key that was skipped (for the label), when nothing proceeds

    @property
    def event(self) -> DriftEvent | None:
        first = self.remediations[0] if self.remediations else self.skip
        return first.event if first else None

    @property
    def branch(self) -> str:
        return self.remediations[0].branch if self.remediations else ""

    @property
    def dedupe_key(self) -> str:
        first = self.remediations[0] if self.remediations else self.skip
        return first.dedupe_key if first else ""

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [r.event.key for r in self.remediations]


def dedupe_key(event: DriftEvent) -> str:
    """``model@feature``; ``model@*`` for a model-level event."""
    return naming.dedupe_key(*event.key)


def branch_for(prefix: str, model: str, feature: str) -> str:
    """``<prefix>/<model>-<feature>-<id>``; ``<id>`` is a hash of the key, so every event of a key gets the same
    branch and the review step updates the same PR. A model-level key (feature ``*`` or empty) gets
    ``<prefix>/<model>-<id>``."""
    feature = feature or MODEL_LEVEL
    return naming.branch_name(prefix, model, feature, key_hash(model, feature, 8))


def _entry(event: DriftEvent, outcome: str) -> dict[str, Any]:
    return {"model": event.model, "feature": event.feature or MODEL_LEVEL, "severity": event.severity,
            "id": event.id, "outcome": outcome}


def decide(
    events: list[DriftEvent],
    *,
    settings: Settings,
    store: Any,
    open_branches: Callable[[], Any],
    holder: str,
    model: str = "",
    now: datetime | None = None,
    delivery: Delivery | None = None,
) -> Decision:
    """The guard's decision for one delivery (see the module docstring). ``store`` is a LeaseStore; ``model``
    restricts a manual run to its model; ``delivery`` adds the records that were not firing or not mappable."""
    moment = now or store.now()  # the API server's clock in a cluster: a skewed pod clock moves no cooldown
    considered: list[dict[str, Any]] = []
    if delivery is not None:
        considered += [{"record": line, "outcome": "unmapped"} for line in delivery.unmapped]
        considered += [{"record": line, "outcome": "not firing"} for line in delivery.not_firing]
    candidates: dict[tuple[str, str], DriftEvent] = {}
    for event in events:
        if event.severity not in settings.severities:
            considered.append(_entry(event, f"severity {event.severity} not in {list(settings.severities)}"))
        elif model and event.model != model:
            considered.append(_entry(event, f"model differs from this run's ({model})"))
        elif event.key in candidates:
            considered.append(_entry(event, "duplicate of an earlier alert of this delivery"))
        else:
            candidates[event.key] = event
    if not candidates:
        return _nothing(events, settings, delivery, considered, model)

    branches: dict[str, str] | None = None
    remediations: list[Remediation] = []
    skipped: list[tuple[str, Remediation, str]] = []  # (label, key, reason)
    for event in candidates.values():
        key = dedupe_key(event)
        branch = branch_for(settings.branch_prefix, event.model, event.feature)
        lease = naming.lease_name("drift-cooldown", key)
        candidate = Remediation(event, key, branch, lease)
        if settings.max_keys_per_run and len(remediations) >= settings.max_keys_per_run:
            reason = f"not taken: this run remediates at most {settings.max_keys_per_run} key(s); a later delivery " \
                     "is evaluated again"
            considered.append(_entry(event, reason))
            continue
        cooldown = store.acquire_cooldown(lease, holder, settings.cooldown_seconds, moment, key=key,
                                          pending_seconds=settings.claim_seconds)
        if not cooldown.proceed:
            considered.append(_entry(event, cooldown.reason))
            skipped.append(("skipped-cooldown", candidate, f"{key}: {cooldown.reason}"))
            continue
        if settings.max_open_prs > 0:
            if branches is None:
                branches = _as_titles(open_branches(), settings.branch_prefix)
            refusal = reserve_slot(store, branch, branches, settings, holder, moment, model=event.model)
            if refusal:
                store.release(holder, name=lease)  # a key the ceiling refuses keeps no cooldown
                reason = f"{refusal}; {key} is skipped (no cooldown started: a later alert is evaluated again)"
                considered.append(_entry(event, reason))
                skipped.append(("skipped-ceiling", candidate, reason))
                continue
        considered.append(_entry(event, "proceed"))
        remediations.append(candidate)
    if not remediations:
        label, first, reason = skipped[0]
        if len(skipped) > 1:
            reason += f" (and {len(skipped) - 1} more key(s) skipped: see considered)"
        return Decision(False, label, reason, [], considered, skip=first)
    keys = ", ".join(r.dedupe_key for r in remediations[:10]) + (" ..." if len(remediations) > 10 else "")
    reason = f"{len(remediations)} key(s) to remediate: {keys}"
    counts = _outcomes(considered)
    if counts:
        reason += f"; {counts}"
    if delivery is not None and delivery.unmapped:
        reason += f"; first unmapped: {delivery.unmapped[0]}"
    return Decision(True, "proceed", reason, remediations, considered)


def _outcomes(considered: list[dict[str, Any]]) -> str:
    kinds: dict[str, int] = {}
    for entry in considered:
        outcome = str(entry.get("outcome", ""))
        kind = ("cooldown" if outcome.startswith(("cooldown", "in progress")) else
                "ceiling" if "ceiling" in outcome else
                "not taken" if outcome.startswith("not taken") else
                "severity" if outcome.startswith("severity") else
                "proceed" if outcome == "proceed" else outcome.split(" ")[0])
        if kind != "proceed":
            kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in kinds.items())


def _nothing(events: list[DriftEvent], settings: Settings, delivery: Delivery | None,
             considered: list[dict[str, Any]], model: str) -> Decision:
    """Why a delivery with no candidate key is skipped: nothing mapped, nothing firing, or filtered."""
    if events:
        return Decision(False, "skipped-filter", f"no firing drift event with severity in {list(settings.severities)}"
                        + (f" for model {model}" if model else ""), considered=considered)
    if delivery is not None and delivery.unmapped:
        more = f" (and {len(delivery.unmapped) - 1} more)" if len(delivery.unmapped) > 1 else ""
        return Decision(False, "skipped-unmapped", delivery.unmapped[0] + more, considered=considered)
    if delivery is not None and delivery.empty:
        return Decision(False, "skipped-unmapped", delivery.empty, considered=considered)
    if delivery is not None and delivery.not_firing:
        return Decision(False, "skipped-filter", f"nothing is firing: {delivery.not_firing[0]}"
                        + (f" (and {len(delivery.not_firing) - 1} more)" if len(delivery.not_firing) > 1 else ""),
                        considered=considered)
    return Decision(False, "skipped-filter", "the delivery holds no drift event", considered=considered)


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
    reservations < max_open_prs_per_model. The reservations of this run's earlier keys count like anyone's."""
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


# --- signed deliveries ------------------------------------------------------------------------------------------


def signature_env(source: str) -> str:
    """The environment variable holding a signing source's secret."""
    return "HF_DRIFT_SIGNATURE_" + source.upper().replace("-", "_")


def _header(headers: dict[str, Any], name: str) -> str:
    """The first value of a webhook header (Argo Events canonicalises names and keeps lists of values)."""
    values = headers.get(event_data.canonical_header(name))
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return values if isinstance(values, str) else ""


def verify_signature(source: Source, body: str, headers: dict[str, Any], secret_value: str, now: float) -> str:
    """Authenticate a signed delivery; its delivery id, or Rejected saying why not."""
    from hera_flows.steps.webhook_signature import (
        Rejected,
        candidate_bodies,
        check_timestamp,
        decoded_digest,
        hmac_sha256_matches,
        utf8,
    )

    spec = source.signature or {}
    if not secret_value:
        raise StepError(f"{source.name}: no signing secret is configured (the Secret value is empty)")
    raw = _header(headers, spec["header"]).strip()
    if not raw:
        raise Rejected(f"{source.name}: the delivery has no {spec['header']} header (is signing enabled at the "
                       "sender?)")
    prefix = spec.get("prefix") or ""
    if prefix and not raw.startswith(prefix):
        raise Rejected(f"{source.name}: the {spec['header']} header does not start with {prefix!r}")
    expected = decoded_digest(raw[len(prefix):], spec.get("encoding", "hex"),
                              f"{source.name}: the {spec['header']} header")
    delivery_id = _header(headers, spec["id_header"]).strip()
    if not delivery_id or len(delivery_id) > 200 or not delivery_id.isprintable():
        raise Rejected(f"{source.name}: the delivery has no usable {spec['id_header']} header")
    timestamp = _header(headers, spec["timestamp_header"]).strip() if spec.get("timestamp_header") else ""
    if spec.get("timestamp_header") and not timestamp.isdigit():
        raise Rejected(f"{source.name}: the {spec['timestamp_header']} header {timestamp[:40]!r} is not Unix seconds")
    prefix_text = {"body": "", "timestamp.body": f"{timestamp}.",
                   "id.timestamp.body": f"{delivery_id}.{timestamp}."}[spec.get("signed", "body")]
    if not hmac_sha256_matches(secret_value, candidate_bodies(body), lambda b: utf8(prefix_text + b, "delivery"),
                               expected):
        raise Rejected(f"{source.name}: the {spec['header']} does not match: not signed with the configured secret, "
                       "or the body, id or timestamp was changed")
    if timestamp:
        check_timestamp(int(timestamp), now, int(spec.get("tolerance_seconds", 300)), what="the delivery timestamp")
    return delivery_id


def claim_delivery(store: Any, source: Source, delivery_id: str, attempt: str, holder: str,
                   claim_seconds: float) -> str:
    """Record a signed delivery id once; "" for the first run that sees it, else why this one is a duplicate."""
    key = naming.dedupe_key(source.name, delivery_id)
    lease = naming.lease_name("drift-delivery", key)
    dedupe = float((source.signature or {}).get("dedupe_seconds", 86400))
    if store.claim_once(lease, holder, key=key, duration_seconds=dedupe, pending_seconds=claim_seconds):
        return ""
    current = store.get(lease) or {}
    earlier = (current.get("spec") or {}).get("holderIdentity") or "another run"
    shown = f" (attempt {attempt[:10]})" if attempt else ""
    return f"{source.name}: delivery {delivery_id[:80]}{shown} was already received by {earlier}"


# --- the step --------------------------------------------------------------------------------------------


def _manual_event() -> list[DriftEvent]:
    from hera_flows.steps.drift.normalise import checked_name, severity

    model = checked_name(param("model"), "the model parameter")
    raw_feature = param("feature").strip()
    feature = checked_name(raw_feature, "the feature parameter", FEATURE) if raw_feature else ""
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
    summary="turn one drift delivery into its remediations, every key race-free",
    flags=(
        *GUARD_FLAGS,
        Flag("sources", "every drift source: kind, shape, effective mapping, severity words, signature",
             form="document"),
        Flag("severities", "severities that are remediated", form="csv"),
        Flag("cooldown-seconds", "one remediation per (model, feature) in this window", kind=float),
        Flag("max-open-prs", "open drift PRs at most; 0 disables the ceiling (mode retrain)", kind=int),
        Flag("max-open-prs-per-model", "open drift PRs per model at most; 0 disables it", kind=int),
        Flag("max-keys-per-run", "keys one delivery remediates at most", kind=int),
        Flag("reservation-seconds", "how long a proceeding run holds a ceiling slot before its PR must exist",
             kind=float),
        Flag("branch-prefix", "the drift branches' prefix"),
        Flag("forge", "forge kind", choices=("github", "gitlab")),
        Flag("api-url", "the forge's REST API root"),
        Flag("repo-slug", "the repository whose open PRs count against the ceiling", optional=True),
    ),
    inputs=("event-source", "model", "manual", "feature", "severity", *RUN_IDENTITY),
    outputs=merged(GUARD_OUTPUTS, ("remediations", "count", "model", "considered")),
)


def _document(source: Source, namespace: str) -> tuple[str, dict[str, Any]]:
    """The delivery as the mapping reads it (the body text, and body + the transport's fields)."""
    body = event_data.field("event-body", namespace=namespace)
    if not body.strip():
        raise StepError("the event body is empty (was the workflow submitted by hand without manual=true?)")
    headers_text = event_data.field("event-headers", namespace=namespace)
    try:
        headers = json.loads(headers_text) if headers_text.strip() else {}
    except json.JSONDecodeError:
        headers = {}
    headers = headers if isinstance(headers, dict) else {}
    event_id = event_data.field("event-id", namespace=namespace)
    if source.kind == "kafka":
        return body, {"body": body, "headers": {k: v for k, v in headers.items() if isinstance(v, str)},
                      "topic": event_data.field("event-topic", namespace=namespace),
                      "key": event_data.field("event-key", namespace=namespace), "id": event_id}
    return body, {"body": body, "header": headers, "id": event_id}


def main(argv: list[str]) -> int:
    from hera_flows.steps.state import open_store
    from hera_flows.steps.webhook_signature import Rejected

    args = CONTRACT.parse(argv)
    severities = tuple(args.severities)
    unknown = [s for s in severities if s not in SEVERITIES]
    if unknown or not severities:
        raise StepError(f"--severities: {unknown or 'empty'} (known: {', '.join(SEVERITIES)})")
    if args.max_open_prs > 0 and not args.repo_slug:
        raise StepError("--repo-slug is required for the open-PR ceiling (or set --max-open-prs=0)")
    settings = Settings(severities, args.cooldown_seconds, args.max_open_prs, args.branch_prefix,
                        args.reservation_seconds, args.max_open_prs_per_model, args.claim_seconds,
                        args.max_keys_per_run)
    workflow_name, workflow_uid = param("workflow-name"), param("workflow-uid")
    holder = workflow_uid or workflow_name
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the cooldown record needs its run)")
    store = open_store(args.state_namespace)

    manual = param("manual", "false")
    if manual not in ("true", "false", ""):
        raise StepError(f"the parameter manual must be 'true' or 'false', not {manual[:20]!r}")
    delivery: Delivery | None = None
    confirm_also: tuple[str, ...] = ()
    decision: Decision | None = None
    model = ""
    if manual == "true":
        events = _manual_event()
        model = events[0].model
    else:
        name = param("event-source").strip()
        specs = args.sources if isinstance(args.sources, dict) else {}
        if name not in specs:
            raise StepError(f"unknown event-source {name[:40]!r} (configured: {', '.join(sorted(specs))})")
        source = source_from_spec(name, specs[name]) if specs[name] else default_source(name)
        body_text, document = _document(source, args.state_namespace)
        events = []
        try:
            if source.signature:
                delivery_id = verify_signature(source, body_text, document.get("header") or {},
                                               os.environ.get(signature_env(name), ""), time.time())
                attempt_header = source.signature.get("attempt_header")
                attempt = _header(document.get("header") or {}, attempt_header) if attempt_header else ""
                duplicate = claim_delivery(store, source, delivery_id, attempt, holder, settings.claim_seconds)
                if duplicate:
                    decision = Decision(False, "skipped-duplicate", duplicate)
                else:
                    confirm_also = (naming.lease_name("drift-delivery", naming.dedupe_key(name, delivery_id)),)
            if decision is None:
                document["body"] = parse_body(name, body_text)
                delivery = deliver(source, document)
                events = delivery.events
        except Rejected as exc:
            decision = Decision(False, "rejected", str(exc))
        except StepError as exc:  # a body that is not JSON: nothing can be mapped from it
            if isinstance(exc, TransientError):
                raise
            decision = Decision(False, "rejected", str(exc))
    if decision is None:
        decision = decide(events, settings=settings, store=store, open_branches=_open_branches(args), holder=holder,
                          model=model, delivery=delivery)
    if confirm_also and not decision.proceed:
        store.confirm(holder, confirm_also)  # nothing to remediate: the delivery is done, a retry is a duplicate
    chosen = decision.event
    label_workflow(args.state_namespace, workflow_name, run_labels(
        decision.label,
        dedupe_key=decision.dedupe_key,
        model=chosen.model if chosen is not None else model,
    ), who="drift-guard")

    first = decision.remediations[0] if decision.remediations else None
    CONTRACT.write(
        args.outputs,
        decision=decision.label,
        reason=decision.reason,
        dedupe_key=first.dedupe_key if first else "",
        branch=first.branch if first else "",
        event=json.dumps(first.event.to_dict() if first else {}, sort_keys=True),
        model=first.event.model if first else "",
        remediations=json.dumps([r.item(confirm_also) for r in decision.remediations], sort_keys=True),
        count=str(len(decision.remediations)),
        considered=json.dumps(decision.considered[:MAX_CONSIDERED], sort_keys=True),
    )
    log(f"drift-guard: decision={decision.label}: {decision.reason}; {len(events)} firing event(s), "
        f"{len(decision.considered)} considered")
    return 0


__all__ = ["NAME", "Decision", "Remediation", "Settings", "branch_for", "decide", "main"]
