"""The fairness guard: the calendar tick is validated, and one scheduled audit per ISO week proceeds however many
times the tick is delivered — decided by racing threads on the file Lease store and on the Kubernetes Lease API
stand-in; manual runs always proceed and leave no claim."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from hera_flows.steps import naming
from hera_flows.steps.common import StepError
from hera_flows.steps.fairness import guard
from hera_flows.steps.state import FileLeaseStore, KubernetesLeaseStore
from tests.support.settings import generated_flags

NS = "mlops-automation"


@pytest.fixture()
def tick_time(fixtures_dir: Path) -> str:
    return json.loads((fixtures_dir / "argo-events" / "calendar_event.json").read_text())["eventTime"]


def test_the_fixture_tick_is_sunday_of_week_47(tick_time: str) -> None:
    tick = guard.resolve(manual=False, event_time=tick_time, date_param="", timezone="UTC")
    assert (tick.date, tick.week, tick.source) == (date(2026, 11, 22), "2026-W47", "calendar")
    assert tick.timestamp == "2026-11-22T02:00:00.000387+00:00"
    assert tick.dedupe_key == "fairness-audit@2026-W47"


@pytest.mark.parametrize(("value", "day"), [
    ("2026-11-30 06:00:00 +0100 CET", date(2026, 11, 30)),  # the tick's own zone decides the date
    ("2026-11-30 00:30:00.5 +0100 CET m=+1.000000001", date(2026, 11, 30)),
    ("2026-11-30T06:00:00Z", date(2026, 11, 30)),
    ("2027-01-01 06:00:00 +0000 UTC", date(2027, 1, 1)),  # ISO week 2026-W53
])
def test_tick_layouts(value: str, day: date) -> None:
    assert guard.parse_event_time(value)[0] == day
    assert guard.Tick(date(2027, 1, 1), "calendar", "").week == "2026-W53"


@pytest.mark.parametrize(("event_time", "date_param", "message"), [
    ("", "", "submitted by hand without manual=true"),
    ("   ", "", "submitted by hand without manual=true"),
    ("yesterday", "", "is not a calendar tick"),
    ("2026-13-40 06:00:00 +0000 UTC", "", "is not a calendar tick"),
    ("2026-11-30 06:00:00", "", "is not a calendar tick"),  # no offset: the date would be a guess
    ("2026-11-30T06:00:00", "", "is not a calendar tick"),
    ("2026-11-30 06:00:00 +0000 UTC; rm -rf /", "", "is not a calendar tick"),
    ("2026-11-30 06:00:00 +0000 \u202eUTC", "", "control characters"),
    ("2" * 101, "", "longer than 100"),
    ("2026-11-30 06:00:00 +0000 UTC", "2026-11-30", "only for manual runs"),
])
def test_a_bad_event_is_one_clear_error(event_time: str, date_param: str, message: str) -> None:
    with pytest.raises(StepError, match=message):
        guard.resolve(manual=False, event_time=event_time, date_param=date_param, timezone="UTC")


def test_manual_dates() -> None:
    assert guard.resolve(manual=True, event_time="", date_param="2026-01-02", timezone="UTC").date == date(2026, 1, 2)
    assert guard.resolve(manual=True, event_time="2026-11-30 06:00:00 +0100 CET", date_param="",
                         timezone="UTC").date == date(2026, 11, 30)
    assert guard.resolve(manual=True, event_time="", date_param="", timezone="UTC",
                         today=date(2026, 12, 1)).week == "2026-W49"
    for bad in ("30/11/2026", "2026-02-30", "2026-11-30T00:00"):
        with pytest.raises(StepError, match="YYYY-MM-DD"):
            guard.resolve(manual=True, event_time="", date_param=bad, timezone="UTC")


def _race(make_store, tick: guard.Tick, runs: int = 8) -> list[str]:
    barrier = threading.Barrier(runs)

    def run(i: int) -> str:
        store = make_store()
        barrier.wait()
        return guard.decide(tick, store=store, holder=f"uid-{i}").decision

    with ThreadPoolExecutor(runs) as pool:
        return list(pool.map(run, range(runs)))


def test_duplicated_ticks_racing_on_the_file_store_run_one_audit(tmp_path: Path, tick_time: str) -> None:
    tick = guard.resolve(manual=False, event_time=tick_time, date_param="", timezone="UTC")
    decisions = _race(lambda: FileLeaseStore(tmp_path, NS), tick)
    assert sorted(decisions) == ["proceed"] + ["skipped-duplicate"] * 7
    store = FileLeaseStore(tmp_path, NS)
    lease = store.get(naming.lease_name("fairness-week", "fairness-audit@2026-W47"))
    winner = lease["spec"]["holderIdentity"]
    assert "ownerReferences" not in lease["metadata"]  # outlives the Workflow and its TTL
    # the winner's own guard retried by Argo proceeds again; a later redelivery does not
    assert guard.decide(tick, store=store, holder=winner).decision == "proceed"
    late = guard.decide(tick, store=store, holder="uid-late")
    assert late.decision == "skipped-duplicate" and winner in late.reason and "manual=true" in late.reason
    # another tick of the same week (a Thursday redelivery) is the same week; next week is a new claim
    thursday = guard.resolve(manual=False, event_time="2026-11-19 06:00:00 +0000 UTC", date_param="", timezone="UTC")
    assert guard.decide(thursday, store=store, holder="uid-x").decision == "skipped-duplicate"
    monday = guard.resolve(manual=False, event_time="2026-11-23 06:00:00 +0000 UTC", date_param="", timezone="UTC")
    assert guard.decide(monday, store=store, holder="uid-y").decision == "proceed"


def test_duplicated_ticks_racing_on_the_kubernetes_api_run_one_audit(kube_api, tick_time: str) -> None:
    tick = guard.resolve(manual=False, event_time=tick_time, date_param="", timezone="UTC")
    decisions = _race(lambda: KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01), tick, runs=12)
    assert sorted(decisions) == ["proceed"] + ["skipped-duplicate"] * 11
    creates = kube_api.requests_to("POST")
    assert len(creates) == 12  # every run tried to create; 11 got 409 AlreadyExists
    assert [key for key in kube_api.leases if key[0] == NS] == [
        (NS, naming.lease_name("fairness-week", "fairness-audit@2026-W47"))]


def test_manual_runs_proceed_and_leave_no_claim(tmp_path: Path, tick_time: str) -> None:
    store = FileLeaseStore(tmp_path, NS)
    scheduled = guard.resolve(manual=False, event_time=tick_time, date_param="", timezone="UTC")
    assert guard.decide(scheduled, store=store, holder="uid-1").decision == "proceed"
    manual = guard.resolve(manual=True, event_time="", date_param="2026-11-22", timezone="UTC")
    for holder in ("uid-2", "uid-3"):
        decision = guard.decide(manual, store=store, holder=holder)
        assert decision.decision == "proceed" and "manual run for week 2026-W47" in decision.reason
    other_week = guard.resolve(manual=True, event_time="", date_param="2026-12-01", timezone="UTC")
    guard.decide(other_week, store=store, holder="uid-4")
    assert len(list((tmp_path / NS).glob("*.json"))) == 1  # only the scheduled claim


def _env(monkeypatch, state: Path, uid: str, **params: str) -> None:
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(state))
    for name in ("event-time", "manual", "date"):
        monkeypatch.setenv("HF_PARAM_" + name.upper().replace("-", "_"), params.get(name, ""))
    monkeypatch.setenv("HF_PARAM_WORKFLOW_NAME", f"fairness-audit-{uid}")
    monkeypatch.setenv("HF_PARAM_WORKFLOW_UID", uid)


def _outputs(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_the_step_writes_the_standard_outputs(tmp_path: Path, monkeypatch, tick_time: str) -> None:
    argv = [*generated_flags("fairness-guard"), f"--state-namespace={NS}", "--branch-prefix=model-card-refresh"]
    _env(monkeypatch, tmp_path / "state", "uid-1", **{"event-time": tick_time})
    assert guard.main([*argv, f"--outputs={tmp_path / 'a'}"]) == 0
    first = _outputs(tmp_path / "a")
    assert first["decision"] == "proceed"
    assert first["branch"] == "model-card-refresh/2026-w47" and first["dedupe-key"] == "fairness-audit@2026-W47"
    assert first["title"] == "Weekly model-card refresh — 2026-11-22"
    assert (first["date"], first["week"]) == ("2026-11-22", "2026-W47")
    assert json.loads(first["event"]) == {"source": "calendar", "timestamp": "2026-11-22T02:00:00.000387+00:00",
                                          "date": "2026-11-22", "week": "2026-W47", "manual": False}

    _env(monkeypatch, tmp_path / "state", "uid-2", **{"event-time": tick_time})  # the redelivered tick
    assert guard.main([*argv, f"--outputs={tmp_path / 'b'}"]) == 0
    second = _outputs(tmp_path / "b")
    assert second["decision"] == "skipped-duplicate" and "uid-1" in second["reason"]
    assert second["branch"] == second["dedupe-key"] == second["title"] == ""

    _env(monkeypatch, tmp_path / "state", "uid-3", manual="true", date="2026-11-22")
    assert guard.main([*argv, f"--outputs={tmp_path / 'c'}"]) == 0
    third = _outputs(tmp_path / "c")
    assert third["decision"] == "proceed" and third["branch"] == first["branch"]
    assert json.loads(third["event"])["manual"] is True

    _env(monkeypatch, tmp_path / "state", "uid-4", manual="yes")
    with pytest.raises(StepError, match="must be 'true' or 'false'"):
        guard.main(argv)
    _env(monkeypatch, tmp_path / "state", "", **{"event-time": tick_time})
    monkeypatch.setenv("HF_PARAM_WORKFLOW_NAME", "")
    with pytest.raises(StepError, match="workflow-name/workflow-uid"):
        guard.main(argv)


def test_the_step_refuses_a_bad_tick_through_the_cli(tmp_path: Path, monkeypatch) -> None:
    import subprocess
    import sys

    _env(monkeypatch, tmp_path / "state", "uid-1", **{"event-time": "next monday"})
    done = subprocess.run([sys.executable, "-m", "hera_flows.cli", "step", "fairness-guard",
                           *generated_flags("fairness-guard"), f"--state-namespace={NS}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "is not a calendar tick" in done.stderr
    assert "Traceback" not in done.stderr
