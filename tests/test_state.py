"""The Lease store: compare-and-swap semantics on both backends, races between threads and processes."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hera_flows.steps import state
from hera_flows.steps.common import StepError, TransientError
from hera_flows.steps.naming import lease_name
from hera_flows.steps.state import (
    AlreadyExists,
    Conflict,
    FileLeaseStore,
    KubernetesLeaseStore,
    LeaseStore,
    WorkflowOwner,
)

NS = "ml-automation"
T0 = datetime(2026, 11, 22, 18, 0, 0, tzinfo=timezone.utc)  # a whole second: MicroTime must still be valid

StoreFactory = Callable[[], LeaseStore]


@pytest.fixture(params=["file", "kubernetes"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of independent store instances (one per thread) sharing one backend."""
    if request.param == "file":
        return lambda: FileLeaseStore(tmp_path / "state", NS)
    kube = request.getfixturevalue("kube_api")
    return lambda: KubernetesLeaseStore(NS, kube.api_client(), base_delay=0.01)


# --- naming -------------------------------------------------------------------------------------------------------


def test_lease_names_are_dns_labels_with_the_prefix() -> None:
    name = lease_name("replay", "mlflow:1178b31a-79be-4180-a66d-bc94108c6795")
    assert name.startswith("hf-replay-") and len(name) == len("hf-replay-") + 20
    assert name == lease_name("replay", "mlflow:1178b31a-79be-4180-a66d-bc94108c6795")
    assert name != lease_name("replay", "mlflow:1178b31a-79be-4180-a66d-bc94108c6796")
    assert lease_name("cooldown", "k") != lease_name("replay", "k")
    for bad_kind in ("", "Replay", "re_play", "-x", "x" * 21):
        with pytest.raises(ValueError):
            lease_name(bad_kind, "k")


def test_store_refuses_foreign_lease_names(new_store: StoreFactory) -> None:
    store = new_store()
    for name in ("kube-controller-manager", "hf-", "HF-x", "hf-../x", "hf-x/y"):
        with pytest.raises(ValueError, match="refusing lease name"):
            store.claim_once(name, "h")
        with pytest.raises(ValueError, match="refusing lease name"):
            store.acquire_cooldown(name, "h", 60, T0)


# --- primitives ---------------------------------------------------------------------------------------------------


def test_create_and_replace_are_compare_and_swap(new_store: StoreFactory) -> None:
    store = new_store()
    name = lease_name("test", "cas")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
             "spec": {"holderIdentity": "a"}}
    created = store.create(lease)
    with pytest.raises(AlreadyExists):
        store.create(lease)
    first_version = created["metadata"]["resourceVersion"]
    updated = store.replace({**created, "spec": {"holderIdentity": "b"}})
    assert updated["metadata"]["resourceVersion"] != first_version
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(Conflict):
        store.replace({**created, "spec": {"holderIdentity": "c"}})  # stale resourceVersion
    assert store.get(name)["spec"]["holderIdentity"] == "b"
    assert store.get(lease_name("test", "absent")) is None


# --- claim_once ---------------------------------------------------------------------------------------------------


def test_claim_once(new_store: StoreFactory) -> None:
    store = new_store()
    name = lease_name("replay", "mlflow:d-1")
    owner = WorkflowOwner("mlflow-promotion-abcde", "6b1e2a8c-0000-4000-8000-000000000001")
    assert store.claim_once(name, "wf-1", owner, key="mlflow:d-1", now=T0) is True
    assert store.claim_once(name, "wf-2", key="mlflow:d-1") is False
    assert store.claim_once(name, "wf-1", owner, key="mlflow:d-1") is True  # an Argo retry of the same run
    lease = new_store().get(name)
    assert lease["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "hera-flows"}
    assert lease["metadata"]["annotations"] == {"hera-flows.io/key": "mlflow:d-1"}
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": owner.name, "uid": owner.uid}
    ]
    assert lease["spec"]["holderIdentity"] == "wf-1"
    assert state.parse_time(lease["spec"]["acquireTime"]) - T0 < timedelta(milliseconds=1)


# --- acquire_cooldown ---------------------------------------------------------------------------------------------


def test_cooldown_lifecycle(new_store: StoreFactory) -> None:
    store = new_store()
    name = lease_name("cooldown", "fraud-detector@amount")
    first = store.acquire_cooldown(name, "wf-1", 3600, T0, key="fraud-detector@amount")
    assert first.proceed and first.last_holder is None

    within = store.acquire_cooldown(name, "wf-2", 3600, T0 + timedelta(minutes=59))
    assert not within.proceed
    assert within.last_holder == "wf-1" and abs(within.last_time - T0) < timedelta(milliseconds=1)
    assert "cooldown" in within.reason and "3540 s ago" in within.reason

    retry = store.acquire_cooldown(name, "wf-1", 3600, T0 + timedelta(minutes=30))
    assert retry.proceed and "retry" in retry.reason

    expired = store.acquire_cooldown(name, "wf-3", 3600, T0 + timedelta(hours=1, seconds=1))
    assert expired.proceed and expired.last_holder == "wf-1"
    lease = store.get(name)
    assert lease["spec"]["holderIdentity"] == "wf-3"
    assert lease["spec"]["leaseTransitions"] == 1
    assert lease["spec"]["leaseDurationSeconds"] == 3600
    assert lease["metadata"]["annotations"] == {"hera-flows.io/key": "fraud-detector@amount"}

    again = store.acquire_cooldown(name, "wf-4", 3600, T0 + timedelta(hours=1, minutes=5))
    assert not again.proceed and again.last_holder == "wf-3"


class _Interleaved(FileLeaseStore):
    """After the first read, another run takes the expired cooldown before this one can replace it."""

    def __init__(self, root: Path, competitor: Callable[[], None]) -> None:
        super().__init__(root, NS)
        self._competitor: Callable[[], None] | None = competitor
        self.replace_conflicts = 0

    def get(self, name: str) -> dict[str, Any] | None:
        lease = super().get(name)
        if self._competitor is not None:
            competitor, self._competitor = self._competitor, None
            competitor()
        return lease

    def replace(self, lease: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().replace(lease)
        except Conflict:
            self.replace_conflicts += 1
            raise


def test_cooldown_conflict_rereads_and_decides_again(tmp_path: Path) -> None:
    root = tmp_path / "state"
    name = lease_name("cooldown", "k")
    assert FileLeaseStore(root, NS).acquire_cooldown(name, "old", 60, T0).proceed
    later = T0 + timedelta(minutes=5)
    competitor = lambda: FileLeaseStore(root, NS).acquire_cooldown(name, "fast", 60, later)  # noqa: E731
    slow = _Interleaved(root, competitor)
    decision = slow.acquire_cooldown(name, "slow", 60, later)
    assert slow.replace_conflicts == 1
    assert not decision.proceed and decision.last_holder == "fast"


# --- races --------------------------------------------------------------------------------------------------------


def _race(workers: int, action: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_twenty_threads_claim_once(new_store: StoreFactory) -> None:
    name = lease_name("replay", "race")
    stores = [new_store() for _ in range(20)]
    results = _race(20, lambda i: stores[i].claim_once(name, f"wf-{i}", key="race"))
    assert results.count(True) == 1
    winner = results.index(True)
    assert new_store().get(name)["spec"]["holderIdentity"] == f"wf-{winner}"


def test_twenty_threads_acquire_fresh_cooldown(new_store: StoreFactory) -> None:
    name = lease_name("cooldown", "race")
    stores = [new_store() for _ in range(20)]
    results = _race(20, lambda i: stores[i].acquire_cooldown(name, f"wf-{i}", 600, T0))
    assert [r.proceed for r in results].count(True) == 1


def test_twenty_threads_acquire_expired_cooldown(new_store: StoreFactory) -> None:
    name = lease_name("cooldown", "race-expired")
    assert new_store().acquire_cooldown(name, "old", 600, T0).proceed
    later = T0 + timedelta(minutes=11)
    stores = [new_store() for _ in range(20)]
    results = _race(20, lambda i: stores[i].acquire_cooldown(name, f"wf-{i}", 600, later))
    winners = [i for i, r in enumerate(results) if r.proceed]
    assert len(winners) == 1
    lease = new_store().get(name)
    assert lease["spec"]["holderIdentity"] == f"wf-{winners[0]}" and lease["spec"]["leaseTransitions"] == 1
    assert all(r.last_holder in ("old", f"wf-{winners[0]}") for r in results)


def _process_worker(root: str, kind: str, index: int, barrier: Any, queue: Any) -> None:
    store = FileLeaseStore(root, NS)
    barrier.wait()
    if kind == "claim":
        queue.put((index, store.claim_once(lease_name("replay", "proc"), f"proc-{index}")))
    else:
        later = T0 + timedelta(minutes=11)
        queue.put((index, store.acquire_cooldown(lease_name("cooldown", "proc"), f"proc-{index}", 600, later).proceed))


@pytest.mark.parametrize("kind", ["claim", "cooldown"])
def test_processes_race_on_file_store(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "state"
    if kind == "cooldown":
        assert FileLeaseStore(root, NS).acquire_cooldown(lease_name("cooldown", "proc"), "old", 600, T0).proceed
    context = multiprocessing.get_context("fork")
    workers = 6
    barrier, queue = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_process_worker, args=(str(root), kind, i, barrier, queue))
                 for i in range(workers)]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=60) for _ in range(workers))
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert list(results.values()).count(True) == 1


# --- backend specifics --------------------------------------------------------------------------------------------


def test_file_store_keeps_one_json_file_per_lease(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path, NS)
    name = lease_name("replay", "k")
    store.claim_once(name, "h")
    stored = json.loads((tmp_path / NS / f"{name}.json").read_text())
    assert stored["kind"] == "Lease" and stored["metadata"]["resourceVersion"] == "1"
    with pytest.raises(StepError, match="namespace"):
        FileLeaseStore(tmp_path, "../escape")


def test_kubernetes_store_unreachable_api_is_transient(kube_api) -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: connection refused
    configuration.retries = 0
    store = KubernetesLeaseStore(NS, client.ApiClient(configuration), attempts=2, base_delay=0.01)
    with pytest.raises(TransientError, match="failed after retries"):
        store.claim_once(lease_name("replay", "x"), "h")


def test_kubernetes_store_survives_lost_responses(kube_api) -> None:
    """A write that reached the API but whose answer was lost is retried; the retry recognises its own write."""
    store = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    kube_api.lose_responses = 1
    assert store.claim_once(lease_name("replay", "lost"), "wf-1") is True
    assert kube_api.lose_responses == 0
    assert store.claim_once(lease_name("replay", "lost"), "wf-2") is False

    name = lease_name("cooldown", "lost")
    assert store.acquire_cooldown(name, "wf-1", 60, T0).proceed
    kube_api.lose_responses = 1
    decision = store.acquire_cooldown(name, "wf-2", 60, T0 + timedelta(minutes=2))
    assert decision.proceed and kube_api.lose_responses == 0
    assert store.get(name)["spec"]["holderIdentity"] == "wf-2"


def test_kubernetes_store_bad_token_is_a_clear_error(kube_api) -> None:
    kube_api.token = "rotated"
    store = KubernetesLeaseStore(NS, kube_api.api_client())
    kube_api.token = "the-real-one"
    with pytest.raises(StepError, match="HTTP 401.*ServiceAccount"):
        store.claim_once(lease_name("replay", "x"), "h")


def test_open_store_picks_the_backend(tmp_path: Path, kube_api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
    assert isinstance(state.open_store(NS), FileLeaseStore)

    monkeypatch.delenv("HERA_FLOWS_STATE_DIR")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube_api.write_kubeconfig(tmp_path / "kubeconfig")))
    store = state.open_store(NS)
    assert isinstance(store, KubernetesLeaseStore)
    assert store.claim_once(lease_name("replay", "via-kubeconfig"), "h")
    assert (NS, lease_name("replay", "via-kubeconfig")) in kube_api.leases

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(StepError, match="HERA_FLOWS_STATE_DIR"):
        state.open_store(NS)


# --- claims are pending until the run confirms them (issue 16 item 6) ----------------------------------------------


def test_a_pending_claim_is_confirmed_released_or_taken_over_when_abandoned(new_store: StoreFactory) -> None:
    store = new_store()
    name = lease_name("replay", "mlflow:delivery-1")
    assert store.claim_once(name, "uid-1", key="mlflow:delivery-1", now=T0, pending_seconds=1800)
    assert not store.claim_once(name, "uid-2", now=T0 + timedelta(minutes=10), pending_seconds=1800)  # in flight
    # uid-1 failed: its exit handler releases the claim, and a redelivery of the same delivery proceeds
    assert store.release("uid-1") == [name]
    assert store.get(name) is None
    assert store.claim_once(name, "uid-2", key="mlflow:delivery-1", now=T0 + timedelta(minutes=11),
                            pending_seconds=1800)
    # uid-2 vanished (terminated, no exit handler): after its deadline uid-3 takes the claim over
    assert not store.claim_once(name, "uid-3", now=T0 + timedelta(minutes=30), pending_seconds=1800)
    assert store.claim_once(name, "uid-3", now=T0 + timedelta(minutes=42), pending_seconds=1800)
    assert store.get(name)["spec"]["holderIdentity"] == "uid-3"
    # uid-3's review succeeded: confirmed, the claim is permanent (until gc) and no longer anyone's pending claim
    assert store.confirm("uid-3") == [name]
    assert store.release("uid-3") == []
    assert not store.claim_once(name, "uid-4", now=T0 + timedelta(days=30), pending_seconds=1800)
    lease = store.get(name)
    assert lease["metadata"]["annotations"]["hera-flows.io/state"] == "confirmed"
    assert lease["metadata"]["annotations"]["hera-flows.io/key"] == "mlflow:delivery-1"
    assert "leaseDurationSeconds" not in lease["spec"]  # owned records have no duration once confirmed


def test_confirm_gives_the_claim_its_full_duration(new_store: StoreFactory) -> None:
    store = new_store()
    name = lease_name("fairness-week", "fairness-audit@2026-W48")
    assert store.claim_once(name, "uid-1", now=T0, duration_seconds=8 * 86400, pending_seconds=3600)
    assert store.get(name)["spec"]["leaseDurationSeconds"] == 3600
    store.confirm("uid-1")
    assert store.get(name)["spec"]["leaseDurationSeconds"] == 8 * 86400


def test_cooldowns_follow_the_api_servers_clock_not_the_pods(kube_api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 13: a guard pod whose clock runs 7 h fast must not see a 6 h cooldown as expired (nor one
    whose clock is slow stretch it): decisions are made at the API server's time (its Date header)."""
    from hera_flows.steps import state

    first = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    name = lease_name("drift-cooldown", "fraud@amount")
    assert first.acquire_cooldown(name, "uid-1", 6 * 3600, key="fraud@amount").proceed
    real_now = state.local_now
    monkeypatch.setattr(state, "local_now", lambda: real_now() + timedelta(hours=7))  # a skewed pod clock
    skewed = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    decision = skewed.acquire_cooldown(name, "uid-2", 6 * 3600, key="fraud@amount")
    assert not decision.proceed and "cooldown" in decision.reason
    # and when the server's own clock has moved past the window, the key is free again
    kube_api.clock_offset = 6 * 3600 + 60
    later = KubernetesLeaseStore(NS, kube_api.api_client(), base_delay=0.01)
    assert later.acquire_cooldown(name, "uid-3", 6 * 3600, key="fraud@amount").proceed
