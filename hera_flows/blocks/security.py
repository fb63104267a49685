"""Pod security and RBAC: every pod passes the Pod Security Standard "restricted", every identity is minimal.

Identities (all namespaced; what each controller needs is encoded, with its upstream source, in
tests/support/cluster_requirements.py):
- ``hera-flows-sensor``: the Sensor pods. A Sensor builds its client from the in-cluster config and exits without
  a token, and its pod template has no ``automountServiceAccountToken`` field, so this ServiceAccount automounts.
  The argoWorkflow trigger runs ``argo submit`` (kube mode: it gets the referenced WorkflowTemplate to validate it,
  then creates the Workflow) and then lists workflows by the labels it added: create + list workflows, get
  workflowtemplates; nothing else.
- ``hera-flows-eventsource``: the EventSource pods of webhook and calendar sources; no API access at all, no token.
- ``hera-flows-workflow``: every workflow pod, and the executor (``executor.serviceAccountName``). No token is
  automounted; Argo's controller mounts this account's token Secret (``hera-flows-workflow.service-account-token``,
  generated here: Kubernetes >= 1.24 creates none) into the init/wait containers only, so the executor can report
  results (workflowtaskresults) and the step containers have no token.
- ``hera-flows-guard``: only the guard steps, which keep replay and cooldown records in Leases and label their own
  Workflow. A template's ``automountServiceAccountToken: true`` only leaves the pod field unset, so the token comes
  from this account's own automount setting: it automounts, and only guard templates use it.
- ``hera-flows-submitter``: a Role (no binding) for the people who start manual runs with
  ``argo submit --from workflowtemplate/NAME``; bind it to their group.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

RUN_AS_USER = 65532  # the distroless "nonroot" uid; the Dockerfile creates the same user

SENSOR_SA = "hera-flows-sensor"
EVENTSOURCE_SA = "hera-flows-eventsource"
WORKFLOW_SA = "hera-flows-workflow"
GUARD_SA = "hera-flows-guard"
SUBMITTER_ROLE = "hera-flows-submitter"
# Accounts whose pods all call the Kubernetes API: their token is automounted (pods of other accounts get none).
TOKEN_ACCOUNTS = (SENSOR_SA, GUARD_SA)

MANAGED_BY = {"app.kubernetes.io/managed-by": "hera-flows", "app.kubernetes.io/part-of": "hera-flows"}

# Guards keep replay, dedupe and cooldown records in Leases (compare-and-swap on resourceVersion).
LEASE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "verbs": ["get", "list", "create", "update", "delete"]},
]
# Guards read their own Workflow (the event is in its annotations, hera_flows/steps/event_data.py) and label it
# with the decision (hera_flows/steps/run_labels.py); only guards may.
LABEL_RUN_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get", "patch"]},
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


def executor_token_secret(account: str, namespace: str) -> dict[str, Any]:
    """The token Secret Argo's controller mounts into the init/wait containers when pods automount no token
    (``<account>.service-account-token``; the token controller fills it for the named account)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{account}.service-account-token", "namespace": namespace, "labels": dict(MANAGED_BY),
                     "annotations": {"kubernetes.io/service-account.name": account}},
        "type": "kubernetes.io/service-account-token",
    }


def submitter_role(namespace: str) -> dict[str, Any]:
    """What ``argo submit --from workflowtemplate/NAME`` (and ``--watch``) needs; bound by the platform team."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": SUBMITTER_ROLE, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "rules": [
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtemplates"], "verbs": ["get", "list"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get", "list", "watch"]},
        ],
    }


def rbac_documents(namespace: str, *, guard_lease_access: bool) -> list[dict[str, Any]]:
    """ServiceAccounts, Roles and RoleBindings for everything hera-flows runs, in a stable order."""
    docs: list[dict[str, Any]] = []
    accounts = [SENSOR_SA, EVENTSOURCE_SA, WORKFLOW_SA, GUARD_SA]
    for name in accounts:
        docs.append(service_account_document(name, namespace, automount=name in TOKEN_ACCOUNTS))
    docs.append(executor_token_secret(WORKFLOW_SA, namespace))
    roles: dict[str, list[dict[str, Any]]] = {
        SENSOR_SA: [
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "list"]},
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
    docs.append(submitter_role(namespace))
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
    """A ServiceAccount. ``automount`` for accounts whose every pod calls the API: neither an Argo Events pod
    template nor an Argo template can turn the token on when the account turns it off."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "automountServiceAccountToken": automount,
    }
