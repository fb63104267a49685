"""Pod security and RBAC: every pod passes the Pod Security Standard "restricted", every identity is minimal.

Identities (all namespaced):
- ``hera-flows-sensor``: the Sensor pods. The argoWorkflow trigger runs ``argo submit`` (kube mode), which
  validates the referenced WorkflowTemplate before creating the Workflow, so it needs ``get workflowtemplates``
  next to ``create workflows``; nothing else.
- ``hera-flows-eventsource``: the EventSource pods of webhook and calendar sources; no API access at all.
- ``hera-flows-workflow``: every workflow pod. The token is not mounted into the step containers
  (``automountServiceAccountToken: false``); Argo's executor gets it to report results (workflowtaskresults).
- ``hera-flows-guard``: only the guard step, which keeps replay and cooldown records in Leases and labels its
  own Workflow with its decision (``patch workflows``).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

RUN_AS_USER = 65532  # the distroless "nonroot" uid; the Dockerfile creates the same user

SENSOR_SA = "hera-flows-sensor"
EVENTSOURCE_SA = "hera-flows-eventsource"
WORKFLOW_SA = "hera-flows-workflow"
GUARD_SA = "hera-flows-guard"

MANAGED_BY = {"app.kubernetes.io/managed-by": "hera-flows", "app.kubernetes.io/part-of": "hera-flows"}

# Guards keep replay, dedupe and cooldown records in Leases (compare-and-swap on resourceVersion).
LEASE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
]
# Guards label their own Workflow with the decision (hera_flows/steps/run_labels.py); only guards may patch.
LABEL_RUN_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["patch"]},
]

# What Argo's executor needs (Argo Workflows >= 3.4 reports outputs through WorkflowTaskResults).
EXECUTOR_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
]


def container_security_context() -> m.SecurityContext:
    """The container half of PSS "restricted" plus a read-only root filesystem."""
    return m.SecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=m.Capabilities(drop=["ALL"]),
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def pod_security_context() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        fs_group=RUN_AS_USER,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context_dict() -> dict[str, Any]:
    """The same context as a plain dict, for the EventSource/Sensor builders (not Hera models)."""
    return _dump(container_security_context())


def pod_security_context_dict() -> dict[str, Any]:
    return _dump(pod_security_context())


def _dump(model: m.SecurityContext | m.PodSecurityContext) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def checkov_skips(reasons: dict[str, str]) -> dict[str, str]:
    """Annotations that suppress checkov checks on one Kubernetes resource, each with its written reason.

    checkov reads ``checkov.io/skipN: CHECK_ID=reason`` from ``metadata.annotations`` (kubernetes framework). A
    suppression without a reason is refused here; every one in use is listed in docs/security.md ("Static scan").
    """
    annotations: dict[str, str] = {}
    for index, (check, reason) in enumerate(sorted(reasons.items()), start=1):
        if not check.startswith(("CKV_", "CKV2_")) or not reason.strip():
            raise ValueError(f"a checkov suppression needs a check id and a reason, got {check!r}={reason!r}")
        annotations[f"checkov.io/skip{index}"] = f"{check}={' '.join(reason.split())}"
    return annotations


def rbac_documents(namespace: str, *, guard_lease_access: bool) -> list[dict[str, Any]]:
    """ServiceAccounts, Roles and RoleBindings for everything hera-flows runs, in a stable order."""
    docs: list[dict[str, Any]] = []
    accounts = [SENSOR_SA, EVENTSOURCE_SA, WORKFLOW_SA, GUARD_SA]
    for name in accounts:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
                # Tokens are mounted per pod where needed, never by default.
                "automountServiceAccountToken": False,
            }
        )
    roles: dict[str, list[dict[str, Any]]] = {
        SENSOR_SA: [
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtemplates"], "verbs": ["get"]},
        ],
        WORKFLOW_SA: list(EXECUTOR_RULES),
        GUARD_SA: list(EXECUTOR_RULES)
        + (list(LEASE_RULES) if guard_lease_access else [])
        + list(LABEL_RUN_RULES),
    }
    for name, rules in roles.items():
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
                "rules": rules,
            }
        )
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            }
        )
    return docs


def role_documents(
    name: str,
    namespace: str,
    rules: list[dict[str, Any]],
    *,
    service_account: str,
    service_account_namespace: str,
) -> list[dict[str, Any]]:
    """A Role in ``namespace`` and the RoleBinding granting it to a ServiceAccount (possibly of another
    namespace): how a pattern gives one identity narrow access to namespaces it watches."""
    metadata = {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(metadata), "rules": rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(metadata),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": service_account_namespace}],
        },
    ]


def service_account_document(name: str, namespace: str, *, automount: bool = False) -> dict[str, Any]:
    """A ServiceAccount; tokens are mounted per pod where needed unless ``automount`` (pods without that field)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "automountServiceAccountToken": automount,
    }
