"""`hera-flows step triage-context`: the facts of one failed workflow, read from the Kubernetes API.

What it reads (with the ``kubernetes`` client, as the ``hera-flows-triage-context`` ServiceAccount):

- the Workflow: phase, message, and its failing Pod nodes (``status.nodes``). With node-status offloading
  (``status.offloadNodeStatusVersion`` set, ``nodes`` absent) that is said in ``notes`` and the pods are used
  instead;
- its pods (label ``workflows.argoproj.io/workflow=<name>``), matched to nodes by the
  ``workflows.argoproj.io/node-id`` annotation: for each failing pod its own status reason and message (Evicted,
  Terminated at a node shutdown), who disrupted it (the ``DisruptionTarget`` condition), the container statuses
  (termination reason, exit code, waiting reason), its Kubernetes Events and a bounded tail of each failed
  container's log;
- the WorkflowTemplate that produced it (``workflows.argoproj.io/workflow-template`` label or
  ``spec.workflowTemplateRef``): the failing templates' image, resources and retryStrategy;
- the owner to tag: the ``--owner-key`` label or annotation of the workflow, else of its template, else
  ``--owners`` of its namespace;
- a Kubeflow Pipelines run (label ``pipeline/runid``, see kfp.py) has no WorkflowTemplate: its run id, run name,
  pipeline name (the identity its fix and dedupe key use) and the failing tasks (the ``executor`` Pods' parent
  DAG nodes) are read from the Workflow instead.

The output ``context`` is JSON capped at ``MAX_CONTEXT_BYTES`` (Argo keeps parameters in the workflow object), or
at ``--max-context-bytes`` when it travels as an artifact (an object in the artifact repository: the generator
sets the larger bound); ``evidence`` lists the lines the classifier looks at, each prefixed by where it comes from.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hera_flows.steps.common import StepError, log
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.redact import redact_data
from hera_flows.steps.triage import kfp

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"
NODE_ID_ANNOTATION = "workflows.argoproj.io/node-id"
MAX_CONTEXT_BYTES = 96 * 1024
MAX_EVENTS_PER_POD = 20
MAX_MESSAGE = 500
FAILING_NODE_PHASES = ("Failed", "Error")


CONTRACT = Step(
    name="triage-context",
    entry="hera_flows.steps.triage.context:main",
    summary="the failed run's nodes, pods, Events and bounded log tails from the Kubernetes API, as JSON",
    flags=(
        Flag("tail-lines", "lines requested from the end of each failing container's log", kind=int),
        Flag("limit-bytes", "hard cap on bytes transferred per log", kind=int),
        Flag("keep-bytes", "bytes of the tail kept per container", kind=int),
        Flag("max-pods", "failing pods inspected per workflow", kind=int),
        Flag("max-context-bytes", "cap on the whole context (left out: 96 KiB, what a parameter carries; the "
             "generator sets it when the context is an artifact)", kind=int, optional=True),
        Flag("owner-key", "label or annotation naming the pipeline's owner"),
        Flag("owners", "namespace -> owner when the run names none", form="json", optional=True),
        Flag("kfp-ui-url", "the Kubeflow Pipelines UI, for a link to the run", optional=True),
    ),
    inputs=("target-name", "target-namespace", "target-uid", "case"),
    outputs=("context",),
)
param = CONTRACT.param


def _short(value: Any, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failing_nodes(workflow: dict[str, Any], case: str) -> list[dict[str, Any]]:
    """Pod nodes that failed, or (image-pull case) that are stuck Pending on their image."""
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    out = []
    for node in nodes.values():
        if not isinstance(node, dict) or node.get("type") != "Pod":
            continue
        phase = node.get("phase")
        message = str(node.get("message") or "")
        stuck = phase == "Pending" and message.startswith(("ImagePullBackOff", "ErrImagePull"))
        if phase in FAILING_NODE_PHASES or (case == "image-pull" and stuck):
            out.append({
                "id": node.get("id", ""),
                "name": node.get("name", ""),
                "display_name": node.get("displayName", ""),
                "template": node.get("templateName", ""),
                "phase": phase,
                "message": _short(message),
                "exit_code": str((node.get("outputs") or {}).get("exitCode", "")),
                "started_at": node.get("startedAt", ""),
                "finished_at": node.get("finishedAt", ""),
                "host": node.get("hostNodeName", ""),
            })
    return sorted(out, key=lambda n: (n["started_at"] or "", n["id"]))


def _pod_is_failing(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return True
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state = cs.get("state") or {}
        terminated = state.get("terminated") or {}
        if terminated and terminated.get("exitCode", 0) != 0:
            return True
        if (state.get("waiting") or {}).get("reason") in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
            return True
    return False


def container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    out = []
    for kind, items in (("init", status.get("initContainerStatuses") or []),
                        ("container", status.get("containerStatuses") or [])):
        for cs in items:
            state = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            terminated = state.get("terminated") or last
            waiting = state.get("waiting") or {}
            out.append({
                "name": cs.get("name", ""),
                "kind": kind,
                "image": cs.get("image", ""),
                "restart_count": cs.get("restartCount", 0),
                "terminated_reason": terminated.get("reason", ""),
                "exit_code": terminated.get("exitCode"),
                "terminated_message": _short(terminated.get("message", "")),
                "waiting_reason": waiting.get("reason", ""),
                "waiting_message": _short(waiting.get("message", "")),
            })
    return out


def owner_of(workflow: dict[str, Any], template: dict[str, Any] | None, key: str) -> str:
    for obj in (workflow, template or {}):
        metadata = obj.get("metadata") or {}
        for where in ("annotations", "labels"):
            value = (metadata.get(where) or {}).get(key)
            if value:
                return _short(value, 100)
    return ""


def template_summary(template: dict[str, Any] | None, names: set[str]) -> dict[str, Any]:
    """The failing templates of the WorkflowTemplate: what a fix would change."""
    if template is None:
        return {}
    spec = template.get("spec") or {}
    out: dict[str, Any] = {}
    for tpl in spec.get("templates") or []:
        if not isinstance(tpl, dict) or tpl.get("name") not in names:
            continue
        body = tpl.get("container") or tpl.get("script") or {}
        out[tpl["name"]] = {
            "image": body.get("image", ""),
            "resources": body.get("resources") or {},
            "retry_strategy": tpl.get("retryStrategy") or None,
            "active_deadline_seconds": tpl.get("activeDeadlineSeconds"),
        }
    return out


def build_context(
    reader: Any, namespace: str, name: str, uid: str, case: str, args: argparse.Namespace
) -> dict[str, Any]:
    workflow = reader.workflow(namespace, name)
    if workflow is None:
        raise StepError(f"workflow {namespace}/{name} no longer exists (deleted after the guard ran?)")
    if (workflow.get("metadata") or {}).get("uid") != uid:
        raise StepError(f"workflow {namespace}/{name} was replaced (uid changed) after the guard ran")
    metadata = workflow.get("metadata") or {}
    status = workflow.get("status") or {}
    notes: list[str] = []
    evidence: list[str] = []

    nodes = failing_nodes(workflow, case)
    is_kfp = kfp.is_kfp_run(workflow)
    if is_kfp:
        for node in nodes:  # KFP's Pod is always "executor": the task is its parent DAG node
            node["display_name"] = kfp.task_of(workflow, {"id": node["id"], "displayName": node["display_name"]})
    offloaded = not status.get("nodes") and bool(status.get("offloadNodeStatusVersion"))
    if offloaded:
        notes.append(f"node status is offloaded (offloadNodeStatusVersion {status.get('offloadNodeStatusVersion')}): "
                     "failing steps were found from the workflow's pods instead")
    if status.get("message"):
        evidence.append(f"workflow message: {_short(status['message'])}")
    for node in nodes:
        if node["message"]:
            evidence.append(f"node {node['display_name'] or node['name']}: {node['message']}")
        if node["exit_code"] not in ("", "0"):
            evidence.append(f"node {node['display_name'] or node['name']}: exit code {node['exit_code']}")

    pods = reader.pods(namespace, f"{WORKFLOW_LABEL}={name}")
    by_node = {((p.get("metadata") or {}).get("annotations") or {}).get(NODE_ID_ANNOTATION): p for p in pods}
    chosen: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for node in nodes:
        chosen.append((by_node.get(node["id"]) or {}, node))
    if not nodes:
        chosen = [(p, None) for p in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", ""))
                  if _pod_is_failing(p)]
    if len(chosen) > args.max_pods:
        notes.append(f"{len(chosen)} failing pods; only the first {args.max_pods} were inspected")
        chosen = chosen[: args.max_pods]

    pod_facts: list[dict[str, Any]] = []
    for pod, step_node in chosen:
        pod_name = (pod.get("metadata") or {}).get("name", "")
        label = (step_node or {}).get("display_name") or pod_name
        if not pod_name:
            notes.append(f"the pod of step {label} is gone (pod garbage collection); only the node status is known")
            continue
        statuses = container_statuses(pod)
        for cs in statuses:
            if cs["terminated_reason"] and (cs["exit_code"] not in (0, None) or cs["terminated_reason"] == "OOMKilled"):
                evidence.append(f"pod {label} container {cs['name']}: terminated {cs['terminated_reason']} "
                                f"(exit code {cs['exit_code']})")
            if cs["waiting_reason"]:
                evidence.append(f"pod {label} container {cs['name']}: waiting {cs['waiting_reason']}"
                                + (f": {cs['waiting_message']}" if cs["waiting_message"] else ""))
        events = sorted(reader.events(namespace, pod_name),
                        key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))[-MAX_EVENTS_PER_POD:]
        event_facts = []
        for event in events:
            fact = {"type": event.get("type", ""), "reason": event.get("reason", ""),
                    "message": _short(event.get("message", "")), "count": event.get("count") or 1}
            event_facts.append(fact)
            if fact["type"] == "Warning":
                evidence.append(f"event {label} {fact['reason']}: {fact['message']}")
        pod_status = pod.get("status") or {}
        if pod_status.get("reason"):
            # the verdict on the whole pod, which no container status carries: "Evicted" (node pressure),
            # "Terminated" (graceful node shutdown), "OutOfcpu"/"UnexpectedAdmissionError" (the kubelet's admission)
            evidence.append(f"pod {label}: {pod_status['reason']}: {_short(pod_status.get('message', ''))}")
        for condition in pod_status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                evidence.append(f"pod {label} unschedulable: {_short(condition.get('message', ''))}")
            # who took the pod away (Kubernetes 1.26+, k8s.io/api core/v1 DisruptionTarget): the scheduler's
            # preemption (PreemptionByScheduler), a drain through the Eviction API (EvictionByEvictionAPI: a
            # scale-down, a spot interruption handler), the pod GC after its node was deleted (DeletionByPodGC), the
            # taint manager (DeletionByTaintManager), the kubelet (TerminationByKubelet: node pressure or shutdown)
            if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
                evidence.append(f"pod {label} disrupted ({condition.get('reason', '')}): "
                                f"{_short(condition.get('message', ''))}")
        logs: dict[str, Any] = {}
        for cs in statuses:
            if cs["name"] in ("wait", "init") or not (cs["terminated_reason"] or cs["name"] == "main"):
                continue
            tail = reader.log_tail(namespace, pod_name, cs["name"], tail_lines=args.tail_lines,
                                   limit_bytes=args.limit_bytes, keep_bytes=args.keep_bytes)
            logs[cs["name"]] = {"tail": tail.text, "bytes_read": tail.bytes_read, "truncated": tail.truncated,
                                "error": tail.error}
            if tail.truncated:
                notes.append(f"the log of {label}/{cs['name']} hit the {args.limit_bytes}-byte read limit; "
                             "the tail may not reach the end of the log")
        pod_facts.append({"name": pod_name, "step": label, "node_id": (step_node or {}).get("id", ""),
                          "phase": pod_status.get("phase", ""), "reason": pod_status.get("reason", ""),
                          "message": _short(pod_status.get("message", "")), "containers": statuses,
                          "events": event_facts, "logs": logs})

    template_name = (metadata.get("labels") or {}).get(TEMPLATE_LABEL) or \
        ((workflow.get("spec") or {}).get("workflowTemplateRef") or {}).get("name", "")
    kubeflow: dict[str, Any] | None = None
    if is_kfp:
        kubeflow = kfp.run_facts(workflow)
        kubeflow["url"] = kfp.run_url(args.kfp_ui_url or "", kubeflow["run_id"])
        kubeflow["failing_tasks"] = sorted({n["display_name"] for n in nodes if n["display_name"]} or
                                           {p["step"] for p in pod_facts})
    template = reader.workflow_template(namespace, template_name) if template_name else None
    if template_name and template is None:
        notes.append(f"WorkflowTemplate {template_name} is not in namespace {namespace}")
    failing_templates = {n["template"] for n in nodes if n["template"]} if not is_kfp else set()
    if not failing_templates and template is not None:
        steps = {p["step"] for p in pod_facts}
        failing_templates = {t.get("name") for t in (template.get("spec") or {}).get("templates") or []
                             if isinstance(t, dict) and t.get("name") in steps}
    secret_names = secret_env_names([p for p, _ in chosen], template)
    owner = owner_of(workflow, template, args.owner_key) or str((args.owners or {}).get(namespace) or "")
    context = {
        "pattern": "failure_triage",
        "source": "kubeflow" if is_kfp else "argo",
        "case": case,
        "workflow": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "phase": status.get("phase", ""),
            "message": _short(status.get("message", "")),
            "started_at": status.get("startedAt", ""),
            "finished_at": status.get("finishedAt", ""),
            "template": template_name,
            # what the pipeline is called wherever it runs: the dedupe key, branch and issue title use it
            "pipeline": kubeflow["pipeline"] if kubeflow else template_name,
            "owner": _short(owner, 100),
        },
        "offloaded": offloaded,
        "nodes": nodes,
        "pods": pod_facts,
        "workflow_template": {"name": template_name, "found": template is not None,
                              "templates": template_summary(template, failing_templates)},
        "failing_templates": sorted(failing_templates),
        "evidence": evidence,
        "notes": notes,
    }
    if kubeflow is not None:
        context["kubeflow"] = kubeflow
    # Log tails and messages leave the cluster (agent context, issue bodies): secrets are masked here, including
    # the values of every variable the pods fill from a Secret.
    redacted: dict[str, Any] = redact_data(context, names=secret_names)  # a mapping stays a dict
    return redacted


def secret_env_names(pods: list[dict[str, Any]], template: dict[str, Any] | None) -> list[str]:
    """Names of the environment variables the failing pods (and the WorkflowTemplate's containers) take from
    Secrets (``valueFrom.secretKeyRef``): their values must never appear in what triage publishes."""
    containers: list[Any] = []
    for pod in pods:
        spec = pod.get("spec") or {}
        containers += list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    for tmpl in ((template or {}).get("spec") or {}).get("templates") or []:
        if isinstance(tmpl, dict):
            containers += [tmpl.get("container"), tmpl.get("script"),
                           *(((tmpl.get("containerSet") or {}).get("containers")) or [])]
    names: set[str] = set()
    for container in containers:
        for env in (container or {}).get("env") or [] if isinstance(container, dict) else []:
            if isinstance(env, dict) and isinstance(env.get("name"), str) \
                    and isinstance((env.get("valueFrom") or {}).get("secretKeyRef"), dict):
                names.add(env["name"])
    return sorted(names)


def cap_context(context: dict[str, Any], limit: int = MAX_CONTEXT_BYTES) -> str:
    """JSON within ``limit`` bytes: log tails are shortened (from their start) until it fits."""
    text = json.dumps(context, sort_keys=True, ensure_ascii=False)
    while len(text.encode("utf-8")) > limit:
        tails = [(pod_i, c) for pod_i, pod in enumerate(context["pods"]) for c in pod["logs"]
                 if context["pods"][pod_i]["logs"][c]["tail"]]
        if not tails:
            context["evidence"] = context["evidence"][:50]
            text = json.dumps(context, sort_keys=True, ensure_ascii=False)
            break
        pod_i, c = max(tails, key=lambda t: len(context["pods"][t[0]]["logs"][t[1]]["tail"]))
        entry = context["pods"][pod_i]["logs"][c]
        entry["tail"] = entry["tail"][len(entry["tail"]) // 2:]
        entry["shortened"] = True
        text = json.dumps(context, sort_keys=True, ensure_ascii=False)
    return text


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    name = param("target-name", required=True).strip()
    namespace = param("target-namespace", required=True).strip()
    uid = param("target-uid", required=True).strip()
    case = param("case", "failed").strip() or "failed"
    if case not in ("failed", "image-pull"):
        raise StepError(f"case must be 'failed' or 'image-pull', not {case[:40]!r}")
    from hera_flows.steps.triage.kube import KubeReader

    context = build_context(KubeReader(), namespace, name, uid, case, args)
    text = cap_context(context, args.max_context_bytes or MAX_CONTEXT_BYTES)
    log(f"triage-context: {namespace}/{name}: {len(context['nodes'])} failing node(s), {len(context['pods'])} pod(s) "
        f"inspected, {len(context['evidence'])} evidence line(s), {len(text)} bytes of context")
    CONTRACT.write(args.outputs, context=text)
    return 0
