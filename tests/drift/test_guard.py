"""The drift guard's runaway protection: severity filter, per-key cooldown (race-free), the open-PR ceiling, and
the storm test — 1,000 alerts for 5 keys through normalisation, the generated Sensor's filters and the guard,
concurrently, against the fake Kubernetes Lease API (create and resourceVersion conflicts)."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render
from hera_flows.local.sensor import dependency_passes, submitted_workflow
from hera_flows.steps.drift.guard import Settings, branch_for, decide, main
from hera_flows.steps.drift.normalise import DriftEvent, normalise
from hera_flows.steps.run_labels import label_workflow
from hera_flows.steps.state import FileLeaseStore, KubernetesLeaseStore
from tests.support.settings import generated_flags

NS = "mlops-automation"
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
DEFAULT_SETTINGS = Settings()


def _event(model: str = "fraud", feature: str = "amount", severity: str = "high") -> DriftEvent:
    return DriftEvent(model, feature, severity, "psi", 0.4, 0.2, "alertmanager", f"{model}-{feature}")


def _decide(store, events, *, holder, now=T0, branches=frozenset(), settings=DEFAULT_SETTINGS, model=""):
    return decide(events, settings=settings, store=store, open_branches=lambda: set(branches), holder=holder,
                  model=model, now=now)


def test_branch_is_stable_per_key_and_shaped_like_the_issue_says() -> None:
    branch = branch_for("drift", "fraud-detector", "amount")
    assert branch.startswith("drift/fraud-detector-amount-") and branch == branch_for("drift", "fraud-detector",
                                                                                        "amount")
    assert branch != branch_for("drift", "fraud-detector", "merchant")


def test_cooldown_per_key_and_expiry(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path, NS)
    first = _decide(store, [_event()], holder="wf-1")
    assert first.proceed and first.label == "proceed"
    assert store.confirm("wf-1")  # its review succeeded: the cooldown holds for the whole window
    second = _decide(store, [_event()], holder="wf-2", now=T0 + timedelta(hours=1))
    assert not second.proceed and second.label == "skipped-cooldown" and "cooldown" in second.reason
    other_key = _decide(store, [_event(feature="merchant")], holder="wf-3", now=T0 + timedelta(hours=1))
    assert other_key.proceed
    later = _decide(store, [_event()], holder="wf-4", now=T0 + timedelta(hours=7))
    assert later.proceed and later.branch == first.branch


def test_severity_filter_and_model_filter(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path, NS)
    low = _decide(store, [_event(severity="warning")], holder="wf-1")
    assert low.label == "skipped-filter" and "severity" in low.reason
    other = _decide(store, [_event(model="reco")], holder="wf-2", model="fraud")
    assert other.label == "skipped-filter" and "group your alerts by model" in other.considered[0]["outcome"]


def test_a_group_picks_the_first_key_not_cooling_down(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path, NS)
    assert _decide(store, [_event(feature="a")], holder="wf-1").proceed
    store.confirm("wf-1")
    group = [_event(feature="a"), _event(feature="a"), _event(feature="b", severity="critical")]
    decision = _decide(store, group, holder="wf-2")
    assert decision.proceed and decision.event.feature == "b"
    outcomes = [c["outcome"] for c in decision.considered]
    assert "duplicate" in outcomes[0] and "cooldown" in outcomes[1] and outcomes[2] == "proceed"


def test_ceiling_counts_open_prs_and_in_flight_reservations(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path, NS)
    settings = Settings(max_open_prs=2)
    open_pr = branch_for("drift", "fraud", "a")
    assert _decide(store, [_event(feature="b")], holder="wf-1", branches={open_pr}, settings=settings).proceed
    full = _decide(store, [_event(feature="c")], holder="wf-2", branches={open_pr}, settings=settings)
    assert full.label == "skipped-ceiling" and "ceiling" in full.reason
    # the key whose PR is open still proceeds: its PR is updated, no new one
    assert _decide(store, [_event(feature="a")], holder="wf-3", branches={open_pr}, settings=settings).proceed
    # a reservation expires after reservation_seconds (the run's deadline)
    later = _decide(store, [_event(feature="d")], holder="wf-4", branches={open_pr}, settings=settings,
                    now=T0 + timedelta(hours=2))
    assert later.proceed


def test_a_failed_run_releases_its_key_and_a_vanished_one_expires(tmp_path: Path) -> None:
    """Issue 16 item 6: a claim is pending until the run's review succeeded; a run that failed gives the key back
    at exit, one that vanished (terminated, no exit handler) stops blocking after its deadline."""
    store = FileLeaseStore(tmp_path, NS)
    assert _decide(store, [_event()], holder="wf-1").proceed
    running = _decide(store, [_event()], holder="wf-2", now=T0 + timedelta(minutes=5))
    assert running.label == "skipped-cooldown" and "in progress: wf-1" in running.reason
    assert store.release("wf-1")  # its exit handler: the forge was down, no PR
    retried = _decide(store, [_event()], holder="wf-3", now=T0 + timedelta(minutes=6))
    assert retried.proceed  # not locked for the 6 h window
    # wf-3 vanishes: its pending claim lasts the run's deadline (reservation_seconds), then the key is free
    blocked = _decide(store, [_event()], holder="wf-4", now=T0 + timedelta(minutes=50))
    assert not blocked.proceed
    assert _decide(store, [_event()], holder="wf-5", now=T0 + timedelta(minutes=67)).proceed


def test_a_full_ceiling_burns_no_cooldown(tmp_path: Path) -> None:
    """Reproduction from the review: every key of a group burned its cooldown while the ceiling was full."""
    store = FileLeaseStore(tmp_path, NS)
    settings = Settings(max_open_prs=1)
    full = {branch_for("drift", "other", "x")}
    group = [_event(feature="a"), _event(feature="b"), _event(feature="c")]
    skipped = _decide(store, group, holder="wf-1", branches=full, settings=settings)
    assert skipped.label == "skipped-ceiling"
    assert [lease["metadata"]["name"] for lease in store.list("app.kubernetes.io/managed-by=hera-flows")
            if "cooldown" in lease["metadata"]["name"]] == []
    # the PR was merged: the next delivery of the same group is remediated at once
    assert _decide(store, group, holder="wf-2", branches=set(), settings=settings,
                   now=T0 + timedelta(minutes=1)).proceed


def test_a_model_gets_at_most_its_share_of_open_prs(tmp_path: Path) -> None:
    """Issue 16 item 9: invented feature names cannot pile retraining PRs onto one model's params file."""
    store = FileLeaseStore(tmp_path, NS)
    settings = Settings(max_open_prs=10, max_open_prs_per_model=2)
    open_prs = {branch_for("drift", "fraud", "f0"): "Retrain fraud: drift on f0"}
    outcomes = []
    for i in range(1, 6):
        decision = decide([_event(feature=f"f{i}")], settings=settings, store=store, holder=f"wf-{i}",
                          open_branches=lambda: dict(open_prs), now=T0)
        outcomes.append(decision.label)
    assert outcomes == ["proceed", "skipped-ceiling", "skipped-ceiling", "skipped-ceiling", "skipped-ceiling"]
    assert "model ceiling: fraud" in decision.reason
    other = decide([_event(model="reco", feature="x")], settings=settings, store=store, holder="wf-9",
                   open_branches=lambda: dict(open_prs), now=T0)
    assert other.proceed  # another model is not held back
    # a failed run gives its slot back
    released = store.release("wf-1")
    assert [r.split("#", 1)[1] for r in released if "#" in r] == [branch_for("drift", "fraud", "f1")]
    assert decide([_event(feature="f6")], settings=settings, store=store, holder="wf-10",
                  open_branches=lambda: dict(open_prs), now=T0).proceed


def test_two_workflows_in_the_same_second_for_one_key_only_one_proceeds(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)

    def run(i: int) -> bool:
        store = FileLeaseStore(tmp_path, NS)
        barrier.wait()
        return _decide(store, [_event()], holder=f"wf-{i}").proceed

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(run, range(8))) == [False] * 7 + [True]


def test_the_step_writes_outputs_and_labels_its_workflow(tmp_path: Path, monkeypatch, fixtures_dir) -> None:
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HF_PARAM_EVENT_SOURCE", "alertmanager")
    monkeypatch.setenv("HF_PARAM_EVENT_BODY", (fixtures_dir / "alertmanager" / "drift_alert_firing.json").read_text())
    monkeypatch.setenv("HF_PARAM_MODEL", "recommendation")
    monkeypatch.setenv("HF_PARAM_WORKFLOW_NAME", "drift-remediation-abc")
    monkeypatch.setenv("HF_PARAM_WORKFLOW_UID", "uid-1")
    out = tmp_path / "out"
    assert main([*generated_flags("drift-guard"), "--state-namespace", NS, "--max-open-prs=0", f"--outputs={out}"]) == 0
    assert (out / "decision").read_text() == "proceed"
    assert (out / "feature").read_text() == "basket_value"
    assert json.loads((out / "event").read_text())["metric_value"] == 0.31
    labels = json.loads((tmp_path / "state" / "workflow-labels" / "drift-remediation-abc.json").read_text())
    assert labels["hera-flows.io/decision"] == "proceed" and len(labels["hera-flows.io/dedupe-key"]) == 32
    monkeypatch.setenv("HF_PARAM_WORKFLOW_NAME", "drift-remediation-def")
    monkeypatch.setenv("HF_PARAM_WORKFLOW_UID", "uid-2")
    assert main([*generated_flags("drift-guard"), "--state-namespace", NS, "--max-open-prs=0", f"--outputs={out}"]) == 0
    assert (out / "decision").read_text() == "proceed" and (out / "feature").read_text() == "category_id"
    monkeypatch.setenv("HF_PARAM_WORKFLOW_NAME", "drift-remediation-ghi")
    monkeypatch.setenv("HF_PARAM_WORKFLOW_UID", "uid-3")
    assert main([*generated_flags("drift-guard"), "--state-namespace", NS, "--max-open-prs=0", f"--outputs={out}"]) == 0
    # uid-1 has not confirmed (no review ran here): its claim is pending, the key is "in progress"
    assert (out / "decision").read_text() == "skipped-cooldown" and "in progress" in (out / "reason").read_text()
    assert (out / "branch").read_text() == ""
    labels = json.loads((tmp_path / "state" / "workflow-labels" / "drift-remediation-ghi.json").read_text())
    assert labels["hera-flows.io/decision"] == "skipped-cooldown"


def test_label_workflow_without_a_cluster_is_only_logged(monkeypatch, capsys) -> None:
    monkeypatch.delenv("HERA_FLOWS_STATE_DIR", raising=False)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    label_workflow(NS, "wf", {"hera-flows.io/decision": "proceed"})
    assert "could not label workflow wf" in capsys.readouterr().err


# --- the storm ----------------------------------------------------------------------------------------------

KEYS = [("fraud-detector", "amount"), ("fraud-detector", "merchant"), ("fraud-detector", "age"),
        ("recommendation", "basket_value"), ("recommendation", "category_id")]


def _storm(seed: int = 7) -> list[dict]:
    """1,000 alerts in Alertmanager groups (grouped by model, as docs/patterns/drift.md recommends): duplicates,
    warnings and resolved alerts mixed in; each group delivered once, some groups redelivered."""
    rng = random.Random(seed)
    groups, alerts = [], 0
    while alerts < 1000:
        model = rng.choice(["fraud-detector", "recommendation"])
        features = [f for m, f in KEYS if m == model]
        size = min(rng.randint(1, 8), 1000 - alerts)
        group = []
        for _ in range(size):
            status = "resolved" if rng.random() < 0.1 else "firing"
            severity = rng.choice(["high", "critical", "critical", "warning"])
            feature = rng.choice(features)
            group.append({"status": status, "fingerprint": f"{model}-{feature}",
                          "labels": {"alertname": "DataDriftDetected", "model": model, "feature": feature,
                                     "severity": severity},
                          "annotations": {"value": str(round(rng.uniform(0.2, 0.9), 3)), "threshold": "0.1"},
                          "startsAt": "2026-11-28T12:00:00Z"})
        alerts += size
        status = "firing" if any(a["status"] == "firing" for a in group) else "resolved"
        body = {"version": "4", "status": status, "receiver": "argo-events-drift", "alerts": group,
                "groupLabels": {"model": model}, "commonLabels": {"model": model}}
        groups.append(body)
        if rng.random() < 0.2:
            groups.append(body)  # a redelivered group
    return groups


def test_storm_of_1000_alerts_yields_exactly_5_runs(kube_api) -> None:
    cfg = parse_config("repository: {url: 'https://github.com/acme/ml-gitops'}\n"
                       "patterns: {promotion: {enabled: false}, drift: {enabled: true}}\n")
    sensor = yaml.safe_load(render(cfg)["sensors/drift-remediation.yaml"])
    dependency = next(d for d in sensor["spec"]["dependencies"] if d["eventName"] == "alertmanager")
    trigger = next(t for t in sensor["spec"]["triggers"] if t["template"]["conditions"] == dependency["name"])

    deliveries = _storm()
    submitted = []
    for body in deliveries:
        data = json.dumps({"header": {}, "body": body}, separators=(",", ":"))
        if dependency_passes(dependency, data)[0]:
            workflow = submitted_workflow(trigger, dependency["name"], data)
            params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
            params["event-body"] = workflow["metadata"]["annotations"]["hera-flows.io/event-body"]
            submitted.append(params)

    settings = Settings(severities=("high", "critical"), cooldown_seconds=6 * 3600, max_open_prs=10,
                        max_open_prs_per_model=3)

    def guard(indexed: tuple[int, dict]) -> tuple[str, tuple[str, str] | None]:
        index, params = indexed
        store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
        events = normalise(params["event-source"], params["event-body"])
        moment = T0 + timedelta(seconds=index * 50 / len(submitted))  # all within one minute
        decision = decide(events, settings=settings, store=store, open_branches=set, holder=f"wf-{index}",
                          model=params["model"], now=moment)
        return decision.label, (decision.event.key if decision.proceed else None)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(guard, enumerate(submitted)))

    labels = Counter(label for label, _ in results)
    proceeding = [key for _, key in results if key is not None]
    writes = sum(1 for r in kube_api.requests if r.method in ("POST", "PUT"))
    conflicts = writes - 5 - 5  # 5 cooldown creates + 5 ceiling reservations succeed; the rest got 409
    print(f"\nstorm: {sum(len(b['alerts']) for b in deliveries)} alerts in {len(deliveries)} deliveries; "
          f"{len(submitted)} passed the sensor filters; guard decisions {dict(labels)}; "
          f"{len(proceeding)} proceeding runs for {len(set(proceeding))} keys; {writes} Lease writes, "
          f"{conflicts} of them refused with 409 (create or resourceVersion conflict)")
    assert sum(len(b["alerts"]) for b in deliveries) >= 1000
    assert len(submitted) < len(deliveries)  # resolved groups were dropped by the sensor
    assert sorted(proceeding) == sorted(KEYS)
    assert labels["proceed"] == 5

    # The five runs end: four confirm after their review, one fails (forge outage) and its exit handler releases.
    # A second storm a minute later proceeds for exactly the released key, still once.
    store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    winners = {key: f"wf-{index}" for index, (_, key) in enumerate(results) if key is not None}
    failed_key = KEYS[3]
    for key, holder in winners.items():
        assert (store.release(holder) if key == failed_key else store.confirm(holder))

    def again(indexed: tuple[int, dict]) -> tuple[str, str] | None:
        index, params = indexed
        second = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
        decision = decide(normalise(params["event-source"], params["event-body"]), settings=settings, store=second,
                          open_branches=set, holder=f"wf2-{index}", model=params["model"],
                          now=T0 + timedelta(minutes=2, seconds=index * 50 / len(submitted)))
        return decision.event.key if decision.proceed else None

    with ThreadPoolExecutor(16) as pool:
        second_round = [key for key in pool.map(again, enumerate(submitted)) if key is not None]
    assert second_round == [failed_key]


def test_github_lists_open_prs_by_branch_prefix_across_pages(github_api) -> None:
    from hera_flows.steps.forge.github import GitHubForge

    for i in range(120):
        github_api.add_pull(f"drift/model-f{i}-abc")
    github_api.add_pull("model-promotion/fraud-v7")
    closed = github_api.add_pull("drift/closed-one")
    github_api.repos["acme/ml-gitops"].pulls[closed["number"]]["state"] = "closed"
    with GitHubForge(api_url=github_api.url, repo_slug="acme/ml-gitops", token=github_api.token) as forge:
        heads = {pr.head for pr in forge.list_open_prs("drift/")}
    assert len(heads) == 120 and "drift/closed-one" not in heads and all(h.startswith("drift/") for h in heads)
