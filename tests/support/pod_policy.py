"""Our own pod policy gate: what checkov cannot see (its Argo checks read only the workflow-level spec, its
Kubernetes checks skip Argo and Argo Events kinds), checked on every container of every pod we generate.

For each pod: the Pod Security Standard "restricted" profile (effective values, a container setting overriding
the pod's: runAsNonRoot, non-zero runAsUser, seccomp RuntimeDefault/Localhost; per container:
allowPrivilegeEscalation false, capabilities drop ALL and add at most NET_BIND_SERVICE, not privileged; no host
namespaces, hostPath volumes or hostPorts), CPU and memory requests and limits on every container, and an
explicit ServiceAccount that is not ``default``.

Pods found: WorkflowTemplate / CronWorkflow / Workflow templates (container, script, containerSet containers,
initContainers, sidecars; workflow-level pod settings merged with template-level ones), EventSource and Sensor
``spec.template``, and the pod template of plain Kubernetes workloads (Pod, Deployment, Job, CronJob, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECCOMP_OK = ("RuntimeDefault", "Localhost")
HOST_FIELDS = ("hostNetwork", "hostPID", "hostIPC")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclass
class Pod:
    """One pod as the cluster would build it: its pod-level fields and every container in it."""

    where: str
    spec: dict[str, Any]  # pod-level fields: securityContext, serviceAccountName, volumes, hostNetwork, ...
    containers: list[tuple[str, dict[str, Any]]]


def _argo_pods(path: str, spec: dict[str, Any]) -> list[Pod]:
    pods: list[Pod] = []
    for tpl in spec.get("templates", []):
        containers: list[tuple[str, dict[str, Any]]] = []
        if "container" in tpl:
            containers.append((tpl["name"], tpl["container"]))
        if "script" in tpl:
            containers.append((f"{tpl['name']}/script", tpl["script"]))
        for c in tpl.get("containerSet", {}).get("containers", []):
            containers.append((f"{tpl['name']}/{c.get('name')}", c))
        for c in tpl.get("initContainers", []):
            containers.append((f"{tpl['name']}/init/{c.get('name')}", c))
        for c in tpl.get("sidecars", []):
            containers.append((f"{tpl['name']}/sidecar/{c.get('name')}", c))
        if not containers:
            continue  # dag, steps, suspend, resource templates run no pod of ours
        merged = {k: v for k, v in spec.items() if k in ("securityContext", "serviceAccountName", "volumes",
                                                          "hostNetwork", "automountServiceAccountToken")}
        merged["volumes"] = [*spec.get("volumes", []), *tpl.get("volumes", [])]
        for key in ("securityContext", "serviceAccountName", "hostNetwork", "automountServiceAccountToken"):
            if key in tpl:
                merged[key] = tpl[key]
        if "podSpecPatch" in tpl or "podSpecPatch" in spec:
            merged["podSpecPatch"] = tpl.get("podSpecPatch", spec.get("podSpecPatch"))
        pods.append(Pod(f"{path}: template {tpl['name']}", merged, containers))
    return pods


def pods(path: str, doc: dict[str, Any]) -> list[Pod]:
    """Every pod a document makes the cluster run."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind in ("WorkflowTemplate", "Workflow", "ClusterWorkflowTemplate"):
        return _argo_pods(path, spec)
    if kind == "CronWorkflow":
        return _argo_pods(path, spec.get("workflowSpec", {}))
    if kind in ("EventSource", "Sensor"):
        template = spec.get("template") or {}
        containers = [("template.container", template.get("container") or {})]
        containers += [(f"template.initContainers/{c.get('name')}", c) for c in template.get("initContainers", [])]
        return [Pod(f"{path}: {kind} {doc['metadata']['name']}", template, containers)]
    pod_spec: dict[str, Any] | None = None
    if kind == "Pod":
        pod_spec = spec
    elif kind in WORKLOAD_KINDS:
        pod_spec = spec.get("template", {}).get("spec")
    elif kind == "CronJob":
        pod_spec = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if pod_spec is None:
        return []
    containers = [(c.get("name", "?"), c) for c in pod_spec.get("containers", [])]
    containers += [(f"init/{c.get('name')}", c) for c in pod_spec.get("initContainers", [])]
    return [Pod(f"{path}: {kind} {doc['metadata']['name']}", pod_spec, containers)]


def containers(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every container spec of a document, with where it is (for tests that look at commands and env)."""
    return [(where, c) for pod in pods("", doc) for where, c in pod.containers]


def pod_problems(pod: Pod) -> list[str]:
    problems: list[str] = []
    psc = pod.spec.get("securityContext") or {}
    account = pod.spec.get("serviceAccountName")
    if not account or account == "default":
        problems.append(f"{pod.where}: no explicit non-default serviceAccountName (got {account!r})")
    if "podSpecPatch" in pod.spec:
        problems.append(f"{pod.where}: podSpecPatch can override every field checked here")
    for field in HOST_FIELDS:
        if pod.spec.get(field) is True:
            problems.append(f"{pod.where}: {field} is set")
    for volume in pod.spec.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"{pod.where}: volume {volume.get('name')} is a hostPath")
    if not pod.containers:
        problems.append(f"{pod.where}: no containers found")
    for name, c in pod.containers:
        problems += [f"{pod.where}: container {name}: {p}" for p in container_problems(c, psc)]
    return problems


def container_problems(c: dict[str, Any], psc: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    sc = c.get("securityContext") or {}

    def effective(key: str) -> Any:
        return sc[key] if key in sc else psc.get(key)

    if effective("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true (container or pod)")
    if effective("runAsUser") == 0:
        problems.append("runAsUser is 0")
    seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp not in SECCOMP_OK:
        problems.append(f"seccompProfile is {seccomp!r}, not RuntimeDefault (container or pod)")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if sc.get("privileged") is True:
        problems.append("privileged")
    capabilities = sc.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("capabilities do not drop ALL")
    added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
    if added:
        problems.append(f"capabilities add {sorted(added)}")
    if sc.get("procMount") not in (None, "Default"):
        problems.append(f"procMount {sc.get('procMount')}")
    for port in c.get("ports") or []:
        if port.get("hostPort"):
            problems.append(f"hostPort {port['hostPort']}")
    resources = c.get("resources") or {}
    for section in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(resources.get(section) or {})
        if missing:
            problems.append(f"resources.{section} lacks {sorted(missing)}")
    return problems


def problems(path: str, doc: dict[str, Any]) -> list[str]:
    """Every policy violation of one document (empty when it complies or runs no pod)."""
    return [p for pod in pods(path, doc) for p in pod_problems(pod)]
