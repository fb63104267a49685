"""`hera-flows step triage-guard`: decide whether a workflow named by the Sensor gets triaged, exactly once.

The Sensor passes only the workflow's name, namespace and uid. The guard reads the workflow from the API and
ends the run as a quiet ``skip`` (never a failure: a failed triage run must not look like something to triage)
when:

- the workflow is one of ours (``app.kubernetes.io/managed-by: hera-flows`` or the ``hera-flows.io/pattern``
  label) — defence in depth behind the EventSource's label selector;
- it is gone, was replaced (another uid), or is not opted in (labels; a Kubeflow Pipelines run, label
  ``pipeline/runid``, needs no opt-in when ``--kubeflow`` is on);
- it is Failed/Error but finished more than ``--max-age-seconds`` ago (an EventSource restart re-lists every
  Failed workflow still in the cluster);
- it is Running and no pod node has been in ImagePullBackOff/ErrImagePull for ``--grace-seconds`` (measured
  from the node's ``startedAt``: a pod stuck pulling never starts, so that is when it began waiting);
- another run already claimed its uid (a Failed workflow is delivered as ADD, then UPDATEs).

The claim is a Lease named from the uid (``naming.lease_name("triage", uid)``), created race-free and owned by
this run, so two deliveries processed at the same moment still triage once.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from hera_flows.steps import naming
from hera_flows.steps.common import StepError, log, param
from hera_flows.steps.contract import GUARD_FLAGS, GUARD_OUTPUTS, RUN_IDENTITY, Flag, Step, merged
from hera_flows.steps.run_labels import label_workflow, run_labels
from hera_flows.steps.state import WorkflowOwner, open_store, parse_time
from hera_flows.steps.triage import kfp

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "hera-flows"
PATTERN_LABEL = "hera-flows.io/pattern"
PHASE_FAILED = ("Failed", "Error")
IMAGE_PULL_PREFIXES = ("ImagePullBackOff", "ErrImagePull")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_UID = re.compile(r"^[0-9a-fA-F-]{8,64}$")


def _now() -> float:
    return time.time()


@dataclass
class Decision:
    decision: str  # proceed | skip
    reason: str
    case: str = ""  # failed | image-pull


CONTRACT = Step(
    name="triage-guard",
    entry="hera_flows.steps.triage.guard:main",
    summary="re-read the failed workflow, skip our own and already triaged ones, claim its uid",
    flags=(
        *GUARD_FLAGS,
        Flag("namespaces", "the watched namespaces", form="csv"),
        Flag("opt-in-labels", "key=value labels a workflow must carry", form="csv"),
        Flag("grace-seconds", "a Running workflow stuck pulling its image this long is triaged", kind=int),
        Flag("max-age-seconds", "failures that finished longer ago are skipped", kind=int),
        Flag("kubeflow", "Kubeflow Pipelines runs (label pipeline/runid) need no opt-in label", form="bool"),
    ),
    inputs=("target-name", "target-namespace", "target-uid", "trigger", *RUN_IDENTITY),
    outputs=merged(GUARD_OUTPUTS, ("case", "title")),
)


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StepError(f"--opt-in-labels: {item!r} is not key=value")
        labels[key] = value
    return labels


def is_ours(workflow: dict[str, Any]) -> str | None:
    """Why this workflow belongs to hera-flows (and must never be triaged), or None."""
    labels = (workflow.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE:
        return f"it is managed by hera-flows ({MANAGED_BY_KEY}={MANAGED_BY_VALUE})"
    if PATTERN_LABEL in labels:
        return f"it is a hera-flows workflow ({PATTERN_LABEL}={labels[PATTERN_LABEL]})"
    return None


def image_pull_nodes(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    return [
        n for n in nodes.values()
        if isinstance(n, dict) and n.get("type") == "Pod" and n.get("phase") == "Pending"
        and str(n.get("message") or "").startswith(IMAGE_PULL_PREFIXES)
    ]


def decide(workflow: dict[str, Any] | None, *, uid: str, opt_in: dict[str, str], grace_seconds: int,
           max_age_seconds: int, now: float, kubeflow: bool = False) -> Decision:
    """Everything but the dedupe claim: a pure function of the workflow object."""
    if workflow is None:
        return Decision("skip", "the workflow no longer exists")
    metadata = workflow.get("metadata") or {}
    if metadata.get("uid") != uid:
        return Decision("skip", f"the workflow now has uid {metadata.get('uid')!r}, not {uid!r} (it was replaced)")
    ours = is_ours(workflow)
    if ours:
        return Decision("skip", f"refused: {ours}; hera-flows never triages its own workflows")
    labels = metadata.get("labels") or {}
    missing = [f"{k}={v}" for k, v in opt_in.items() if labels.get(k) != v]
    if missing and not (kubeflow and kfp.is_kfp_run(workflow)):
        return Decision("skip", f"the workflow is not opted in (missing label {', '.join(missing)})")
    status = workflow.get("status") or {}
    phase = status.get("phase")
    if phase in PHASE_FAILED:
        finished = parse_time(status.get("finishedAt"))
        if finished is not None and now - finished.timestamp() > max_age_seconds:
            return Decision("skip", f"the workflow finished {int(now - finished.timestamp())} s ago, more than "
                                    f"{max_age_seconds} s (an old failure re-listed)")
        return Decision("proceed", f"the workflow ended {phase}", "failed")
    if phase == "Running":
        stuck = image_pull_nodes(workflow)
        if not stuck:
            if not status.get("nodes") and status.get("offloadNodeStatusVersion"):
                return Decision("skip", "the workflow's node status is offloaded; an image-pull stall is caught when "
                                        "it fails at its deadline")
            return Decision("skip", "the workflow is running and no pod is stuck pulling its image")
        ages = []
        for node in stuck:
            started = parse_time(node.get("startedAt"))
            ages.append(now - started.timestamp() if started else 0.0)
        oldest = max(ages)
        if oldest < grace_seconds:
            return Decision("skip", f"a pod has been waiting for its image for {int(oldest)} s, less than the grace "
                                    f"period of {grace_seconds} s")
        return Decision("proceed", f"a pod has been stuck pulling its image for {int(oldest)} s", "image-pull")
    return Decision("skip", f"the workflow is {phase or 'in no phase'}: nothing to triage")


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    watched = list(args.namespaces)
    name = param("target-name", required=True).strip()
    namespace = param("target-namespace", required=True).strip()
    uid = param("target-uid", required=True).strip()
    if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        raise StepError(f"target-name {name[:80]!r} is not a Kubernetes object name")
    if namespace not in watched:
        raise StepError(f"namespace {namespace[:80]!r} is not watched "
                        f"(failure_triage.namespaces: {', '.join(watched)})")
    if not _UID.match(uid):
        raise StepError(f"target-uid {uid[:80]!r} is not a Kubernetes uid")
    run_name, run_uid = param("workflow-name"), param("workflow-uid")
    holder = run_uid or run_name
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the dedupe record needs its run)")

    from hera_flows.steps.triage.kube import KubeReader

    workflow = KubeReader().workflow(namespace, name)
    decision = decide(workflow, uid=uid, opt_in=parse_labels(",".join(args.opt_in_labels)),
                      grace_seconds=args.grace_seconds, max_age_seconds=args.max_age_seconds, now=_now(),
                      kubeflow=args.kubeflow)
    key = naming.dedupe_key(namespace, name, uid)
    if decision.decision == "proceed":
        owner = WorkflowOwner(run_name, run_uid) if run_name and run_uid else None
        store = open_store(args.state_namespace)
        lease = naming.lease_name("triage", uid)
        if not store.claim_once(lease, holder, owner, key=key, pending_seconds=args.claim_seconds):
            current = store.get(lease) or {}
            by = (current.get("spec") or {}).get("holderIdentity") or "another run"
            decision = Decision("skip", f"workflow {namespace}/{name} (uid {uid}) was already triaged by {by}")
    log(f"triage-guard: {decision.decision}: {decision.reason}")
    label_workflow(args.state_namespace, run_name, run_labels(decision.decision, dedupe_key=key), who="triage-guard")
    template = ""
    if workflow:
        labels = (workflow.get("metadata") or {}).get("labels") or {}
        template = labels.get("workflows.argoproj.io/workflow-template") or \
            ((workflow.get("spec") or {}).get("workflowTemplateRef") or {}).get("name", "")
        if not template and kfp.is_kfp_run(workflow):
            template = kfp.pipeline_name(workflow)
    event = {"name": name, "namespace": namespace, "uid": uid, "case": decision.case, "template": template,
             "phase": ((workflow or {}).get("status") or {}).get("phase", "")}
    what = "image pull stuck" if decision.case == "image-pull" else "failed"
    CONTRACT.write(
        args.outputs,
        decision=decision.decision,
        reason=decision.reason,
        dedupe_key=key,
        branch="",
        event=json.dumps(event, sort_keys=True),
        case=decision.case,
        title=f"Triage {namespace}/{name} ({what})" if decision.decision == "proceed" else "",
    )
    return 0
