"""Race-free run records for the guard: replay protection and per-key cooldowns, as Kubernetes Leases.

Several workflows for the same key can start at the same moment (a webhook retried, an alert storm), and Argo
has no per-key deduplication (docs/upstream-facts.md#events-sensor). Each decision is therefore a compare-and-swap on a
``coordination.k8s.io/v1`` Lease: *create* fails with 409 AlreadyExists when another run got there first,
*replace* carries ``metadata.resourceVersion`` and fails with 409 Conflict when the Lease changed since it was
read. Exactly one run wins; the losers re-read and decide again.

Two backends with the same semantics: :class:`KubernetesLeaseStore` (in the cluster) and
:class:`FileLeaseStore` (one JSON file per Lease under ``$HERA_FLOWS_STATE_DIR``, used by the local runner),
chosen by :func:`open_store`.

Every Lease carries the label ``app.kubernetes.io/managed-by=hera-flows``; records that must outlive their Workflow
also carry ``spec.leaseDurationSeconds`` so that `hera-flows step gc-leases` (hera_flows/steps/gc.py) can delete
them once they have expired, with a conditional ``delete`` (precondition on resourceVersion).

**Claims are short until the work is done.** A guard takes a claim as *pending* (annotation
``hera-flows.io/state: pending``, label ``hera-flows.io/run: <its run>``, ``leaseDurationSeconds`` = the run's
deadline): other runs treat it as "in progress" and skip. When the run's review succeeded, ``confirm`` turns it
into the full record (the cooldown window, the week, the delivery id); when the run ends without that, its exit
handler calls ``release``, which deletes the run's still-pending claims, so a crash, a forge outage or a full PR
ceiling never locks a key for the whole window. A pending claim whose run vanished without an exit handler
(``argo terminate``) expires after its duration and is taken over, or collected by gc-leases.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import functools
import json
import os
import re
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hera_flows.steps import kubeapi
from hera_flows.steps.common import StepError, TransientError, retry
from hera_flows.steps.naming import LEASE_PREFIX

STATE_DIR_ENV = "HERA_FLOWS_STATE_DIR"
MANAGED_BY = {"app.kubernetes.io/managed-by": "hera-flows"}
KEY_ANNOTATION = "hera-flows.io/key"
STATE_ANNOTATION = "hera-flows.io/state"  # pending | confirmed (absent: a record from before claims were pending)
FINAL_DURATION_ANNOTATION = "hera-flows.io/confirmed-duration"  # leaseDurationSeconds once confirmed ("" = none)
RUN_LABEL = "hera-flows.io/run"
PENDING, CONFIRMED = "pending", "confirmed"
# A reservation ledger (the drift open-PR ceiling): {entry: {"at": MicroTime, "run": holder, ...}} in an annotation
# of a Lease carrying RESERVATION_LABEL; a run that ends without confirming gives its entries back.
RESERVATIONS_ANNOTATION = "hera-flows.io/reservations"
RESERVATION_LABEL = "hera-flows.io/reservations"
_MAX_KEY_ANNOTATION = 4096
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CAS_ATTEMPTS = 10  # re-read-and-decide rounds before giving up on a Lease that keeps changing


class AlreadyExists(Exception):
    """create: a Lease of that name exists (HTTP 409, reason AlreadyExists)."""


class Conflict(Exception):
    """replace/delete: the Lease changed since it was read (HTTP 409, reason Conflict) or is gone (HTTP 404)."""


@dataclass(frozen=True)
class WorkflowOwner:
    """The Workflow a replay Lease belongs to; Kubernetes garbage-collects the Lease with it."""

    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        # No blockOwnerDeletion: that would need delete permission on workflows, and nothing must wait.
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": self.name, "uid": self.uid}


@dataclass(frozen=True)
class CooldownDecision:
    proceed: bool
    reason: str
    last_holder: str | None = None
    last_time: datetime | None = None


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with exactly six fractional digits, UTC)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def local_now() -> datetime:
    """This pod's clock (the fallback when the API server's is unknown)."""
    return datetime.now(timezone.utc)


def aware(now: datetime | float | None) -> datetime:
    if now is None:
        moment = local_now()
    elif isinstance(now, (int, float)):
        moment = datetime.fromtimestamp(now, timezone.utc)
    else:
        moment = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    # The Python client serialises datetimes with isoformat(), which drops a zero fraction; the API server
    # then rejects the MicroTime. Never send a whole second.
    return moment if moment.microsecond else moment.replace(microsecond=1)


def matches_selector(labels: dict[str, Any] | None, selector: str) -> bool:
    """An equality-based Kubernetes label selector (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, comma = AND)."""
    labels = labels or {}
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            key, value = (x.strip() for x in term.split("!=", 1))
            ok = labels.get(key) != value
        elif "=" in term:
            key, value = (x.strip() for x in term.replace("==", "=", 1).split("=", 1))
            ok = labels.get(key) == value
        elif term.startswith("!"):
            ok = term[1:].strip() not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


MANAGED_BY_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


def run_label(holder: str) -> str:
    """The holder (a workflow uid) as a label value; anything else as a stable hash of it."""
    import hashlib

    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?", holder):
        return holder
    return hashlib.sha256(holder.encode("utf-8")).hexdigest()[:40]


def is_pending(lease: dict[str, Any]) -> bool:
    return ((lease.get("metadata") or {}).get("annotations") or {}).get(STATE_ANNOTATION) == PENDING


def expired(lease: dict[str, Any], now: datetime) -> bool:
    """A Lease whose ``(renewTime or acquireTime) + leaseDurationSeconds`` lies before ``now``."""
    spec = lease.get("spec") or {}
    start = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if start is None or not isinstance(duration, int):
        return False
    return (now - start).total_seconds() > duration


def reservations(lease: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """A ledger's entries: entry -> {"at": MicroTime, "run": holder, ...}; older records held only the time."""
    annotations = ((lease or {}).get("metadata") or {}).get("annotations") or {}
    try:
        raw = json.loads(annotations.get(RESERVATIONS_ANNOTATION) or "{}")
    except json.JSONDecodeError:
        return {}
    out: dict[str, dict[str, str]] = {}
    for entry, value in (raw.items() if isinstance(raw, dict) else []):
        if isinstance(value, str):
            out[entry] = {"at": value}
        elif isinstance(value, dict) and isinstance(value.get("at"), str):
            out[entry] = {k: str(v) for k, v in value.items()}
    return out


def check_lease_name(name: str) -> None:
    """Only touch our own Leases: a wrong name must never overwrite e.g. a controller's leader election."""
    if not name.startswith(LEASE_PREFIX) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"refusing lease name {name!r}: hera-flows only manages Leases named '{LEASE_PREFIX}...'")


class LeaseStore(ABC):
    """Compare-and-swap on Leases in one namespace; subclasses provide create / get / replace / list / delete."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    # --- primitives (same semantics as the Kubernetes API) ---------------------------------------------

    def now(self) -> datetime:
        """The time decisions are made at: the store's own clock where it has one (the API server's), so a pod
        whose clock is wrong neither ends a cooldown early nor stretches it."""
        return local_now()

    @abstractmethod
    def create(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease; raise AlreadyExists if the name is taken. Returns the stored object."""

    @abstractmethod
    def get(self, name: str) -> dict[str, Any] | None:
        """The stored Lease, or None."""

    @abstractmethod
    def replace(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Replace the Lease whose ``metadata.resourceVersion`` is given; raise Conflict if it changed."""

    @abstractmethod
    def list(self, label_selector: str) -> list[dict[str, Any]]:
        """Every Lease of the namespace whose labels match ``label_selector`` (equality-based)."""

    @abstractmethod
    def delete(self, name: str, resource_version: str) -> None:
        """Delete the Lease only if it still has ``resource_version``; raise Conflict if it changed or is gone."""

    # --- decisions -------------------------------------------------------------------------------------

    def claim_once(
        self,
        name: str,
        holder: str,
        owner: WorkflowOwner | None = None,
        *,
        key: str | None = None,
        now: datetime | float | None = None,
        duration_seconds: float | None = None,
        pending_seconds: float | None = None,
    ) -> bool:
        """True for the first claimer of ``name`` (and for that same holder again, e.g. an Argo retry).

        ``duration_seconds`` does not end a confirmed claim (it refuses other holders for as long as the Lease
        exists); it tells `gc-leases` when the record may be deleted. Leave it unset for records owned by their
        Workflow. ``pending_seconds``: take the claim as pending for that long (see the module docstring); a
        pending claim of another run that has outlived its duration is taken over.
        """
        check_lease_name(name)
        moment = aware(now if now is not None else self.now())
        lease = self._new_lease(name, holder, moment, key=key, owner=owner, duration=duration_seconds,
                                pending=pending_seconds)
        for _ in range(_CAS_ATTEMPTS):
            try:
                self.create(lease)
                return True
            except AlreadyExists:
                current = self.get(name)
            if current is None:
                continue  # deleted in between (released, or garbage-collected with its workflow): create again
            if current.get("spec", {}).get("holderIdentity") == holder:
                return True
            if not (is_pending(current) and expired(current, moment)):
                return False
            try:
                self.replace(self._taken_over(current, lease))
                return True
            except Conflict:
                continue
        raise TransientError(f"lease {name} kept changing while claiming it; try again later")

    @staticmethod
    def _taken_over(current: dict[str, Any], lease: dict[str, Any]) -> dict[str, Any]:
        """``current`` rewritten for the new holder of ``lease`` (compare-and-swap on its resourceVersion): the
        new spec, owner and claim state; the recorded key and other metadata stay."""
        updated: dict[str, Any] = json.loads(json.dumps(current))
        updated["metadata"].pop("managedFields", None)  # the server keeps them; never echo them back
        meta, new_meta = updated["metadata"], lease["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), **new_meta.get("labels", {})}
        annotations = {**(meta.get("annotations") or {}), **new_meta.get("annotations", {})}
        if RUN_LABEL not in new_meta.get("labels", {}):
            meta["labels"].pop(RUN_LABEL, None)
            annotations.pop(STATE_ANNOTATION, None)
            annotations.pop(FINAL_DURATION_ANNOTATION, None)
        if annotations:
            meta["annotations"] = annotations
        if new_meta.get("ownerReferences"):
            meta["ownerReferences"] = new_meta["ownerReferences"]
        else:
            meta.pop("ownerReferences", None)
        updated["spec"] = {**lease["spec"],
                           "leaseTransitions": int((current.get("spec") or {}).get("leaseTransitions") or 0) + 1}
        return updated

    def acquire_cooldown(
        self,
        name: str,
        holder: str,
        window_seconds: float,
        now: datetime | float | None = None,
        *,
        key: str | None = None,
        pending_seconds: float | None = None,
    ) -> CooldownDecision:
        """Proceed unless another holder took ``name`` less than ``window_seconds`` ago (or holds it pending and is
        still within its deadline); record this run if so, pending when ``pending_seconds`` is given."""
        check_lease_name(name)
        moment = aware(now if now is not None else self.now())
        for _ in range(_CAS_ATTEMPTS):
            current = self.get(name)
            if current is None:
                try:
                    self.create(self._new_lease(name, holder, moment, key=key, owner=None, duration=window_seconds,
                                                pending=pending_seconds))
                except AlreadyExists:
                    continue
                return CooldownDecision(True, "no earlier run recorded for this key")
            spec = current.get("spec") or {}
            last_holder = spec.get("holderIdentity")
            last_time = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
            if last_holder == holder:
                return CooldownDecision(True, "this run already holds the cooldown (retry)", last_holder, last_time)
            if is_pending(current) and not expired(current, moment):
                age = max((moment - last_time).total_seconds(), 0) if last_time else 0
                return CooldownDecision(False, f"in progress: {last_holder or 'another run'} claimed this key "
                                        f"{age:.0f} s ago and has not finished", last_holder, last_time)
            if is_pending(current):
                pass  # its run ended without confirming or releasing (terminated): the key is free again
            elif last_time is not None:
                age = (moment - last_time).total_seconds()
                if age < window_seconds:
                    return CooldownDecision(
                        False,
                        f"cooldown: {last_holder or 'another run'} started {max(age, 0):.0f} s ago "
                        f"(window {window_seconds:g} s)",
                        last_holder,
                        last_time,
                    )
            updated = self._taken_over(current, self._new_lease(name, holder, moment, key=key, owner=None,
                                                                duration=window_seconds, pending=pending_seconds))
            try:
                self.replace(updated)
            except Conflict:
                continue
            return CooldownDecision(True, "the cooldown of the previous run has expired", last_holder, last_time)
        raise TransientError(f"lease {name} kept changing while deciding; try again later")

    def _new_lease(
        self,
        name: str,
        holder: str,
        moment: datetime,
        *,
        key: str | None,
        owner: WorkflowOwner | None,
        duration: float | None,
        pending: float | None = None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": dict(MANAGED_BY),
                                    "annotations": {}}
        if key is not None:
            metadata["annotations"][KEY_ANNOTATION] = key[:_MAX_KEY_ANNOTATION]
        if pending is not None:
            metadata["labels"][RUN_LABEL] = run_label(holder)
            metadata["annotations"][STATE_ANNOTATION] = PENDING
            metadata["annotations"][FINAL_DURATION_ANNOTATION] = "" if duration is None else str(_duration(duration))
        if not metadata["annotations"]:
            del metadata["annotations"]
        if owner is not None:
            metadata["ownerReferences"] = [owner.reference()]
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "acquireTime": micro_time(moment),
            "renewTime": micro_time(moment),
            "leaseTransitions": 0,
        }
        if pending is not None:
            spec["leaseDurationSeconds"] = _duration(pending)
        elif duration is not None:
            spec["leaseDurationSeconds"] = _duration(duration)
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    # --- the end of a run ------------------------------------------------------------------------------
    # (``builtins.list`` below: in this class body, ``list`` names the method above)

    def held_pending(self, holder: str) -> builtins.list[dict[str, Any]]:
        """The pending claims of ``holder`` (its run has not confirmed them yet)."""
        selector = f"{MANAGED_BY_SELECTOR},{RUN_LABEL}={run_label(holder)}"
        return [lease for lease in self.list(selector)
                if is_pending(lease) and (lease.get("spec") or {}).get("holderIdentity") == holder]

    def confirm(self, holder: str, names: Collection[str] | None = None) -> builtins.list[str]:
        """Turn every pending claim of ``holder`` (or only those named in ``names``: one remediation of a run that
        remediates several keys) into its full record; returns the Lease names confirmed."""
        done = []
        for lease in self.held_pending(holder):
            if names is not None and lease["metadata"]["name"] not in names:
                continue
            for _ in range(_CAS_ATTEMPTS):
                updated = json.loads(json.dumps(lease))
                updated["metadata"].pop("managedFields", None)
                annotations = updated["metadata"].setdefault("annotations", {})
                final = annotations.pop(FINAL_DURATION_ANNOTATION, "")
                annotations[STATE_ANNOTATION] = CONFIRMED
                updated["metadata"].get("labels", {}).pop(RUN_LABEL, None)
                if final:
                    updated["spec"]["leaseDurationSeconds"] = int(final)
                else:
                    updated["spec"].pop("leaseDurationSeconds", None)
                try:
                    self.replace(updated)
                    done.append(lease["metadata"]["name"])
                    break
                except Conflict:
                    lease = self.get(lease["metadata"]["name"]) or {}
                    if not lease or not is_pending(lease) or lease.get("spec", {}).get("holderIdentity") != holder:
                        break  # taken over or released meanwhile: nothing of ours to confirm
        return done

    def release(self, holder: str, *, name: str | None = None) -> builtins.list[str]:
        """Delete the pending claims of ``holder`` (or just ``name``), each only if unchanged since read."""
        done = []
        for lease in self.held_pending(holder):
            lease_name = lease["metadata"]["name"]
            if name is not None and lease_name != name:
                continue
            try:
                self.delete(lease_name, lease["metadata"]["resourceVersion"])
                done.append(lease_name)
            except Conflict:
                continue  # changed since listed (taken over after expiry): no longer ours
        if name is None:
            done += [f"{ledger}#{entry}" for ledger, entry in self.drop_reservations(holder)]
        return done

    def drop_reservations(self, holder: str) -> builtins.list[tuple[str, str]]:
        """Give back every ledger entry ``holder`` reserved; (ledger Lease, entry) pairs."""
        dropped: list[tuple[str, str]] = []
        for ledger in self.list(f"{MANAGED_BY_SELECTOR},{RESERVATION_LABEL}=true"):
            name = ledger["metadata"]["name"]
            for _ in range(_CAS_ATTEMPTS):
                entries = reservations(ledger)
                mine = [e for e, r in entries.items() if r.get("run") == holder]
                if not mine:
                    break
                updated = json.loads(json.dumps(ledger))
                updated["metadata"].pop("managedFields", None)
                updated["metadata"]["annotations"][RESERVATIONS_ANNOTATION] = json.dumps(
                    {e: r for e, r in entries.items() if e not in mine}, sort_keys=True)
                try:
                    self.replace(updated)
                    dropped += [(name, e) for e in mine]
                    break
                except Conflict:
                    ledger = self.get(name) or {}
                    if not ledger:
                        break
        return dropped


def _duration(seconds: float) -> int:
    return max(1, min(int(seconds), 2**31 - 1))  # leaseDurationSeconds is an int32


class KubernetesLeaseStore(LeaseStore):
    """Leases through the Kubernetes API with the official client (in-cluster config, else kubeconfig)."""

    def __init__(
        self,
        namespace: str,
        api_client: Any = None,
        *,
        attempts: int = 5,
        base_delay: float = 1.0,
        request_timeout: tuple[float, float] = (5.0, 20.0),
    ) -> None:
        super().__init__(namespace)
        from kubernetes import client

        self._api = client.CoordinationV1Api(api_client if api_client is not None else _load_api_client())
        self._attempts = attempts
        self._base_delay = base_delay
        self._timeout = request_timeout
        self._api_client = self._api.api_client
        self._server_time: tuple[datetime, float] | None = None  # (API server's Date, time.monotonic() then)

    def now(self) -> datetime:
        """The API server's clock: the ``Date`` of its last answer plus the time elapsed since (one request to
        ``/version``, which every authenticated identity may read, when nothing was asked yet). Whole seconds,
        as HTTP dates are; the pod's own clock only when the server cannot be asked."""
        import time

        if self._server_time is None:
            try:
                from kubernetes import client

                # With _preload_content=False the client returns the raw urllib3 response, not the VersionInfo
                # its annotation names.
                response: Any = client.VersionApi(self._api_client).get_code(_preload_content=False,
                                                                             _request_timeout=self._timeout)
                self._note_date(response)
                response.read()  # drain and hand the connection back to the pool
                response.release_conn()
            except Exception:  # noqa: BLE001 - the pod clock is the documented fallback
                return local_now()
        if self._server_time is None:
            return local_now()
        server, at = self._server_time
        return server + timedelta(seconds=time.monotonic() - at)

    def _note_date(self, response: Any) -> None:
        import time
        from email.utils import parsedate_to_datetime

        headers = getattr(response, "headers", None) or {}
        value = headers.get("Date") if hasattr(headers, "get") else None
        if not value:
            return
        try:
            self._server_time = (parsedate_to_datetime(value).astimezone(timezone.utc), time.monotonic())
        except (TypeError, ValueError):
            return

    def create(self, lease: dict[str, Any]) -> dict[str, Any]:
        name = lease["metadata"]["name"]
        return self._call(f"create lease {name}", lambda: self._api.create_namespaced_lease(
            self.namespace, lease,  # type: ignore[arg-type]  # the client's validate_call accepts a manifest dict
            _preload_content=False, _request_timeout=self._timeout))

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call(f"read lease {name}", lambda: self._api.read_namespaced_lease(
                name, self.namespace, _preload_content=False, _request_timeout=self._timeout))
        except kubeapi.NotFound:
            return None

    def replace(self, lease: dict[str, Any]) -> dict[str, Any]:
        name = lease["metadata"]["name"]
        if not lease["metadata"].get("resourceVersion"):
            raise ValueError("replace needs metadata.resourceVersion (compare-and-swap)")
        try:
            return self._call(f"replace lease {name}", lambda: self._api.replace_namespaced_lease(
                name, self.namespace, lease,  # type: ignore[arg-type]  # validate_call accepts a manifest dict
                _preload_content=False, _request_timeout=self._timeout))
        except kubeapi.NotFound:
            raise Conflict(f"lease {name} no longer exists") from None

    def list(self, label_selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:  # pages of 500: a namespace full of records must not make one huge response
            page = self._call(f"list leases ({label_selector})", functools.partial(
                self._api.list_namespaced_lease, self.namespace, label_selector=label_selector, limit=500,
                _continue=token, _preload_content=False, _request_timeout=self._timeout))
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    def delete(self, name: str, resource_version: str) -> None:
        from kubernetes import client

        check_lease_name(name)
        if not resource_version:
            raise ValueError("delete needs the resourceVersion that was read (compare-and-delete)")
        # The precondition makes the API server refuse (409 Conflict) if the Lease was renewed since it was read.
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=resource_version))
        try:
            self._call(f"delete lease {name}", lambda: self._api.delete_namespaced_lease(
                name, self.namespace, body=options, _preload_content=False, _request_timeout=self._timeout))
        except kubeapi.NotFound:
            raise Conflict(f"lease {name} no longer exists") from None

    def _call(self, what: str, request: Callable[[], Any]) -> dict[str, Any]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        def attempt() -> dict[str, Any]:
            try:
                response = request()
            except ApiException as exc:
                if exc.status == 409:
                    already = kubeapi.status_reason(exc.body) == "AlreadyExists"
                    raise (AlreadyExists if already else Conflict)(what) from None
                raise kubeapi.api_error(
                    exc, what, where=f" in namespace {self.namespace}",
                    denied_hint="check the step's ServiceAccount token and its Role on coordination.k8s.io leases",
                ) from None
            except urllib3.exceptions.HTTPError as exc:
                raise kubeapi.Retryable(str(exc)) from None
            self._note_date(response)
            data = response.data if hasattr(response, "data") else response.read()
            value = json.loads(data)
            if not isinstance(value, dict):
                raise StepError(f"the Kubernetes API answered {what} with something other than an object")
            return value

        return retry(
            attempt,
            what=f"Kubernetes API: {what}",
            attempts=self._attempts,
            base_delay=self._base_delay,
            retry_on=(kubeapi.Retryable,),
        )


def _load_api_client() -> Any:
    return kubeapi.load_api_client(
        f"in a pod mount the guard's ServiceAccount token; locally set {STATE_DIR_ENV} to keep the records in files"
    )


class FileLeaseStore(LeaseStore):
    """Leases as JSON files, ``<root>/<namespace>/<name>.json``, with the Kubernetes API's CAS semantics.

    Every operation holds an ``fcntl`` lock on ``<name>.lock`` (shared to read, exclusive to write), so threads
    and processes on this machine see a create as exclusive (``O_EXCL``) and a replace as compare-and-swap.
    """

    def __init__(self, root: str | os.PathLike[str], namespace: str) -> None:
        super().__init__(namespace)
        if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", namespace):
            raise StepError(f"namespace {namespace!r} is not a valid Kubernetes namespace name")
        self.directory = Path(root) / namespace
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        check_lease_name(name)
        return self.directory / f"{name}.json"

    @contextlib.contextmanager
    def _locked(self, name: str, *, exclusive: bool) -> Iterator[None]:
        fd = os.open(self.directory / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def create(self, lease: dict[str, Any]) -> dict[str, Any]:
        name = lease["metadata"]["name"]
        path = self._path(name)
        stored: dict[str, Any] = json.loads(json.dumps(lease))
        stored["metadata"].update(
            namespace=self.namespace,
            uid=str(uuid.uuid4()),
            resourceVersion="1",
            creationTimestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        with self._locked(name, exclusive=True):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                raise AlreadyExists(f"lease {name} already exists") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(stored, handle)
        return stored

    def get(self, name: str) -> dict[str, Any] | None:
        path = self._path(name)
        with self._locked(name, exclusive=False):
            try:
                lease: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))  # written by create/replace
            except FileNotFoundError:
                return None
            return lease

    def replace(self, lease: dict[str, Any]) -> dict[str, Any]:
        name = lease["metadata"]["name"]
        expected = lease["metadata"].get("resourceVersion")
        if not expected:
            raise ValueError("replace needs metadata.resourceVersion (compare-and-swap)")
        path = self._path(name)
        with self._locked(name, exclusive=True):
            current = self._current(path, name, expected)
            stored: dict[str, Any] = json.loads(json.dumps(lease))
            stored["metadata"].update(
                namespace=self.namespace,
                uid=current["metadata"].get("uid"),
                creationTimestamp=current["metadata"].get("creationTimestamp"),
                resourceVersion=str(int(expected) + 1),
            )
            handle = tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=self.directory, prefix=f".{name}.", delete=False
            )
            with handle:
                json.dump(stored, handle)
            os.replace(handle.name, path)
        return stored

    @staticmethod
    def _current(path: Path, name: str, expected: str) -> dict[str, Any]:
        """The stored Lease, if it still has resourceVersion ``expected`` (call under the exclusive lock)."""
        try:
            current: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))  # written by create/replace
        except FileNotFoundError:
            raise Conflict(f"lease {name} no longer exists") from None
        if current["metadata"].get("resourceVersion") != expected:
            raise Conflict(f"lease {name} was modified (resourceVersion {expected} is stale)")
        return current

    def list(self, label_selector: str) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            name = path.name[: -len(".json")]
            if name.startswith("."):
                continue  # a replace's temporary file
            lease = self.get(name)
            if lease is not None and matches_selector((lease.get("metadata") or {}).get("labels"), label_selector):
                found.append(lease)
        return found

    def delete(self, name: str, resource_version: str) -> None:
        if not resource_version:
            raise ValueError("delete needs the resourceVersion that was read (compare-and-delete)")
        path = self._path(name)
        with self._locked(name, exclusive=True):
            self._current(path, name, resource_version)
            path.unlink()
        # The .lock file stays: removing it while another process waits on it would break mutual exclusion.


def open_store(namespace: str) -> LeaseStore:
    """Files under ``$HERA_FLOWS_STATE_DIR`` when it is set (local runs), else the Kubernetes API."""
    root = os.environ.get(STATE_DIR_ENV)
    if root:
        return FileLeaseStore(root, namespace)
    return KubernetesLeaseStore(namespace)

