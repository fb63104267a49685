"""The cluster-requirements test (issue 16 item 1): every generated resource gets from the cluster what its
controller needs — tokens, RBAC verbs, Secrets, Services — per the upstream sources each rule cites
(tests/support/cluster_requirements.py; prose in docs/upstream-facts.md).

A mutated copy of the output shows that each rule fails when its need is taken away; the first mutation is the
defect the review found (the Sensor's ServiceAccount with automountServiceAccountToken: false).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.cluster_requirements import RULES, Cluster, violations

OUTPUTS = {"config/flows.yaml": ROOT, "examples/overlay": ROOT / "examples" / "overlay" / "rendered"}


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_every_generated_resource_gets_what_its_controller_needs(output: str) -> None:
    found = violations(Cluster.from_folders(OUTPUTS[output]))
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_every_rule_cites_an_upstream_source() -> None:
    for rule in RULES:
        assert rule.source.startswith("argoproj/"), rule.name
        assert "@" in rule.source and rule.need.endswith("."), rule.name


def _doc(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def _role_rules(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return _doc(docs, "Role", name)["rules"]


def _drop_verb(docs: list[dict[str, Any]], role: str, resource: str, verb: str) -> None:
    for rule in _role_rules(docs, role):
        if resource in rule["resources"] and verb in rule["verbs"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]


def _guard_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = _doc(docs, "WorkflowTemplate", "mlflow-promotion")["spec"]
    return next(t for t in spec["templates"] if t.get("automountServiceAccountToken"))


def _agent_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = _doc(docs, "WorkflowTemplate", "mlflow-promotion")["spec"]
    return next(t for t in spec["templates"] if "containerSet" in t)


MUTATIONS: dict[str, tuple[str, Callable[[list[dict[str, Any]]], None]]] = {
    "the review's finding: the Sensor's account disables its token": (
        "sensor-token", lambda d: _doc(d, "ServiceAccount", "hera-flows-sensor").update(
            automountServiceAccountToken=False)),
    "the Sensor may not list the workflows it submitted": (
        "sensor-submit-rbac", lambda d: _drop_verb(d, "hera-flows-sensor", "workflows", "list")),
    "the Sensor may not get the WorkflowTemplate argo submit validates": (
        "sensor-submit-rbac", lambda d: _drop_verb(d, "hera-flows-sensor", "workflowtemplates", "get")),
    "the Sensor pod has no writable /tmp": (
        "sensor-tmp", lambda d: _doc(d, "Sensor")["spec"]["template"]["container"].update(volumeMounts=[])),
    "the triage EventSource may not watch workflows": (
        "resource-event-source", lambda d: _drop_verb(d, "hera-flows-triage-eventsource-watch", "workflows",
                                                      "watch")),
    "a webhook port without a Service port": (
        "webhook-service", lambda d: _doc(d, "EventSource", "mlflow")["spec"]["service"].update(ports=[])),
    "a Lease leader election without a token": (
        "event-source-token", lambda d: _doc(d, "EventSource", "fairness-schedule")["metadata"].setdefault(
            "annotations", {}).update({"events.argoproj.io/leader-election": "k8s"})),
    "no executor token Secret": (
        "executor-token", lambda d: d.remove(_doc(d, "Secret", "hera-flows-workflow.service-account-token"))),
    "the executor may not patch its task results": (
        "executor-token", lambda d: _drop_verb(d, "hera-flows-workflow", "workflowtaskresults", "patch")),
    "the guard's account disables its token": (
        "template-token", lambda d: _doc(d, "ServiceAccount", "hera-flows-guard").update(
            automountServiceAccountToken=False)),
    "a containerSet whose outputs have no main container": (
        "container-set-main", lambda d: next(c for c in _agent_template(d)["containerSet"]["containers"]
                                             if c["name"] == "main").update(name="publish")),
    "a NetworkPolicy selecting pods by a label the controller does not set": (
        "network-policy-selectors", lambda d: _doc(d, "NetworkPolicy")["spec"]["podSelector"].update(
            matchLabels={"app": "mlflow-eventsource"})),
    "the guard may not read its own Workflow (where the event is)": (
        "step-rbac", lambda d: _drop_verb(d, "hera-flows-guard", "workflows", "get")),
    "the submitter Role cannot create workflows": (
        "submitter-role", lambda d: _drop_verb(d, "hera-flows-submitter", "workflows", "create")),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_rule_fails_when_its_need_is_taken_away(mutation: str) -> None:
    rule, mutate = MUTATIONS[mutation]
    docs = copy.deepcopy(Cluster.from_folders(ROOT).documents)
    mutate(docs)
    found = violations(Cluster(docs))
    assert found[rule], f"{rule} did not notice: {mutation}"
    assert all(not lines for name, lines in found.items() if name != rule), found


def test_an_agent_network_policy_must_select_the_agent_pods() -> None:
    """The overlay turns on the agent egress policy: it selects the label the agent template gives its pod."""
    docs = copy.deepcopy(Cluster.from_folders(OUTPUTS["examples/overlay"]).documents)
    assert not violations(Cluster(docs))["network-policy-selectors"]
    policy = _doc(docs, "NetworkPolicy", "hera-flows-agent-promotion-egress")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"hera-flows.io/agent-pod": "promotion"}
    _agent_template(docs)["metadata"]["labels"].clear()
    assert violations(Cluster(docs))["network-policy-selectors"] == [
        "NetworkPolicy hera-flows-agent-promotion-egress: no generated template's pod carries "
        "{'hera-flows.io/agent-pod': 'promotion'}"]


@pytest.mark.parametrize("template", ["fairness-audit", "failure-triage", "flyte-failure-triage", "drift-remediation"])
@pytest.mark.parametrize("mutation", ["context-off-the-workspace", "wrong-key"])
def test_the_artifact_rule_fails_on_the_overlay_output(mutation: str, template: str) -> None:
    """The overlay configures an artifact repository: every template that hands large results on as artifacts
    passes, and fails when the agent pod's context artifact lands off the workspace the whole set mounts, or the
    reference names no key."""
    docs = copy.deepcopy(Cluster.from_folders(OUTPUTS["examples/overlay"]).documents)
    assert not violations(Cluster(docs))["artifacts"]
    spec = _doc(docs, "WorkflowTemplate", template)["spec"]
    if mutation == "wrong-key":
        spec["artifactRepositoryRef"]["key"] = "minio"
    else:
        agent = next(t for t in spec["templates"] if "containerSet" in t)
        agent["inputs"]["artifacts"][0]["path"] = "/inputs/context"
    found = violations(Cluster(docs))
    assert found["artifacts"] and all(not lines for name, lines in found.items() if name != "artifacts")


def test_the_rules_cover_every_rule() -> None:
    covered = {rule for rule, _ in MUTATIONS.values()} | {"artifacts", "artifact-gc"}  # the overlay tests below
    assert covered == {rule.name for rule in RULES}


@pytest.mark.parametrize("mutation", ["no-watch", "no-status-patch", "account-not-generated"])
def test_the_artifact_gc_rule_fails_on_the_overlay_output(mutation: str) -> None:
    """The overlay configures an artifact repository, so its runs' objects are garbage-collected by Argo's GC pod
    as hera-flows-artifact-gc: the rule passes, and fails when that account loses a verb or does not exist."""
    docs = copy.deepcopy(Cluster.from_folders(OUTPUTS["examples/overlay"]).documents)
    assert not violations(Cluster(docs))["artifact-gc"]
    gc_specs = [d["spec"]["artifactGC"] for d in docs if d["kind"] == "WorkflowTemplate"
                and d["metadata"]["name"] in ("fairness-audit", "failure-triage", "drift-remediation")]
    assert gc_specs and all(s == {"forceFinalizerRemoval": True, "serviceAccountName": "hera-flows-artifact-gc",
                                  "strategy": "OnWorkflowDeletion"} for s in gc_specs)
    if mutation == "no-watch":
        _drop_verb(docs, "hera-flows-artifact-gc", "workflowartifactgctasks", "watch")
    elif mutation == "no-status-patch":
        _drop_verb(docs, "hera-flows-artifact-gc", "workflowartifactgctasks/status", "patch")
    else:
        docs.remove(_doc(docs, "ServiceAccount", "hera-flows-artifact-gc"))
    assert violations(Cluster(docs))["artifact-gc"]


def test_artifact_gc_is_off_without_a_repository_or_when_configured_never() -> None:
    from hera_flows.blocks import artifacts
    from hera_flows.config import load_config

    base = load_config(ROOT / "config" / "flows.yaml")
    assert base.artifacts is None and artifacts.artifact_gc(base) is None and artifacts.gc_rbac_documents(base) == []
    overlay = load_config(ROOT / "config" / "flows.yaml", ROOT / "examples" / "overlay" / "prod.yaml")
    assert overlay.artifacts is not None and artifacts.artifact_gc(overlay) is not None
    never = overlay.model_copy(update={"artifacts": overlay.artifacts.model_copy(update={"gc": "never"})})
    assert artifacts.artifact_gc(never) is None and artifacts.gc_rbac_documents(never) == []
