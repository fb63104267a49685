"""The Lease clean-up: expired records are deleted, fresh, unowned-by-us and duration-less ones are kept, a Lease
renewed between list and delete survives — on the file store and on the Kubernetes API stand-in; the step through
the CLI; and the ``hera-flows-gc`` CronWorkflow, its RBAC and its schema validity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows import cli
from hera_flows.blocks import gc as gc_block
from hera_flows.config import parse_config
from hera_flows.generate import render
from hera_flows.steps import gc
from hera_flows.steps.drift.guard import Settings, reserve_slot
from hera_flows.steps.drift.guard import decide as drift_decide
from hera_flows.steps.drift.normalise import DriftEvent
from hera_flows.steps.fairness import guard as fairness_guard
from hera_flows.steps.naming import lease_name
from hera_flows.steps.state import (
    MANAGED_BY_SELECTOR,
    Conflict,
    FileLeaseStore,
    KubernetesLeaseStore,
    LeaseStore,
    WorkflowOwner,
    micro_time,
)
from tests.conftest import ROOT
from tests.support import schemas
from tests.support.settings import generated_flags

NS = "mlops-automation"
NOW = datetime(2026, 11, 28, 3, 17, 0, 500, tzinfo=timezone.utc)  # a fraction: the client drops a zero one
DAY = 86400
StoreFactory = Callable[[], LeaseStore]


@pytest.fixture(params=["file", "kubernetes"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "file":
        return lambda: FileLeaseStore(tmp_path / "state", NS)
    kube = request.getfixturevalue("kube_api")
    return lambda: KubernetesLeaseStore(NS, kube.api_client(), base_delay=0.01)


def _lease(name: str, *, labels: dict[str, str] | None, start: datetime, duration: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"holderIdentity": "someone", "acquireTime": micro_time(start),
                            "renewTime": micro_time(start)}
    if duration is not None:
        spec["leaseDurationSeconds"] = duration
    metadata: dict[str, Any] = {"name": name, "namespace": NS}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


def _names(store: LeaseStore) -> set[str]:
    return {lease["metadata"]["name"] for lease in store.list("")}


# --- store primitives ---------------------------------------------------------------------------------------------


def test_list_filters_by_label_and_delete_is_compare_and_delete(new_store: StoreFactory) -> None:
    store = new_store()
    ours = lease_name("drift-cooldown", "a")
    store.acquire_cooldown(ours, "wf-1", 3600, NOW, key="a")
    store.create(_lease(lease_name("drift-cooldown", "b"), labels={"team": "x"}, start=NOW, duration=60))
    listed = store.list(MANAGED_BY_SELECTOR)
    assert [lease["metadata"]["name"] for lease in listed] == [ours]
    assert store.list("app.kubernetes.io/managed-by!=hera-flows")[0]["metadata"]["labels"] == {"team": "x"}
    assert len(store.list("")) == 2

    version = listed[0]["metadata"]["resourceVersion"]
    store.acquire_cooldown(ours, "wf-2", 3600, NOW + timedelta(hours=2), key="a")  # renewed: a new version
    with pytest.raises(Conflict):
        store.delete(ours, version)
    assert store.get(ours)["spec"]["holderIdentity"] == "wf-2"
    store.delete(ours, store.get(ours)["metadata"]["resourceVersion"])
    assert store.get(ours) is None
    with pytest.raises(Conflict):  # already gone
        store.delete(ours, version)
    with pytest.raises(ValueError, match="refusing lease name"):
        store.delete("kube-controller-manager", "1")


# --- collect ------------------------------------------------------------------------------------------------------


def test_expired_records_are_deleted_and_everything_else_is_kept(new_store: StoreFactory) -> None:
    store = new_store()
    old = NOW - timedelta(days=10)
    expired_cooldown = lease_name("drift-cooldown", "old")
    store.acquire_cooldown(expired_cooldown, "wf-1", 6 * 3600, old, key="old")
    in_grace = lease_name("drift-cooldown", "grace")  # expired 12 h ago, grace is 24 h
    store.acquire_cooldown(in_grace, "wf-2", 3600, NOW - timedelta(hours=13), key="grace")
    fresh = lease_name("drift-cooldown", "fresh")
    store.acquire_cooldown(fresh, "wf-3", 6 * 3600, NOW - timedelta(minutes=5), key="fresh")
    tick = fairness_guard.Tick(old.date(), "calendar", "t")  # claimed 10 days ago: 8 days + 1 day grace passed
    old_week = lease_name("fairness-week", tick.dedupe_key)
    assert fairness_guard.decide(tick, store=store, holder="wf-4", now=old).decision == "proceed"
    replay = lease_name("replay", "owned")  # owned by its Workflow, no duration: never ours to delete
    store.claim_once(replay, "wf-5", WorkflowOwner("wf-5", "7a1c"), key="owned", now=old)
    unlabelled = lease_name("drift-cooldown", "unlabelled")
    store.create(_lease(unlabelled, labels=None, start=old, duration=60))
    foreign_label = lease_name("drift-cooldown", "foreign")
    store.create(_lease(foreign_label, labels={"app.kubernetes.io/managed-by": "someone-else"}, start=old,
                        duration=60))

    result = gc.collect(store, grace_seconds=DAY, now=NOW)

    assert sorted(result.deleted) == sorted([expired_cooldown, old_week])
    assert (result.listed, result.kept, result.raced) == (5, 3, [])
    assert _names(store) == {in_grace, fresh, replay, unlabelled, foreign_label}
    # the next day the grace has passed for in_grace; a second run deletes nothing else
    later = gc.collect(store, grace_seconds=DAY, now=NOW + timedelta(hours=13))
    assert later.deleted == [in_grace] and later.kept == 2


def test_a_labelled_lease_with_a_foreign_name_is_never_deleted(kube_api) -> None:
    store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    labels = {"app.kubernetes.io/managed-by": "hera-flows", "app.kubernetes.io/part-of": "hera-flows"}
    store.create(_lease("kube-scheduler", labels=labels, start=NOW - timedelta(days=30), duration=15))
    result = gc.collect(store, grace_seconds=0, now=NOW)
    assert (result.listed, result.kept, result.deleted) == (1, 1, [])
    assert ("mlops-automation", "kube-scheduler") in kube_api.leases


class _RenewedAfterList:
    """A store whose list() is followed, before any delete, by a guard renewing the first listed Lease."""

    def __init__(self, store: LeaseStore, renew: Callable[[str], None]) -> None:
        self.store, self.renew = store, renew

    def list(self, selector: str) -> list[dict[str, Any]]:
        leases = self.store.list(selector)
        for lease in leases:
            self.renew(lease["metadata"]["name"])
        return leases

    def delete(self, name: str, resource_version: str) -> None:
        self.store.delete(name, resource_version)


def test_a_lease_renewed_between_list_and_delete_is_not_deleted(new_store: StoreFactory) -> None:
    store, guard_store = new_store(), new_store()
    name = lease_name("drift-cooldown", "busy")
    store.acquire_cooldown(name, "wf-1", 3600, NOW - timedelta(days=3), key="busy")

    def renew(lease: str) -> None:  # a new alert for the key: its cooldown has expired, a new run takes it
        assert guard_store.acquire_cooldown(lease, "wf-2", 3600, NOW, key="busy").proceed

    result = gc.collect(_RenewedAfterList(store, renew), grace_seconds=DAY, now=NOW)
    assert (result.listed, result.kept, result.deleted, result.raced) == (1, 0, [], [name])
    assert store.get(name)["spec"]["holderIdentity"] == "wf-2"


def test_the_fake_api_answers_a_failed_precondition_like_the_api_server(kube_api) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    name = lease_name("drift-cooldown", "p")
    store.acquire_cooldown(name, "wf-1", 60, NOW, key="p")
    api = client.CoordinationV1Api(kube_api.api_client())
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    with pytest.raises(ApiException) as raised:
        api.delete_namespaced_lease(name, NS, body=stale)
    assert raised.value.status == 409 and "Precondition failed" in raised.value.body
    assert '"reason": "Conflict"' in raised.value.body
    with pytest.raises(ApiException) as raised:
        api.list_namespaced_lease(NS, label_selector="a in (b)")
    assert raised.value.status == 400
    deleted = [r.path for r in kube_api.requests_to("DELETE")]
    assert f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{name}" in deleted


# --- the records get a duration ----------------------------------------------------------------------------------


def test_records_without_an_owner_carry_a_duration(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "state", NS)
    tick = fairness_guard.Tick(NOW.date(), "calendar", "t")
    fairness_guard.decide(tick, store=store, holder="wf-1", now=NOW)
    week = store.get(lease_name("fairness-week", tick.dedupe_key))
    assert week["spec"]["leaseDurationSeconds"] == 8 * DAY and "ownerReferences" not in week["metadata"]

    settings = Settings(cooldown_seconds=7200, max_open_prs=3, reservation_seconds=1800)
    event = DriftEvent("fraud", "amount", "high", "psi", 0.4, 0.2, "alertmanager", "a")
    decision = drift_decide([event], settings=settings, store=store, open_branches=set, holder="wf-2", now=NOW)
    assert decision.proceed
    cooldown = store.get(lease_name("drift-cooldown", decision.dedupe_key))
    assert cooldown["spec"]["leaseDurationSeconds"] == 3600  # pending: the run's deadline (claim_seconds)
    assert store.confirm("wf-2")  # its review succeeded
    cooldown = store.get(lease_name("drift-cooldown", decision.dedupe_key))
    assert cooldown["spec"]["leaseDurationSeconds"] == 7200  # == the cooldown window
    ceiling = store.get(lease_name("drift-ceiling", "drift-open-pr-ceiling"))
    assert ceiling["spec"]["leaseDurationSeconds"] == 1800  # every reservation is dead once it expires
    assert reserve_slot(store, "drift/other", {}, settings, "wf-3", NOW + timedelta(seconds=1)) == ""
    assert gc.collect(store, grace_seconds=0, now=NOW + timedelta(seconds=1802)).deleted == \
        [lease_name("drift-ceiling", "drift-open-pr-ceiling")]


# --- the step through the CLI ------------------------------------------------------------------------------------


def _run_step(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict[str, str], str]:
    out = tmp_path / "out"
    capsys.readouterr()
    code = cli.main(["step", "gc-leases", *generated_flags("gc-leases"), f"--state-namespace={NS}", *flags,
                     f"--outputs={out}"])
    outputs = {p.name: p.read_text() for p in out.iterdir()} if out.is_dir() else {}
    return code, outputs, capsys.readouterr().err


def test_the_step_on_the_file_store(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
    store = FileLeaseStore(tmp_path / "state", NS)
    now = datetime.now(timezone.utc)
    store.acquire_cooldown(lease_name("drift-cooldown", "old"), "wf-1", 60, now - timedelta(days=2), key="old")
    store.acquire_cooldown(lease_name("drift-cooldown", "new"), "wf-2", 60, now, key="new")
    code, outputs, err = _run_step(tmp_path, capsys, "--grace-seconds=3600")
    assert code == 0, err
    assert outputs == {"listed": "2", "kept": "1", "deleted": "1", "raced": "0"}
    assert f"deleted {lease_name('drift-cooldown', 'old')}" in err
    assert _names(store) == {lease_name("drift-cooldown", "new")}


def test_the_step_against_the_kubernetes_api(tmp_path: Path, monkeypatch, capsys, kube_api) -> None:
    monkeypatch.delenv("HERA_FLOWS_STATE_DIR", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube_api.write_kubeconfig(tmp_path / "kubeconfig", NS)))
    store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    week = lease_name("fairness-week", "fairness-audit@2026-W01")
    store.claim_once(week, "wf-1", key="w", now=datetime(2026, 1, 5, tzinfo=timezone.utc), duration_seconds=8 * DAY)
    code, outputs, err = _run_step(tmp_path, capsys)
    assert code == 0, err
    assert outputs == {"listed": "1", "kept": "0", "deleted": "1", "raced": "0"}
    assert not kube_api.leases
    lists = [r.query for r in kube_api.requests_to("GET", r"/leases$")]
    assert lists and all(q["labelSelector"] == ["app.kubernetes.io/managed-by=hera-flows"] for q in lists)


def test_a_negative_grace_is_one_clear_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
    code, _, err = _run_step(tmp_path, capsys, "--grace-seconds=-1")
    assert code == 1 and "must not be negative" in err and "Traceback" not in err


# --- manifests ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    config = ROOT / "config" / "flows.yaml"
    return render(parse_config(config.read_text(), str(config)))


def test_the_cron_workflow_is_schema_valid_for_argo_3_and_4(rendered: dict[str, str]) -> None:
    cron = yaml.safe_load(rendered["generated/cronworkflows/hera-flows-gc.yaml"])
    assert schemas.problems(cron) == []
    spec = cron["spec"]
    assert spec["schedules"] == ["17 3 * * *"] and "schedule" not in spec
    assert spec["concurrencyPolicy"] == "Forbid"
    [step] = [t for t in spec["workflowSpec"]["templates"] if "container" in t]
    assert step["container"]["args"] == ["step", "gc-leases", f"--state-namespace={NS}", "--grace-seconds=86400",
                                         "--outputs=/tmp/outputs"]
    with_token = [t["name"] for t in spec["workflowSpec"]["templates"] if t.get("automountServiceAccountToken")]
    assert with_token == ["gc-leases"] and step["serviceAccountName"] == gc_block.GC_SA
    assert spec["workflowSpec"]["automountServiceAccountToken"] is False
    kustomization = yaml.safe_load(rendered["generated/kustomization.yaml"])
    assert "cronworkflows/hera-flows-gc.yaml" in kustomization["resources"]


def test_the_gc_role_may_only_list_and_delete_leases(rendered: dict[str, str]) -> None:
    docs = [d for d in yaml.safe_load_all(rendered["generated/rbac.yaml"]) if d]
    [role] = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == gc_block.GC_SA]
    lease_rules = [r for r in role["rules"] if r["apiGroups"] == ["coordination.k8s.io"]]
    assert lease_rules == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "delete"]}]
    assert [r for r in role["rules"] if r not in lease_rules] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
    [account] = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == gc_block.GC_SA]
    # Its one pod calls the API: Argo cannot turn on a token its account turns off (cluster rule template-token).
    assert account["automountServiceAccountToken"] is True


def test_configuration_switches_and_no_pattern_means_no_gc() -> None:
    base = yaml.safe_load((ROOT / "config" / "flows.yaml").read_text())
    tuned = {**base, "maintenance": {"lease_gc": {"schedule": "5 1 * * 0", "grace_seconds": 3600}}}
    files = render(parse_config(yaml.safe_dump(tuned), "tuned.yaml"))
    cron = yaml.safe_load(files["generated/cronworkflows/hera-flows-gc.yaml"])
    assert cron["spec"]["schedules"] == ["5 1 * * 0"]
    assert "--grace-seconds=3600" in yaml.safe_dump(cron)

    off = {**base, "maintenance": {"lease_gc": {"enabled": False}}}
    files = render(parse_config(yaml.safe_dump(off), "off.yaml"))
    assert "generated/cronworkflows/hera-flows-gc.yaml" not in files and "hera-flows-gc" not in files[
        "generated/rbac.yaml"]

    none = {**base, "patterns": {name: {**value, "enabled": False} for name, value in base["patterns"].items()}}
    files = render(parse_config(yaml.safe_dump(none), "none.yaml"))
    assert "generated/cronworkflows/hera-flows-gc.yaml" not in files
