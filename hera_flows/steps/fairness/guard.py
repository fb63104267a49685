"""`hera-flows step fairness-guard`: the first task of the weekly fairness audit. It validates the calendar tick
(or a manual run), fixes the run's names from the ISO week, and lets at most one scheduled audit run per week.

A calendar EventSource can deliver the same tick twice (the Sensor's ``atLeastOnce`` redelivers after a restart,
two EventSource replicas during a rollout each fire), and Argo has no per-key deduplication
(docs/upstream-facts.md#events-sensor). So the week is claimed race-free with ``LeaseStore.claim_once`` on the
Lease ``naming.lease_name("fairness-week", "fairness-audit@<yyyy>-W<ww>")``: a Kubernetes create that only one run can
win. The loser ends Succeeded with ``decision=skipped-duplicate`` and the reason (who holds the week); an Argo retry
of the winner's own guard pod (same workflow uid) proceeds again.

The week Lease has no owner reference on purpose: it must outlive the Workflow (whose TTL may be shorter than a
week) to keep refusing a late redelivery. That is one small Lease per week (labelled
``app.kubernetes.io/managed-by=hera-flows``) with ``leaseDurationSeconds`` of 8 days: the daily ``gc-leases``
step deletes it once that (plus its grace period) has passed, long after any redelivery of the tick.

Manual runs (``manual=true``, which the Sensor never sets) neither check nor record the claim: a person who reruns
the audit, e.g. after fixing an evaluation set, means it. They are still safe to repeat: the workflow mutex
serialises them with the scheduled run, and the week's branch and PR dedupe key make the rerun update the same PR,
or open nothing when no card moved.

Outputs: the standard guard outputs (``decision``, ``reason``, ``dedupe-key``, ``branch``, ``event``) plus
``date`` (the report date), ``week`` (``YYYY-Www``) and ``title`` (the PR title), which every later task reuses.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hera_flows.steps import naming
from hera_flows.steps.common import StepError, log, param
from hera_flows.steps.contract import GUARD_FLAGS, GUARD_OUTPUTS, RUN_IDENTITY, Flag, Step, merged
from hera_flows.steps.run_labels import label_workflow, run_labels

LEASE_KIND = "fairness-week"
CLAIM_SECONDS = 8 * 24 * 3600  # a week and a day: then gc-leases may delete the claim
KEY_PREFIX = "fairness-audit"
MAX_EVENT_TIME_LENGTH = 100
# Argo Events' calendar EventSource sends Go's time.Time.String(): "2006-01-02 15:04:05.999999999 -0700 MST",
# followed by the monotonic clock reading (" m=+21599.998761042") when the time came from time.Now().
_GO_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2}) (?P<clock>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d{1,9})? "
    r"(?P<offset>[+-]\d{4}) (?P<zone>[A-Za-z0-9+_-]{1,12})(?: m=[+-]\d+(?:\.\d+)?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Tick:
    """What the run is about: the report date (the tick's local date), where it came from, and its timestamp."""

    date: date
    source: str  # calendar | manual
    timestamp: str  # ISO 8601 with the tick's offset; "" for a manual run without event time

    @property
    def week(self) -> str:
        year, week, _ = self.date.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def dedupe_key(self) -> str:
        return naming.dedupe_key(KEY_PREFIX, self.week)


@dataclass(frozen=True)
class Decision:
    decision: str  # proceed | skipped-duplicate
    reason: str


def _check_line(value: str, what: str) -> str:
    if len(value) > MAX_EVENT_TIME_LENGTH:
        raise StepError(f"{what} is longer than {MAX_EVENT_TIME_LENGTH} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise StepError(f"{what} {value[:60]!r} contains control characters")
    return value


def parse_event_time(value: str) -> tuple[date, str]:
    """(local date, ISO 8601 timestamp) of a calendar tick: Go's ``time.String()`` (what Argo Events sends) or
    RFC 3339. The date is the tick's own, in the schedule's time zone, so a Monday 06:00 Europe/Berlin tick is
    that Monday even though it is Sunday evening in UTC for some schedules."""
    text = _check_line(value.strip(), "the event time")
    match = _GO_TIME.match(text)
    try:
        if match:
            offset = match["offset"]
            fraction = (match["fraction"] or "")[:7].ljust(7, "0") if match["fraction"] else ""
            moment = datetime.fromisoformat(f"{match['date']}T{match['clock']}{fraction}{offset[:3]}:{offset[3:]}")
        elif "T" in text or "t" in text:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("no offset")
        else:
            raise ValueError("unknown layout")
    except ValueError:
        raise StepError(
            f"the event time {text[:60]!r} is not a calendar tick: expected Argo Events' "
            "'YYYY-MM-DD hh:mm:ss[.fraction] +hhmm ZONE' (or RFC 3339)"
        ) from None
    return moment.date(), moment.isoformat()


def parse_date(value: str) -> date:
    text = value.strip()
    try:
        if not _DATE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise StepError(f"the date parameter {text[:60]!r} is not a YYYY-MM-DD date") from None


def resolve(*, manual: bool, event_time: str, date_param: str, timezone: str, today: date | None = None) -> Tick:
    """The run's tick. Scheduled runs need a valid event time and take no ``date``; manual runs take ``date``,
    else the event time if one was given, else today in the schedule's time zone."""
    if manual:
        if date_param.strip():
            return Tick(parse_date(date_param), "manual", "")
        if event_time.strip():
            day, stamp = parse_event_time(event_time)
            return Tick(day, "manual", stamp)
        if today is None:
            from zoneinfo import ZoneInfo

            today = datetime.now(ZoneInfo(timezone)).date()
        return Tick(today, "manual", "")
    if not event_time.strip():
        raise StepError("the event time is empty (was the workflow submitted by hand without manual=true?)")
    if date_param.strip():
        raise StepError("the date parameter is only for manual runs: submit with -p manual=true -p date=YYYY-MM-DD")
    day, stamp = parse_event_time(event_time)
    return Tick(day, "calendar", stamp)


def decide(tick: Tick, *, store: Any, holder: str, now: datetime | float | None = None,
           claim_seconds: float | None = None) -> Decision:
    """Claim the tick's week (scheduled runs only); ``store`` is a LeaseStore."""
    if tick.source == "manual":
        return Decision("proceed", f"manual run for week {tick.week} (the weekly claim is not checked)")
    key = tick.dedupe_key
    name = naming.lease_name(LEASE_KIND, key)
    if store.claim_once(name, holder, None, key=key, now=now, duration_seconds=CLAIM_SECONDS,
                        pending_seconds=claim_seconds):
        return Decision("proceed", f"scheduled audit for week {tick.week} ({tick.date.isoformat()})")
    current = store.get(name) or {}
    spec = current.get("spec") or {}
    who = spec.get("holderIdentity") or "another run"
    when = spec.get("acquireTime") or "earlier"
    return Decision("skipped-duplicate",
                    f"week {tick.week} was already claimed by {who} at {when} (lease {name}): a duplicated or "
                    "redelivered calendar event; submit with -p manual=true to audit again")


def title(report_date: date) -> str:
    return f"Weekly model-card refresh — {report_date.isoformat()}"


CONTRACT = Step(
    name="fairness-guard",
    entry="hera_flows.steps.fairness.guard:main",
    summary="validate the calendar tick (or a manual run), name the run from its ISO week, claim the week",
    flags=(*GUARD_FLAGS, Flag("branch-prefix", "the refresh branches' prefix"),
           Flag("timezone", "the schedule's time zone: 'today' for manual runs")),
    inputs=("event-time", "manual", "date", *RUN_IDENTITY),
    outputs=merged(GUARD_OUTPUTS, ("date", "week", "title")),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    manual = param("manual", "false")
    if manual not in ("true", "false", ""):
        raise StepError(f"the parameter manual must be 'true' or 'false', not {manual[:20]!r}")
    tick = resolve(manual=manual == "true", event_time=param("event-time"), date_param=param("date"),
                   timezone=args.timezone)
    branch = naming.branch_name(args.branch_prefix, tick.week.lower())  # validates the prefix before any claim

    workflow_name, workflow_uid = param("workflow-name"), param("workflow-uid")
    holder = workflow_uid or workflow_name
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the week claim needs its run)")
    store = None
    if tick.source != "manual":
        from hera_flows.steps.state import open_store

        store = open_store(args.state_namespace)
    decision = decide(tick, store=store, holder=holder, claim_seconds=args.claim_seconds)

    proceed = decision.decision == "proceed"
    event = {"source": tick.source, "timestamp": tick.timestamp or None, "date": tick.date.isoformat(),
             "week": tick.week, "manual": tick.source == "manual"}
    CONTRACT.write(
        args.outputs,
        decision=decision.decision,
        reason=decision.reason,
        dedupe_key=tick.dedupe_key if proceed else "",
        branch=branch if proceed else "",
        event=json.dumps(event, sort_keys=True),
        date=tick.date.isoformat(),
        week=tick.week,
        title=title(tick.date) if proceed else "",
    )
    label_workflow(args.state_namespace, workflow_name, run_labels(decision.decision, dedupe_key=tick.dedupe_key),
                   who="fairness-guard")
    log(f"fairness-guard: decision={decision.decision} source={tick.source} week={tick.week}: {decision.reason}")
    return 0
