"""What each generated resource needs from a real cluster, read from the upstream controllers' source.

No cluster runs here, so the needs are encoded as rules over the generated manifests. Every rule cites the upstream
file (and the commit of the copy it was read from) that makes it a need; docs/upstream-facts.md tells the same
facts in prose. A rule returns the violations it finds, one readable line each; an empty list means the output
satisfies it. ``tests/test_cluster_requirements.py`` runs every rule over every output folder and shows, on a
mutated copy, that each rule can fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
ARGO_TOKEN_NAME_ANNOTATION = "workflows.argoproj.io/service-account-token.name"


@dataclass(frozen=True)
class Rule:
    name: str
    need: str  # what the controller or pod needs, in one sentence
    source: str  # upstream repository, file and commit the need was read from
    check: Callable[[Cluster], list[str]]


class Cluster:
    """The generated documents, indexed the way the rules ask questions about them."""

    def __init__(self, documents: Iterable[dict[str, Any]]) -> None:
        self.documents = [d for d in documents if isinstance(d, dict) and d.get("kind")]

    @classmethod
    def from_folders(cls, root: Path, folders: Iterable[str] = ("generated", "eventsources", "sensors")) -> Cluster:
        docs: list[dict[str, Any]] = []
        for folder in folders:
            for path in sorted((root / folder).rglob("*.yaml")):
                docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        return cls(docs)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] == kind]

    def service_account(self, name: str, namespace: str) -> dict[str, Any] | None:
        return next((d for d in self.of_kind("ServiceAccount")
                     if d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace), None)

    def token_automounted(self, name: str, namespace: str) -> bool:
        """Whether a pod of this ServiceAccount gets a token when the pod spec leaves the field unset."""
        account = self.service_account(name, namespace)
        return account is not None and account.get("automountServiceAccountToken", True) is not False

    def allows(self, account: str, account_namespace: str, verb: str, group: str, resource: str,
               namespace: str) -> bool:
        """Whether ``account`` may ``verb`` ``group/resource`` in ``namespace`` through a Role and RoleBinding."""
        roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in self.of_kind("Role")}
        for binding in self.of_kind("RoleBinding"):
            if binding["metadata"].get("namespace") != namespace or binding["roleRef"].get("kind") != "Role":
                continue
            if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account
                       and s.get("namespace", namespace) == account_namespace for s in binding.get("subjects") or []):
                continue
            role = roles.get((namespace, binding["roleRef"]["name"]))
            for rule in (role or {}).get("rules") or []:
                if group in rule.get("apiGroups", []) and resource in rule.get("resources", []) \
                        and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", [])):
                    return True
        return False

    def executor_token_secret(self, account: str, namespace: str) -> bool:
        """A Secret Argo's controller can mount as the executor's token for ``account``."""
        sa = self.service_account(account, namespace) or {}
        names = [s.get("name") for s in sa.get("secrets") or []]
        names.append(((sa.get("metadata") or {}).get("annotations") or {}).get(ARGO_TOKEN_NAME_ANNOTATION))
        names.append(f"{account}.service-account-token")
        wanted = next((n for n in names if n), None)
        for secret in self.of_kind("Secret"):
            meta = secret["metadata"]
            if (meta["name"] == wanted and meta.get("namespace") == namespace
                    and secret.get("type") == TOKEN_SECRET_TYPE
                    and (meta.get("annotations") or {}).get(SA_NAME_ANNOTATION) == account):
                return True
        return False

    def workflow_specs(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(where, namespace, spec) of every WorkflowTemplate and CronWorkflow."""
        specs = [(f"WorkflowTemplate {d['metadata']['name']}", _namespace(d), d["spec"])
                 for d in self.of_kind("WorkflowTemplate")]
        specs += [(f"CronWorkflow {d['metadata']['name']}", _namespace(d), d["spec"]["workflowSpec"])
                  for d in self.of_kind("CronWorkflow")]
        return specs


def _namespace(doc: dict[str, Any]) -> str:
    return doc["metadata"].get("namespace", "default")


def _submit_triggers(sensor: dict[str, Any]) -> list[dict[str, Any]]:
    return [t["template"]["argoWorkflow"] for t in sensor["spec"].get("triggers", [])
            if "argoWorkflow" in t.get("template", {}) and t["template"]["argoWorkflow"].get("operation") == "submit"]


# --------------------------------------------------------------------------------------------------------- rules


def sensor_token(cluster: Cluster) -> list[str]:
    problems = []
    for sensor in cluster.of_kind("Sensor"):
        template = sensor["spec"].get("template") or {}
        account = template.get("serviceAccountName", "default")
        if "automountServiceAccountToken" in template:
            problems.append(f"Sensor {sensor['metadata']['name']}: the pod template has no "
                            "automountServiceAccountToken field; Argo Events ignores or rejects it")
        if not cluster.token_automounted(account, _namespace(sensor)):
            problems.append(f"Sensor {sensor['metadata']['name']}: ServiceAccount {account} does not automount its "
                            "token, so the sensor process exits with 'failed to get kubeconfig'")
    return problems


def sensor_submit_rbac(cluster: Cluster) -> list[str]:
    problems = []
    for sensor in cluster.of_kind("Sensor"):
        account = (sensor["spec"].get("template") or {}).get("serviceAccountName", "default")
        home = _namespace(sensor)
        for trigger in _submit_triggers(sensor):
            workflow = trigger["source"]["resource"]
            target = workflow["metadata"].get("namespace") or home
            needs = [("create", "workflows"), ("list", "workflows")]
            ref = workflow["spec"].get("workflowTemplateRef")
            if ref and not ref.get("clusterScope"):
                needs.append(("get", "workflowtemplates"))
            for verb, resource in needs:
                if not cluster.allows(account, home, verb, "argoproj.io", resource, target):
                    problems.append(f"Sensor {sensor['metadata']['name']}: {account} may not {verb} {resource} in "
                                    f"{target} (needed by the argoWorkflow submit trigger)")
    return problems


def sensor_tmp(cluster: Cluster) -> list[str]:
    problems = []
    for sensor in cluster.of_kind("Sensor"):
        if not _submit_triggers(sensor):
            continue
        template = sensor["spec"].get("template") or {}
        container = template.get("container") or {}
        read_only = (container.get("securityContext") or {}).get("readOnlyRootFilesystem")
        mounts = {m.get("mountPath") for m in container.get("volumeMounts") or []}
        if read_only and "/tmp" not in mounts:
            problems.append(f"Sensor {sensor['metadata']['name']}: read-only root filesystem without a writable "
                            "/tmp; the trigger writes the Workflow to a temporary file before `argo submit`")
    return problems


def resource_event_source(cluster: Cluster) -> list[str]:
    problems = []
    for source in cluster.of_kind("EventSource"):
        resources = source["spec"].get("resource") or {}
        if not resources:
            continue
        account = (source["spec"].get("template") or {}).get("serviceAccountName", "default")
        home = _namespace(source)
        if not cluster.token_automounted(account, home):
            problems.append(f"EventSource {source['metadata']['name']}: ServiceAccount {account} does not automount "
                            "its token; the resource informer cannot reach the API")
        for name, watch in resources.items():
            if not watch.get("namespace"):
                problems.append(f"EventSource {source['metadata']['name']}/{name}: no namespace means a "
                                "cluster-wide watch, which needs a ClusterRole")
                continue
            for verb in ("list", "watch"):
                if not cluster.allows(account, home, verb, watch["group"], watch["resource"], watch["namespace"]):
                    problems.append(f"EventSource {source['metadata']['name']}/{name}: {account} may not {verb} "
                                    f"{watch['resource']} in {watch['namespace']}")
    return problems


def webhook_service(cluster: Cluster) -> list[str]:
    problems = []
    for source in cluster.of_kind("EventSource"):
        hooks = source["spec"].get("webhook") or {}
        if not hooks:
            continue
        ports = {p.get("port") for p in (source["spec"].get("service") or {}).get("ports") or []}
        for name, hook in hooks.items():
            if int(hook["port"]) not in ports:
                problems.append(f"EventSource {source['metadata']['name']}/{name}: port {hook['port']} is not in "
                                "spec.service.ports, so no Service exposes it")
    return problems


def event_source_token_when_needed(cluster: Cluster) -> list[str]:
    problems = []
    for source in cluster.of_kind("EventSource"):
        k8s_election = ((source["metadata"].get("annotations") or {}).get("events.argoproj.io/leader-election")
                        == "k8s")
        persisted = any((c or {}).get("persistence") for c in (source["spec"].get("calendar") or {}).values())
        account = (source["spec"].get("template") or {}).get("serviceAccountName", "default")
        if (k8s_election or persisted) and not cluster.token_automounted(account, _namespace(source)):
            problems.append(f"EventSource {source['metadata']['name']}: Lease leader election or calendar "
                            f"persistence needs a token, but {account} does not automount one")
    return problems


def executor_token(cluster: Cluster) -> list[str]:
    problems = []
    for where, namespace, spec in cluster.workflow_specs():
        account = (spec.get("executor") or {}).get("serviceAccountName", "")
        if spec.get("automountServiceAccountToken") is False and not account:
            problems.append(f"{where}: automountServiceAccountToken is false but executor.serviceAccountName is "
                            "empty; the controller refuses to create the pods")
        if account and not cluster.executor_token_secret(account, namespace):
            problems.append(f"{where}: the controller mounts the executor's token from the Secret "
                            f"{account}.service-account-token (type {TOKEN_SECRET_TYPE}), which is not generated; "
                            "Kubernetes >= 1.24 creates no such Secret by itself")
        if account and not all(cluster.allows(account, namespace, verb, "argoproj.io", "workflowtaskresults",
                                              namespace) for verb in ("create", "patch")):
            problems.append(f"{where}: executor {account} may not create/patch workflowtaskresults")
    return problems


def template_token(cluster: Cluster) -> list[str]:
    problems = []
    for where, namespace, spec in cluster.workflow_specs():
        for template in spec.get("templates", []):
            if template.get("automountServiceAccountToken") is True:
                account = template.get("serviceAccountName") or spec.get("serviceAccountName", "default")
                if not cluster.token_automounted(account, namespace):
                    problems.append(f"{where} template {template['name']}: asks for a token, but Argo leaves the "
                                    f"pod's automountServiceAccountToken unset and ServiceAccount {account} "
                                    "disables automounting, so the step gets no token")
    return problems


def container_set_main(cluster: Cluster) -> list[str]:
    problems = []
    for where, _, spec in cluster.workflow_specs():
        for template in spec.get("templates", []):
            container_set = template.get("containerSet")
            if not container_set:
                continue
            names = [c["name"] for c in container_set.get("containers", [])]
            has_io = template.get("outputs") or (template.get("inputs") or {}).get("artifacts")
            if has_io and "main" not in names:
                problems.append(f"{where} template {template['name']}: outputs need a container named main")
                continue
            main = next((c for c in container_set.get("containers", []) if c["name"] == "main"), None)
            mounts = [m["mountPath"] for m in [*(container_set.get("volumeMounts") or []),
                                               *((main or {}).get("volumeMounts") or [])]]
            for param in (template.get("outputs") or {}).get("parameters", []):
                path = (param.get("valueFrom") or {}).get("path", "")
                if path and not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
                    problems.append(f"{where} template {template['name']}: output {param['name']} ({path}) is not on "
                                    "a volume mounted in main, where the executor reads it")
    return problems


def artifacts(cluster: Cluster) -> list[str]:
    """Key-only artifacts resolve against a repository the output provides (or Argo's default), and every artifact
    path lies where the init and wait containers reach it: on a volume of main (a containerSet: of the whole set,
    so its other containers see the inputs), never the read-only root filesystem."""
    problems = []
    config_maps = {(_namespace(d), d["metadata"]["name"]): d for d in cluster.of_kind("ConfigMap")}
    for where, namespace, spec in cluster.workflow_specs():
        used = False
        for template in spec.get("templates", []):
            declared = [*((template.get("inputs") or {}).get("artifacts") or []),
                        *((template.get("outputs") or {}).get("artifacts") or [])]
            if not declared:
                continue
            used = True
            if "containerSet" in template:
                mounts = [m["mountPath"] for m in template["containerSet"].get("volumeMounts") or []]
            else:
                mounts = [m["mountPath"] for m in (template.get("container") or {}).get("volumeMounts") or []]
            for artifact in declared:
                path = artifact.get("path", "")
                if path and not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
                    problems.append(f"{where} template {template['name']}: artifact {artifact['name']} ({path}) is "
                                    "not on a volume " + ("the whole containerSet mounts" if "containerSet" in template
                                                          else "of main"))
        ref = spec.get("artifactRepositoryRef")
        if used and ref is not None:
            found = config_maps.get((namespace, ref.get("configMap", "artifact-repositories")))
            if found is not None and ref.get("key") not in (found.get("data") or {}):
                problems.append(f"{where}: artifactRepositoryRef key {ref.get('key')!r} is not in ConfigMap "
                                f"{found['metadata']['name']}")
            if found is not None and "s3" not in yaml.safe_load((found.get("data") or {}).get(ref.get("key"), "")
                                                                or "{}"):
                problems.append(f"{where}: the referenced repository is not S3, but the templates use s3 keys")
    return problems


def artifact_gc(cluster: Cluster) -> list[str]:
    """A workflow whose output artifacts are garbage-collected gets a GC pod of Argo's own, running as
    artifactGC.serviceAccountName (else the namespace's ``default``) with its token mounted; that pod lists and
    watches its WorkflowArtifactGCTasks and patches their status."""
    problems = []
    for where, namespace, spec in cluster.workflow_specs():
        strategy = (spec.get("artifactGC") or {}).get("strategy", "")
        outputs = any((t.get("outputs") or {}).get("artifacts") for t in spec.get("templates", []))
        if not outputs or strategy in ("", "Never"):
            continue
        account = spec["artifactGC"].get("serviceAccountName") or "default"
        if account != "default" and cluster.service_account(account, namespace) is None:
            problems.append(f"{where}: artifactGC.serviceAccountName {account} is not generated")
        wanted = [("list", "workflowartifactgctasks"), ("watch", "workflowartifactgctasks"),
                  ("patch", "workflowartifactgctasks/status")]
        missing = [f"{verb} {resource}" for verb, resource in wanted
                   if not cluster.allows(account, namespace, verb, "argoproj.io", resource, namespace)]
        if missing:
            problems.append(f"{where}: the artifact GC pod's account {account} may not {', '.join(missing)}")
    return problems


def _workflow_pod_labels(cluster: Cluster, namespace: str) -> list[dict[str, str]]:
    """The labels each template's pod gets: the workflow's podMetadata, then the template's metadata (addMetadata)."""
    found = []
    for _, spec_namespace, spec in cluster.workflow_specs():
        if spec_namespace != namespace:
            continue
        shared = (spec.get("podMetadata") or {}).get("labels") or {}
        for template in spec.get("templates", []):
            if any(kind in template for kind in ("container", "containerSet", "script", "resource", "data")):
                found.append({**shared, **((template.get("metadata") or {}).get("labels") or {})})
    return found


def network_policy_selectors(cluster: Cluster) -> list[str]:
    """Every NetworkPolicy selects pods that exist: EventSource pods by the controller's labels, workflow pods by
    labels their template's metadata gives them."""
    problems = []
    sources = {d["metadata"]["name"] for d in cluster.of_kind("EventSource")}
    for policy in cluster.of_kind("NetworkPolicy"):
        name = policy["metadata"]["name"]
        labels = (policy["spec"].get("podSelector") or {}).get("matchLabels") or {}
        if not labels:
            problems.append(f"NetworkPolicy {name}: selects every pod in the namespace")
        elif "eventsource-name" in labels or "controller" in labels:
            target = labels.get("eventsource-name")
            if target not in sources or set(labels) - {"eventsource-name", "controller"}:
                problems.append(f"NetworkPolicy {name}: must select EventSource pods by eventsource-name (and "
                                f"controller) only, got {labels}")
        elif not any(labels.items() <= pod.items() for pod in _workflow_pod_labels(cluster, _namespace(policy))):
            problems.append(f"NetworkPolicy {name}: no generated template's pod carries {labels}")
    return problems


def submitter_role(cluster: Cluster) -> list[str]:
    """`argo submit --from workflowtemplate/NAME` (manual runs) as the person bound to hera-flows-submitter."""
    roles = [r for r in cluster.of_kind("Role") if r["metadata"]["name"] == "hera-flows-submitter"]
    if not roles:
        return ["no Role hera-flows-submitter: manual runs (`argo submit --from`) have no documented identity"]
    problems = []
    for role in roles:
        grants = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                  for v in rule["verbs"]}
        for need in (("argoproj.io", "workflowtemplates", "get"), ("argoproj.io", "workflows", "create")):
            if need not in grants:
                problems.append(f"Role hera-flows-submitter in {_namespace(role)}: missing {need[2]} {need[1]}")
    return problems


# What our own steps call, per step (hera_flows/steps/...): (verb, group, resource) in the workflow's namespace.
STEP_NEEDS: dict[str, list[tuple[str, str, str]]] = {
    "guard": [("get", "argoproj.io", "workflows"), ("patch", "argoproj.io", "workflows"),
              *[(v, "coordination.k8s.io", "leases") for v in ("get", "create", "update", "list", "delete")]],
    "claims": [(v, "coordination.k8s.io", "leases") for v in ("get", "list", "update", "delete")],
    "gc-leases": [(v, "coordination.k8s.io", "leases") for v in ("list", "delete")],
}
STEP_OF = {"promotion-guard": "guard", "drift-guard": "guard", "fairness-guard": "guard", "triage-guard": "guard",
           "claims": "claims", "gc-leases": "gc-leases"}


def step_rbac(cluster: Cluster) -> list[str]:
    """Every template that runs one of our API-calling steps runs as an identity allowed what the step calls."""
    problems = []
    for where, namespace, spec in cluster.workflow_specs():
        for template in spec.get("templates", []):
            args = (template.get("container") or {}).get("args") or []
            need = STEP_OF.get(args[1]) if args[:1] == ["step"] and len(args) > 1 else None
            if need is None:
                continue
            account = template.get("serviceAccountName") or spec.get("serviceAccountName", "default")
            for verb, group, resource in STEP_NEEDS[need]:
                if not cluster.allows(account, namespace, verb, group, resource, namespace):
                    problems.append(f"{where} template {template['name']}: {account} may not {verb} {resource}, "
                                    f"which step {args[1]} calls")
    return problems


RULES: list[Rule] = [
    Rule("sensor-token", "A Sensor pod builds its Kubernetes client from the in-cluster config and exits without a "
         "token; its pod template cannot set automountServiceAccountToken, so its ServiceAccount must allow it.",
         "argoproj/argo-events sensors/cmd/start.go@00212a116d9f (Fatalw 'failed to get kubeconfig'); "
         "controllers/sensor/resource.go@ebc7ca7431b7 (copies no automount field); "
         "pkg/apis/sensor/v1alpha1/types.go@b4f5958851cc (Template fields)", sensor_token),
    Rule("sensor-submit-rbac", "The argoWorkflow trigger runs `argo -n NS submit FILE` (kube mode: validation gets the "
         "referenced WorkflowTemplate, then creates the Workflow) and then lists workflows by its labels.",
         "argoproj/argo-events sensors/triggers/argo-workflow/argo-workflow.go@143f8beb81e8; argoproj/argo-workflows "
         "server/workflow/workflow_server.go@fafd2418fb34, workflow/validate/validate.go@1d87edfb7ee4, "
         "pkg/apiclient/argo-kube-client.go@4a5fbe12da53", sensor_submit_rbac),
    Rule("sensor-tmp", "The trigger writes the Workflow with os.CreateTemp(\"\") before `argo submit`: a read-only "
         "root filesystem needs a writable /tmp.",
         "argoproj/argo-events sensors/triggers/argo-workflow/argo-workflow.go@143f8beb81e8", sensor_tmp),
    Rule("resource-event-source", "A resource EventSource's informer lists and watches the resource with a client "
         "built from the pod's token, per watched namespace.",
         "argoproj/argo-events eventsources/sources/resource/start.go@d2ee2b85d51d", resource_event_source),
    Rule("webhook-service", "The EventSource controller creates a Service only from spec.service.ports.",
         "argoproj/argo-events controllers/eventsource/resource.go@0308141a253c", webhook_service),
    Rule("event-source-token", "Webhook and plain calendar EventSources start without a token; Lease leader election "
         "(annotation events.argoproj.io/leader-election: k8s) and calendar persistence need one.",
         "argoproj/argo-events eventsources/cmd/start.go@42e7eae88f1c, common/leaderelection/leaderelection.go"
         "@437fc30b8fd5, pkg/eventsources/sources/calendar/start.go@77cee25cbab2", event_source_token_when_needed),
    Rule("executor-token", "With automountServiceAccountToken false the controller needs executor.serviceAccountName, "
         "mounts that account's token Secret (<sa>.service-account-token unless named otherwise) into init/wait, and "
         "the executor creates and patches WorkflowTaskResults.",
         "argoproj/argo-workflows workflow/controller/workflowpod.go@2166a0c8a90a, workflow/controller/operator.go"
         "@481caa77a554, docs/service-account-secrets.md@441dca8af672, docs/workflow-rbac.md@bb421b759a82",
         executor_token),
    Rule("template-token", "A template's automountServiceAccountToken: true only leaves the pod field unset; the "
         "token then comes from the ServiceAccount's own automount setting.",
         "argoproj/argo-workflows workflow/controller/workflowpod.go@2166a0c8a90a", template_token),
    Rule("container-set-main", "A containerSet's outputs are read only from the container named main, from paths on "
         "volumes mounted there.",
         "argoproj/argo-workflows workflow/validate/validate.go@1d87edfb7ee4, cmd/argoexec/commands/emissary.go"
         "@5c1fb9ff5daa, docs/container-set-template.md@eb00a61e5330", container_set_main),
    Rule("network-policy-selectors", "EventSource pods carry the controller's labels eventsource-name: <name> and "
         "controller: eventsource-controller (owner-name only in newer versions); a workflow pod carries the "
         "workflow's podMetadata labels and its template's metadata.labels.",
         "argoproj/argo-events controllers/eventsource/controller.go@e0f7f9474d93, pkg/reconciler/eventsource/"
         "controller.go@484d85c9ef8c; argoproj/argo-workflows workflow/controller/workflowpod.go@2166a0c8a90a "
         "(addMetadata)", network_policy_selectors),
    Rule("step-rbac", "Our own steps call the API (guards read and label their Workflow and keep Leases; claims and "
         "gc-leases end and delete them): their identity must allow each call.",
         "argoproj/argo-workflows workflow/controller/workflowpod.go@2166a0c8a90a (the template's serviceAccountName "
         "is the pod's); hera_flows/steps/{event_data,run_labels,state,claims,gc}.py for the calls", step_rbac),
    Rule("artifacts", "Key-only artifacts take bucket and credentials from the repository the workflow's "
         "artifactRepositoryRef names (a key of a ConfigMap in its namespace); the init and wait containers load and "
         "save artifacts through main's volumes, and a containerSet's through the volumes of the whole set.",
         "argoproj/argo-workflows workflow/artifactrepositories/artifactrepositories.go@02f5766c, "
         "workflow/executor/executor.go@000d4883 (loadArtifacts, stageArchiveFile), "
         "docs/container-set-template.md@0387c4ed, docs/key-only-artifacts.md@28812b2a", artifacts),
    Rule("artifact-gc", "With artifactGC (a strategy other than Never) the controller adds a finalizer and, at that "
         "strategy's moment, creates a pod running `argoexec artifact delete` as artifactGC.serviceAccountName, token "
         "mounted, which lists and watches its WorkflowArtifactGCTasks and patches their status.",
         "argoproj/argo-workflows workflow/controller/artifact_gc.go@619f4e4e5a05 (createArtifactGCPod, "
         "getArtifactGCPodInfo), manifests/quick-start/base/artifactgc-role.yaml@276959782ebe", artifact_gc),
    Rule("submitter-role", "`argo submit --from workflowtemplate/NAME` builds the Workflow in memory, gets the "
         "WorkflowTemplate to validate it and creates the Workflow.",
         "argoproj/argo-workflows server/workflow/workflow_server.go@fafd2418fb34 (SubmitWorkflow), "
         "cmd/argo/commands/submit.go@e1271ca55986", submitter_role),
]


def violations(cluster: Cluster) -> dict[str, list[str]]:
    return {rule.name: rule.check(cluster) for rule in RULES}
