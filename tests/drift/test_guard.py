"""The drift guard's runaway protection: severity filter, per-key cooldown (race-free), the open-PR ceilings, every
key of a delivery (issue 13 item 3), signed and deduplicated deliveries (issue 14 item 5), unmappable events, and
the storm test — 1,000 alerts for 5 keys through the generated Sensor's filters, the mapping and the guard,
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
from hera_flows.steps import naming
from hera_flows.steps.drift.guard import Settings, branch_for, decide, main
from hera_flows.steps.drift.normalise import DriftEvent, default_source, deliver
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
    other = _decide(store, [_event(model="reco")], holder="wf-2", model="fraud")  # a manual run names its model
    assert other.label == "skipped-filter" and "model differs" in other.considered[0]["outcome"]


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


def _run_guard(monkeypatch, tmp_path: Path, body: str, uid: str, *extra: str, source: str = "alertmanager",
               headers: dict | None = None) -> dict[str, str]:
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HF_PARAM_EVENT_SOURCE", source)
    monkeypatch.setenv("HF_PARAM_EVENT_BODY", body)
    monkeypatch.setenv("HF_PARAM_EVENT_HEADERS", json.dumps(headers or {}))
    monkeypatch.setenv("HF_PARAM_WORKFLOW_NAME", f"drift-remediation-{uid}")
    monkeypatch.setenv("HF_PARAM_WORKFLOW_UID", uid)
    out = tmp_path / "out" / uid
    assert main([*generated_flags("drift-guard"), "--state-namespace", NS, "--max-open-prs=0", *extra,
                 f"--outputs={out}"]) == 0
    return {p.name: p.read_text() for p in out.iterdir()}


def test_the_step_remediates_every_key_of_a_group_and_labels_its_workflow(tmp_path: Path, monkeypatch,
                                                                          fixtures_dir) -> None:
    body = (fixtures_dir / "alertmanager" / "drift_alert_firing.json").read_text()
    first = _run_guard(monkeypatch, tmp_path, body, "uid-1")
    assert first["decision"] == "proceed" and first["count"] == "2"
    items = json.loads(first["remediations"])
    assert [(i["model"], i["feature"], i["dedupe-key"]) for i in items] == [
        ("recommendation", "basket_value", "recommendation@basket_value"),
        ("recommendation", "category_id", "recommendation@category_id")]
    assert all(isinstance(v, str) for i in items for v in i.values())  # withParam items: strings only
    assert json.loads(items[0]["event"])["metric_value"] == 0.31
    assert items[0]["claims"].startswith("hf-drift-cooldown-") and items[0]["branch"].startswith(
        "drift/recommendation-basket-value-")
    assert items[1]["title"] == "Retrain recommendation: drift on category_id"
    labels = json.loads((tmp_path / "state" / "workflow-labels" / "drift-remediation-uid-1.json").read_text())
    assert labels["hera-flows.io/decision"] == "proceed" and len(labels["hera-flows.io/dedupe-key"]) == 32
    # uid-1 has not confirmed (no review ran here): both keys are "in progress" for the next delivery
    second = _run_guard(monkeypatch, tmp_path, body, "uid-2")
    assert second["decision"] == "skipped-cooldown" and "in progress" in second["reason"]
    assert second["remediations"] == "[]" and second["branch"] == ""
    assert "and 1 more key(s) skipped" in second["reason"]


def test_the_one_key_behaviour_is_max_keys_per_run_1(tmp_path: Path, monkeypatch, fixtures_dir) -> None:
    body = (fixtures_dir / "alertmanager" / "drift_alert_firing.json").read_text()
    out = _run_guard(monkeypatch, tmp_path, body, "uid-1", "--max-keys-per-run=1")
    assert [i["feature"] for i in json.loads(out["remediations"])] == ["basket_value"]
    assert "not taken: this run remediates at most 1 key(s)" in out["considered"]


def test_an_alert_without_a_model_ends_skipped_unmapped_with_its_reason(tmp_path: Path, monkeypatch,
                                                                       fixtures_dir) -> None:
    """Issue 14: `DataDriftDetected` from a shared rule, no model label — once dropped silently by the Sensor."""
    body = json.loads((fixtures_dir / "alertmanager" / "drift_alert_firing.json").read_text())
    for alert in body["alerts"]:
        del alert["labels"]["model"]
    out = _run_guard(monkeypatch, tmp_path, json.dumps(body), "uid-1")
    assert out["decision"] == "skipped-unmapped"
    assert out["reason"] == "alertmanager: body.alerts[0]: model (item.labels.model) is missing (and 1 more)"
    assert [c["outcome"] for c in json.loads(out["considered"])] == ["unmapped", "unmapped"]
    labels = json.loads((tmp_path / "state" / "workflow-labels" / "drift-remediation-uid-1.json").read_text())
    assert labels["hera-flows.io/decision"] == "skipped-unmapped"
    garbage = _run_guard(monkeypatch, tmp_path, "{not json", "uid-2")
    assert garbage["decision"] == "rejected" and "not JSON" in garbage["reason"]


def test_every_key_of_a_delivery_gets_its_own_cooldown_and_the_ceilings_hold_across_them(tmp_path: Path) -> None:
    """Issue 13 item 3: a five-feature group yields up to five remediations in one run; the per-model ceiling and
    the global one count every key of the delivery; a key they refuse keeps no cooldown."""
    store = FileLeaseStore(tmp_path, NS)
    group = [_event(feature=f"f{i}") for i in range(5)]
    five = decide(group, settings=Settings(max_open_prs=10, max_open_prs_per_model=5), store=store,
                  open_branches=dict, holder="wf-1", now=T0)
    assert five.label == "proceed" and [r.event.feature for r in five.remediations] == [f"f{i}" for i in range(5)]
    assert len({r.branch for r in five.remediations}) == 5 and len({r.lease for r in five.remediations}) == 5

    store = FileLeaseStore(tmp_path / "per-model", NS)
    three = decide(group, settings=Settings(max_open_prs=10, max_open_prs_per_model=3), store=store,
                   open_branches=dict, holder="wf-1", now=T0)
    assert [r.event.feature for r in three.remediations] == ["f0", "f1", "f2"]
    assert [c["outcome"][:14] for c in three.considered[3:]] == ["model ceiling:"] * 2
    cooling = {lease["metadata"]["annotations"]["hera-flows.io/key"] for lease in store.list(
        "app.kubernetes.io/managed-by=hera-flows") if "cooldown" in lease["metadata"]["name"]}
    assert cooling == {"fraud@f0", "fraud@f1", "fraud@f2"}  # f3, f4: no cooldown, the next alert is evaluated

    store = FileLeaseStore(tmp_path / "global", NS)
    models = [_event(model=f"m{i}", feature="x") for i in range(5)]
    open_prs = {branch_for("drift", "other", "a"): "Retrain other: drift on a",
                branch_for("drift", "other", "b"): "Retrain other: drift on b"}
    two = decide(models, settings=Settings(max_open_prs=4, max_open_prs_per_model=3), store=store,
                 open_branches=lambda: dict(open_prs), holder="wf-1", now=T0)
    assert [r.event.model for r in two.remediations] == ["m0", "m1"]
    assert "ceiling: 4 drift pull requests are open or being opened" in two.considered[2]["outcome"]


def test_concurrent_deliveries_sharing_keys_remediate_each_key_once(tmp_path: Path) -> None:
    barrier = threading.Barrier(6)
    keys = [("fraud", f"f{i}") for i in range(4)] + [("reco", "a"), ("reco", "b")]

    def run(i: int) -> list[tuple[str, str]]:
        store = FileLeaseStore(tmp_path, NS)
        rng = random.Random(i)
        delivery = [_event(m, f) for m, f in rng.sample(keys, 4)]
        barrier.wait()
        decision = decide(delivery, settings=Settings(max_open_prs=0), store=store, open_branches=dict,
                          holder=f"wf-{i}", now=T0)
        return decision.keys

    with ThreadPoolExecutor(6) as pool:
        won = [key for keys_won in pool.map(run, range(6)) for key in keys_won]
    assert len(won) == len(set(won))  # no key twice
    assert set(won) <= set(keys)


def _signed_setup(monkeypatch) -> str:
    from hera_flows.patterns.drift import source_specs

    cfg = parse_config("repository: {url: 'https://github.com/acme/ml-gitops'}\npatterns: {drift: {enabled: true, "
                       "sources: [alertmanager, {name: arize, signature: {secret: {name: arize-webhook, key: secret}, "
                       "header: X-Arize-Signature, prefix: 'sha256=', signed: timestamp.body, "
                       "id_header: X-Arize-Event-Id, attempt_header: X-Arize-Attempt, "
                       "timestamp_header: X-Arize-Timestamp}}]}}\n")
    monkeypatch.setenv("HF_DRIFT_SIGNATURE_ARIZE", "s3cret")
    return "--sources=" + json.dumps(source_specs(cfg))


def _arize_delivery(event_id: str, attempt: int, *, timestamp: int, secret: str = "s3cret",
                    payload: dict | None = None, indent: int | None = None,
                    separators: tuple[str, str] | None = None) -> tuple[str, dict]:
    """What the sender signs (its own bytes) and what the guard receives (Go-compacted body, canonical headers)."""
    import hashlib
    import hmac

    from hera_flows.local.standins.go_json import go_compact

    payload = payload or {"model_id": "churn", "feature_name": "tenure", "metric": "psi", "metric_value": 0.4,
                          "threshold": 0.2, "severity": "critical", "status": "triggered", "monitor_id": "mon-1",
                          "monitor_name": "tenure drift <prod> & co"}
    # the sender's bytes (Python's default separators here): spaces and < > & that Go's re-marshalling changes
    sent = json.dumps(payload, indent=indent, separators=separators)
    digest = hmac.new(secret.encode(), f"{timestamp}.{sent}".encode(), hashlib.sha256).hexdigest()
    headers = {"X-Arize-Signature": [f"sha256={digest}"], "X-Arize-Event-Id": [event_id],
               "X-Arize-Attempt": [str(attempt)], "X-Arize-Timestamp": [str(timestamp)]}
    return go_compact(sent), headers


def test_signed_deliveries_are_verified_and_a_retried_attempt_is_a_duplicate(tmp_path: Path, monkeypatch) -> None:
    """Issue 14 item 5: Arize AX signs with HMAC-SHA256 and sends an event id and attempt number."""
    import time

    sources = _signed_setup(monkeypatch)
    now = int(time.time())
    body, headers = _arize_delivery("evt-1", 1, timestamp=now)
    first = _run_guard(monkeypatch, tmp_path, body, "uid-1", sources, source="arize", headers=headers)
    assert first["decision"] == "proceed", first["reason"]
    [item] = json.loads(first["remediations"])
    assert item["dedupe-key"] == "churn@tenure" and item["claims"].count(",") == 1  # the key and the delivery
    body, headers = _arize_delivery("evt-1", 2, timestamp=now + 30)
    again = _run_guard(monkeypatch, tmp_path, body, "uid-2", sources, source="arize", headers=headers)
    assert again["decision"] == "skipped-duplicate"
    assert again["reason"] == "arize: delivery evt-1 (attempt 2) was already received by uid-1"

    body, headers = _arize_delivery("evt-2", 1, timestamp=now, secret="wrong")
    forged = _run_guard(monkeypatch, tmp_path, body, "uid-3", sources, source="arize", headers=headers)
    assert forged["decision"] == "rejected" and "does not match" in forged["reason"]
    body, headers = _arize_delivery("evt-3", 1, timestamp=now - 3600)
    stale = _run_guard(monkeypatch, tmp_path, body, "uid-4", sources, source="arize", headers=headers)
    assert stale["decision"] == "rejected" and "beyond the 300 s tolerance" in stale["reason"]
    unsigned = _run_guard(monkeypatch, tmp_path, body, "uid-5", sources, source="arize", headers={})
    assert unsigned["decision"] == "rejected" and "has no X-Arize-Signature header" in unsigned["reason"]
    body, headers = _arize_delivery("evt-4", 1, timestamp=now, separators=(",", ":"))  # a compact sender
    assert _run_guard(monkeypatch, tmp_path, body, "uid-6", sources, source="arize",
                      headers=headers)["decision"] == "skipped-cooldown"  # verified; churn@tenure is in progress
    # An indented body cannot be rebuilt from what Argo Events delivers (it drops the whitespace): fails closed.
    body, headers = _arize_delivery("evt-5", 1, timestamp=now, indent=2)
    assert _run_guard(monkeypatch, tmp_path, body, "uid-7", sources, source="arize",
                      headers=headers)["decision"] == "rejected"


def test_a_failed_first_attempt_lets_the_retry_through(tmp_path: Path, monkeypatch) -> None:
    import time

    sources = _signed_setup(monkeypatch)
    now = int(time.time())
    body, headers = _arize_delivery("evt-9", 1, timestamp=now)
    assert _run_guard(monkeypatch, tmp_path, body, "uid-1", sources, source="arize",
                      headers=headers)["decision"] == "proceed"
    store = FileLeaseStore(tmp_path / "state", NS)
    assert len(store.release("uid-1")) == 2  # its exit handler: the forge was down; key and delivery released
    body, headers = _arize_delivery("evt-9", 2, timestamp=now + 60)
    assert _run_guard(monkeypatch, tmp_path, body, "uid-2", sources, source="arize",
                      headers=headers)["decision"] == "proceed"


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


def test_storm_of_1000_alerts_yields_exactly_5_remediations(kube_api) -> None:
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
    source = default_source("alertmanager")

    settings = Settings(severities=("high", "critical"), cooldown_seconds=6 * 3600, max_open_prs=10,
                        max_open_prs_per_model=3)

    def guard(indexed: tuple[int, dict]) -> tuple[str, list[tuple[str, str]]]:
        index, params = indexed
        store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
        delivery = deliver(source, {"header": {}, "body": json.loads(params["event-body"]), "id": ""})
        moment = T0 + timedelta(seconds=index * 50 / len(submitted))  # all within one minute
        decision = decide(delivery.events, settings=settings, store=store, open_branches=set, holder=f"wf-{index}",
                          now=moment, delivery=delivery)
        return decision.label, decision.keys

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(guard, enumerate(submitted)))

    labels = Counter(label for label, _ in results)
    proceeding = [key for _, keys in results for key in keys]
    writes = sum(1 for r in kube_api.requests if r.method in ("POST", "PUT"))
    conflicts = writes - 5 - 5  # 5 cooldown creates + 5 ceiling reservations succeed; the rest got 409
    print(f"\nstorm: {sum(len(b['alerts']) for b in deliveries)} alerts in {len(deliveries)} deliveries; "
          f"{len(submitted)} passed the sensor filters; guard decisions {dict(labels)}; "
          f"{len(proceeding)} remediations for {len(set(proceeding))} keys in {labels['proceed']} runs; "
          f"{writes} Lease writes, "
          f"{conflicts} of them refused with 409 (create or resourceVersion conflict)")
    assert sum(len(b["alerts"]) for b in deliveries) >= 1000
    assert len(submitted) < len(deliveries)  # resolved groups were dropped by the sensor (the only drop there)
    assert sorted(proceeding) == sorted(KEYS)  # every key exactly once, whatever run it was in
    assert 1 <= labels["proceed"] <= 5

    # The five runs end: four confirm after their review, one fails (forge outage) and its exit handler releases.
    # A second storm a minute later proceeds for exactly the released key, still once.
    store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    winners = {key: f"wf-{index}" for index, (_, keys) in enumerate(results) for key in keys}
    failed_key = KEYS[3]
    for key, holder in winners.items():
        lease = naming.lease_name("drift-cooldown", naming.dedupe_key(*key))
        assert (store.release(holder, name=lease) if key == failed_key else store.confirm(holder, [lease]))

    def again(indexed: tuple[int, dict]) -> list[tuple[str, str]]:
        index, params = indexed
        second = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
        delivery = deliver(source, {"header": {}, "body": json.loads(params["event-body"]), "id": ""})
        decision = decide(delivery.events, settings=settings, store=second, open_branches=set,
                          holder=f"wf2-{index}", now=T0 + timedelta(minutes=2, seconds=index * 50 / len(submitted)))
        return decision.keys

    with ThreadPoolExecutor(16) as pool:
        second_round = [key for keys in pool.map(again, enumerate(submitted)) for key in keys]
    assert second_round == [failed_key]


def test_the_keys_benchmark_measures_what_it_says(kube_api) -> None:
    """benchmarks/drift_keys.py on a small group: the fan-out remediates every key once in one run, the one-key
    behaviour needs a run per key and starves the later keys once the first cooldown ends."""
    from benchmarks.drift_keys import group, scenario

    body = group(2, 3)
    fan = scenario(kube_api, "fan", body, max_keys=6)
    assert (fan.runs, fan.remediations, len(fan.keys), fan.hours) == (1, 6, 6, 0)
    assert fan.writes >= 2 * 6 and fan.conflicts == 0  # a cooldown create and a ceiling write per key, at least
    from hera_flows.local.standins.kube import KubeStandIn

    with KubeStandIn() as fresh:  # no cooldown of the first scenario
        one = scenario(fresh, "one", body, max_keys=1)
    assert one.runs == 6 and one.remediations == 6 and len(one.keys) == 2  # key 0 wins again after 6 h


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
