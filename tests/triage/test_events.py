"""The `workflow-failures` EventSource and the `failure-triage` Sensor: strict schema validation, which workflow
objects the label selector and field filters deliver (local evaluator of Argo Events' resource source), what the
Sensor passes on, and that hera-flows never triggers triage of its own workflows."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render
from hera_flows.local import eventsource as es
from hera_flows.local.sensor import route_event
from hera_flows.patterns import failure_triage
from hera_flows.steps.triage.guard import decide
from tests.support import schemas
from tests.support.settings import triage_options

CONFIG = """
repository: {url: https://github.com/acme/ml-pipelines}
patterns:
  failure_triage:
    enabled: true
    namespaces: [ml-training, ml-pipelines]
"""


@pytest.fixture(scope="module")
def manifests() -> dict[str, Any]:
    files = render(parse_config(CONFIG))
    return {
        "event_source": yaml.safe_load(files["eventsources/workflow-failures.yaml"]),
        "sensor": yaml.safe_load(files["sensors/failure-triage.yaml"]),
        "template": yaml.safe_load(files["generated/workflowtemplates/failure-triage.yaml"]),
        "rbac": list(yaml.safe_load_all(files["generated/rbac.yaml"])),
    }


def load(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / "argo-workflows" / name).read_text())


def opted_in(workflow: dict[str, Any]) -> dict[str, Any]:
    workflow = copy.deepcopy(workflow)
    workflow["metadata"]["labels"]["mlops.hera-flows/triage"] = "enabled"
    return workflow


# --- schema ----------------------------------------------------------------------------------------------------


def test_event_source_and_sensor_validate_strictly(manifests) -> None:
    assert schemas.problems(manifests["event_source"]) == []
    assert schemas.problems(manifests["sensor"]) == []
    for trigger in manifests["sensor"]["spec"]["triggers"]:
        assert schemas.problems(trigger["template"]["argoWorkflow"]["source"]["resource"]) == []


def test_strict_validation_catches_a_nested_group_version_resource(manifests) -> None:
    broken = copy.deepcopy(manifests["event_source"])
    entry = broken["spec"]["resource"]["failed-ml-training"]
    entry["groupVersionResource"] = {k: entry.pop(k) for k in ("group", "version", "resource")}
    assert any("groupVersionResource" in p for p in schemas.problems(broken))


def test_every_filter_has_an_explicit_operation_and_every_namespace_its_own_watch(manifests) -> None:
    resource = manifests["event_source"]["spec"]["resource"]
    assert set(resource) == {"failed-ml-training", "image-pull-ml-training", "failed-ml-pipelines",
                             "image-pull-ml-pipelines"}
    for name, spec in resource.items():
        assert spec["namespace"] in ("ml-training", "ml-pipelines"), name
        for selector in [*spec["filter"]["labels"], *spec["filter"].get("fields", [])]:
            assert selector["operation"], (name, selector)
    assert resource["failed-ml-training"]["eventTypes"] == ["ADD", "UPDATE"]
    assert resource["image-pull-ml-training"]["eventTypes"] == ["UPDATE"]
    assert manifests["event_source"]["spec"]["template"]["serviceAccountName"] == failure_triage.EVENTSOURCE_SA


# --- the label selector evaluator ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "labels", "expected"),
    [
        ("==", "a", {"k": "a"}, True), ("==", "a", {}, False), ("=", "a", {"k": "b"}, False),
        ("!=", "a", {"k": "a"}, False), ("!=", "a", {}, True), ("!=", "a", {"k": "b"}, True),
        ("in", "a,b", {"k": "b"}, True), ("in", "a,b", {}, False),
        ("notin", "a,b", {"k": "a"}, False), ("notin", "a,b", {}, True),
        ("exists", "", {"k": ""}, True), ("exists", "", {}, False),
        ("!", "", {}, True), ("!", "", {"k": "x"}, False),
        ("gt", "3", {"k": "4"}, True), ("gt", "3", {"k": "x"}, False), ("lt", "3", {}, False),
    ],
)
def test_label_requirements_follow_apimachinery(op: str, value: str, labels: dict, expected: bool) -> None:
    assert es.requirement_matches({"key": "k", "operation": op, "value": value}, labels) is expected


def test_field_filters_need_an_operation_and_an_existing_path() -> None:
    obj = {"status": {"conditions": [{"type": "PodRunning", "status": "False"}], "phase": "Running"}}
    key = 'status.conditions.#(type=="PodRunning").status'
    assert es.fields_pass([{"key": key, "operation": "==", "value": "^False$"}], obj)
    # upstream-facts#events-resource-filters
    assert not es.fields_pass([{"key": key, "operation": "", "value": "^False$"}], obj)
    assert not es.fields_pass([{"key": key, "operation": "!=", "value": "^False$"}], obj)
    assert not es.fields_pass([{"key": "status.nope", "operation": "!=", "value": "x"}], obj)
    assert es.fields_pass([{"key": "status.phase", "operation": "==", "value": "unn"}], obj)  # unanchored


# --- delivery ----------------------------------------------------------------------------------------------------


def test_a_failed_opted_in_workflow_is_delivered_on_add_and_update(manifests, fixtures_dir: Path) -> None:
    workflow = load(fixtures_dir, "workflow_failed_oom.json")  # ml-training, opted in
    for event_type in ("ADD", "UPDATE"):
        assert es.delivering_events(manifests["event_source"], workflow, event_type) == ["failed-ml-training"]
    assert es.delivering_events(manifests["event_source"], workflow, "DELETE") == []


def test_a_workflow_that_did_not_opt_in_is_not_delivered(manifests, fixtures_dir: Path) -> None:
    event = json.loads((fixtures_dir / "argo-events" / "resource_workflow_failed.json").read_text())
    assert es.delivering_events(manifests["event_source"], event["body"], "UPDATE") == []
    assert es.delivering_events(manifests["event_source"], opted_in(event["body"]), "UPDATE") == \
        ["failed-ml-pipelines"]


def test_a_workflow_in_another_namespace_is_not_delivered(manifests, fixtures_dir: Path) -> None:
    workflow = load(fixtures_dir, "workflow_failed_oom.json")
    workflow["metadata"]["namespace"] = "default"
    assert es.delivering_events(manifests["event_source"], workflow, "ADD") == []


def test_a_running_workflow_stuck_on_its_image_is_delivered_on_update_only(manifests, fixtures_dir: Path) -> None:
    workflow = opted_in(load(fixtures_dir, "workflow_running_imagepullbackoff.json"))
    assert es.delivering_events(manifests["event_source"], workflow, "UPDATE") == ["image-pull-ml-pipelines"]
    assert es.delivering_events(manifests["event_source"], workflow, "ADD") == []
    running = copy.deepcopy(workflow)
    running["status"]["conditions"][0]["status"] = "True"  # a pod runs: no UPDATE storm from healthy runs
    assert es.delivering_events(manifests["event_source"], running, "UPDATE") == []


def test_the_sensor_passes_name_namespace_and_uid_only(manifests, fixtures_dir: Path) -> None:
    workflow = load(fixtures_dir, "workflow_failed_oom.json")
    spec = manifests["event_source"]["spec"]["resource"]["failed-ml-training"]
    data = es.event_data(workflow, "ADD", spec)
    submitted, trigger = route_event([manifests["sensor"]], "failure-triage", data)
    assert trigger == "triage-failed-ml-training"
    params = {p["name"]: p["value"] for p in submitted["spec"]["arguments"]["parameters"]}
    assert params == {"target-name": "recommender-train-8xk2p", "target-namespace": "ml-training",
                      "target-uid": "3f6c1a52-8d0e-4f43-9b7e-0c5a3e8e1d21", "trigger": "failed"}
    for trigger in manifests["sensor"]["spec"]["triggers"]:
        assert trigger["rateLimit"]["requestsPerUnit"] >= 1 and trigger["atLeastOnce"] is True
        assert {m["src"]["dataKey"] for m in trigger["template"]["argoWorkflow"]["parameters"]} == \
            {"body.metadata.name", "body.metadata.namespace", "body.metadata.uid"}


def test_the_sensor_routes_an_image_pull_update(manifests, fixtures_dir: Path) -> None:
    workflow = opted_in(load(fixtures_dir, "workflow_running_imagepullbackoff.json"))
    spec = manifests["event_source"]["spec"]["resource"]["image-pull-ml-pipelines"]
    submitted, trigger = route_event([manifests["sensor"]], "failure-triage", es.event_data(workflow, "UPDATE", spec))
    assert trigger == "triage-image-pull-ml-pipelines"
    assert submitted["spec"]["arguments"]["parameters"][3] == {"name": "trigger", "value": "image-pull"}


# --- never triage ourselves -------------------------------------------------------------------------------------


def _failed_triage_run(manifests) -> dict[str, Any]:
    """A failed `failure-triage` Workflow as the controller would show it: the labels come from the generated
    template's workflowMetadata (and the Sensor's submitted Workflow), in a watched namespace."""
    template = manifests["template"]
    trigger = manifests["sensor"]["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]
    labels = {**template["spec"]["workflowMetadata"]["labels"], **trigger["metadata"]["labels"],
              "workflows.argoproj.io/workflow-template": template["metadata"]["name"],
              "workflows.argoproj.io/phase": "Failed", "workflows.argoproj.io/completed": "true",
              # even if someone opts it in by hand
              "mlops.hera-flows/triage": "enabled"}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "failure-triage-7vx2q", "namespace": "ml-training",
                     "uid": "0b7c2f4e-1111-4c8e-9f00-2d7b5f1c4e88", "labels": labels},
        "spec": {"workflowTemplateRef": {"name": "failure-triage"}},
        "status": {"phase": "Failed", "finishedAt": "2026-11-22T09:00:00Z", "nodes": {
            "failure-triage-7vx2q-1": {"id": "failure-triage-7vx2q-1", "type": "Pod", "phase": "Failed",
                                       "displayName": "context", "templateName": "context",
                                       "message": "main: OOMKilled (exit code 137)"}}},
    }


def test_a_failed_triage_run_is_filtered_out_by_the_event_source(manifests) -> None:
    run = _failed_triage_run(manifests)
    for event_type in ("ADD", "UPDATE", "DELETE"):
        assert es.delivering_events(manifests["event_source"], run, event_type) == []
    # each exclusion holds on its own (defence in depth)
    for key in ("app.kubernetes.io/managed-by", "hera-flows.io/pattern"):
        partial = copy.deepcopy(run)
        del partial["metadata"]["labels"][key]
        assert es.delivering_events(manifests["event_source"], partial, "ADD") == [], key


def test_a_failed_triage_run_is_refused_by_the_guard(manifests) -> None:
    run = _failed_triage_run(manifests)
    decision = decide(run, uid=run["metadata"]["uid"], opt_in={"mlops.hera-flows/triage": "enabled"},
                      grace_seconds=600, max_age_seconds=10**9, now=1.8e9)
    assert decision.decision == "skip" and decision.reason.startswith("refused:")


# --- RBAC --------------------------------------------------------------------------------------------------------


def test_rbac_is_namespaced_and_least_privilege(manifests) -> None:
    docs = [d for d in manifests["rbac"] if "triage" in d["metadata"]["name"]]
    assert all(schemas.problems(d) == [] for d in docs)
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["rules"] for d in docs if d["kind"] == "Role"}
    verbs = {(ns, name): {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
             for (ns, name), rules in roles.items()}
    for ns in ("ml-training", "ml-pipelines"):
        assert verbs[(ns, "hera-flows-triage-eventsource-watch")] == {("workflows", "list"), ("workflows", "watch")}
        assert verbs[(ns, "hera-flows-triage-guard-read")] == {("workflows", "get")}
        assert verbs[(ns, "hera-flows-triage-context-read")] == {
            (r, v) for r in ("workflows", "workflowtemplates", "pods", "events") for v in ("get", "list")
        } | {("pods/log", "get")}
    assert ("leases", "create") in verbs[("mlops-automation", "hera-flows-triage-guard")]
    assert not any(v in ("create", "update", "patch", "delete") for (ns, _), vs in verbs.items()
                   if ns != "mlops-automation" for _, v in vs)
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    assert accounts["hera-flows-triage-eventsource"]["automountServiceAccountToken"] is True
    # Argo leaves a token-asking template's pod field unset, so the account itself must automount
    # (tests/support/cluster_requirements.py, rule template-token); only the context and guard templates use them.
    assert accounts["hera-flows-triage-context"]["automountServiceAccountToken"] is True
    assert accounts["hera-flows-triage-guard"]["automountServiceAccountToken"] is True


def test_only_guard_and_context_get_a_token(manifests) -> None:
    with_token = {t["name"]: t.get("serviceAccountName") for t in manifests["template"]["spec"]["templates"]
                  if t.get("automountServiceAccountToken")}
    assert with_token == {"guard": failure_triage.GUARD_SA, "context": failure_triage.CONTEXT_SA,
                          "confirm-claims": failure_triage.GUARD_SA, "release-claims": failure_triage.GUARD_SA}


# --- the examples and the committed manifests ---------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "triage"


@pytest.mark.parametrize(("name", "trigger", "case"), [
    ("event.workflow-failed-oom.json", "triage-failed-ml-training", "failed"),
    ("event.workflow-image-pull.json", "triage-image-pull-ml-training", "image-pull"),
])
def test_the_example_events_are_delivered_and_routed_by_the_committed_manifests(name, trigger, case) -> None:
    root = EXAMPLES.parent.parent
    event_source = yaml.safe_load((root / "eventsources" / "workflow-failures.yaml").read_text())
    sensors = [yaml.safe_load(p.read_text()) for p in sorted((root / "sensors").glob("*.yaml"))]
    data = (EXAMPLES / name).read_text()
    event = json.loads(data)
    assert es.delivering_events(event_source, event["body"], event["type"]) == [f"{case}-ml-training"]
    submitted, routed = route_event(sensors, "failure-triage", data, event_sources=[event_source])
    assert routed == trigger
    assert submitted["spec"]["arguments"]["parameters"][2]["value"] == event["body"]["metadata"]["uid"]


def test_the_example_oom_fixes_the_example_training_pipeline(tmp_path: Path) -> None:
    from hera_flows.steps.triage import smoke
    from hera_flows.steps.triage.classify import classify
    from hera_flows.steps.triage.context import failing_nodes
    from hera_flows.steps.triage.editor import triage

    source = (EXAMPLES.parent / "training" / "fraud-detector-training.yaml").read_text()
    repo = tmp_path / "workspace" / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pipelines" / "fraud-detector-training.yaml").write_text(source)
    workflow = json.loads((EXAMPLES / "event.workflow-failed-oom.json").read_text())["body"]
    nodes = failing_nodes(workflow, "failed")
    context = {"pattern": "failure_triage", "evidence": [f"node {n['display_name']}: {n['message']}" for n in nodes],
               "pods": [], "failing_templates": [n["template"] for n in nodes],
               "workflow": {"name": workflow["metadata"]["name"], "namespace": "ml-training",
                            "template": "fraud-detector-training", "owner": "@acme/fraud-ml"}}
    context["classification"] = classify(context).as_dict()
    summary = triage(repo, context, triage_options())
    changed = (repo / "pipelines" / "fraud-detector-training.yaml").read_text()
    assert "6Gi" in summary and "cc @acme/fraud-ml" in summary
    train = next(t for t in yaml.safe_load(changed)["spec"]["templates"] if t["name"] == "train")
    assert train["container"]["resources"]["limits"]["memory"] == "6Gi"
    assert len([line for line in changed.splitlines() if line not in source.splitlines()]) == 1
    assert smoke.check_files({"pipelines/fraud-detector-training.yaml": changed})[0] == "passed"
