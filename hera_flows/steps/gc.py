"""`hera-flows step gc-leases`: delete the guards' Lease records once they have expired, so they do not pile up.

Replay and triage records are owned by their Workflow and go with it, but the records that must outlive a Workflow
(drift cooldowns, the drift open-PR ceiling, the fairness week claims) have no owner: one small Lease per key or
week, forever, unless something removes them. This step, run daily by the ``hera-flows-gc`` CronWorkflow
(hera_flows/blocks/gc.py), removes them. It is deliberately conservative:

- it lists only Leases labelled ``app.kubernetes.io/managed-by=hera-flows`` and named ``hf-...``; anything else
  (a controller's leader election, another tool's Lease) is never touched;
- a Lease is deleted only when it has ``spec.leaseDurationSeconds`` and
  ``(renewTime or acquireTime) + leaseDurationSeconds + grace`` is in the past; a Lease without a duration or a
  time is kept (it is owned by its Workflow, or it is not ours to judge);
- the delete is conditional on the ``resourceVersion`` that was listed: a guard that renewed the Lease in between
  (a new cooldown started) makes the API server answer 409, and the Lease is kept (counted as ``raced``).

Outputs: ``listed``, ``kept``, ``deleted``, ``raced`` (counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hera_flows.steps.common import StepError, log
from hera_flows.steps.contract import Flag, Step


@dataclass
class GcResult:
    listed: int = 0
    kept: int = 0
    deleted: list[str] = field(default_factory=list)
    raced: list[str] = field(default_factory=list)


def expiry(lease: dict[str, Any]) -> datetime | None:
    """When the Lease's record ends (``renewTime`` or ``acquireTime`` + ``leaseDurationSeconds``), or None."""
    from hera_flows.steps.state import parse_time

    spec = lease.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
        return None
    start = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    return start + timedelta(seconds=duration) if start is not None else None


def _ours(lease: dict[str, Any]) -> bool:
    from hera_flows.steps.state import MANAGED_BY, check_lease_name

    metadata = lease.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if any(labels.get(k) != v for k, v in MANAGED_BY.items()):
        return False  # a store that ignored the selector must still not make us delete a foreign Lease
    try:
        check_lease_name(str(metadata.get("name", "")))
    except ValueError:
        return False
    return bool(metadata.get("resourceVersion"))


def collect(store: Any, *, grace_seconds: float, now: datetime | float | None = None) -> GcResult:
    """Delete the expired records of ``store`` (a LeaseStore); see the module docstring for what is kept."""
    from hera_flows.steps.state import MANAGED_BY_SELECTOR, Conflict, aware

    if grace_seconds < 0:
        raise StepError("--grace-seconds must not be negative")
    moment = aware(now if now is not None else store.now())  # the API server's clock in a cluster
    result = GcResult()
    for lease in store.list(MANAGED_BY_SELECTOR):
        result.listed += 1
        ends = expiry(lease)
        if not _ours(lease) or ends is None or ends + timedelta(seconds=grace_seconds) >= moment:
            result.kept += 1
            continue
        name = lease["metadata"]["name"]
        try:
            store.delete(name, lease["metadata"]["resourceVersion"])
        except Conflict:
            result.raced.append(name)  # renewed (or deleted) since the list: its new state is not ours to judge
            continue
        result.deleted.append(name)
    return result


CONTRACT = Step(
    name="gc-leases",
    entry="hera_flows.steps.gc:main",
    summary="delete the guards' expired Lease records",
    flags=(Flag("state-namespace", "namespace of the guards' Leases"),
           Flag("grace-seconds", "how long past its expiry a record is kept before it is deleted", kind=float)),
    outputs=("listed", "kept", "deleted", "raced"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    from hera_flows.steps.state import open_store

    result = collect(open_store(args.state_namespace), grace_seconds=args.grace_seconds)
    CONTRACT.write(args.outputs, listed=str(result.listed), kept=str(result.kept), deleted=str(len(result.deleted)),
                  raced=str(len(result.raced)))
    for name in result.deleted:
        log(f"gc-leases: deleted {name}")
    for name in result.raced:
        log(f"gc-leases: kept {name}: it changed since it was listed")
    log(f"gc-leases: namespace {args.state_namespace}: listed={result.listed} kept={result.kept} "
        f"deleted={len(result.deleted)} raced={len(result.raced)} (grace {args.grace_seconds:g} s)")
    return 0
