"""What pattern 2 generates: schema-valid for Argo Workflows v3.7.18 and v4.1.2 and Argo Events v1.9.11, the
per-model mutex in its list form, one bearer endpoint per tool, the Sensor's filters, retrain mode's templateRef
behind the same guard, the monitor's CronWorkflow schedules, and the guard's narrow extra RBAC."""

from __future__ import annotations

import json

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render
from hera_flows.local.runner import LocalRun
from hera_flows.local.sensor import dependency_passes, route_event
from tests.support import schemas

BASE = "repository: {url: 'https://github.com/acme/ml-gitops'}\n"


def _render(extra: str = "") -> dict[str, dict]:
    cfg = parse_config(BASE + "patterns: {drift: {enabled: true" + extra + "}}\n")
    out = {}
    for path, text in render(cfg).items():
        docs = list(yaml.safe_load_all(text))
        out[path] = docs if len(docs) > 1 else docs[0]
    return out


@pytest.fixture(scope="module")
def pr_mode() -> dict[str, dict]:
    return _render()


def test_everything_validates_against_both_argo_versions(pr_mode) -> None:
    for path in ("generated/workflowtemplates/drift-remediation.yaml", "generated/cronworkflows/drift-monitor.yaml",
                 "eventsources/drift.yaml", "sensors/drift-remediation.yaml"):
        assert schemas.problems(pr_mode[path]) == [], path
    retrain = _render(", mode: retrain, retrain: {workflow_template: train-fraud, template: train, "
                      "parameters: {model-name: model, drifted-feature: feature, score: metric-value}}")
    assert schemas.problems(retrain["generated/workflowtemplates/drift-retrain.yaml"]) == []
    assert "generated/workflowtemplates/drift-remediation.yaml" not in retrain


def test_per_model_mutex_in_the_list_form(pr_mode) -> None:
    spec = pr_mode["generated/workflowtemplates/drift-remediation.yaml"]["spec"]
    assert spec["synchronization"] == {"mutexes": [{"name": "drift-{{workflow.parameters.model}}"}]}
    singular = json.loads(json.dumps(pr_mode["generated/workflowtemplates/drift-remediation.yaml"]))
    singular["spec"]["synchronization"] = {"mutex": {"name": "m"}}
    assert any("v4.1.2" in p for p in schemas.problems(singular))


def test_cron_uses_schedules_list(pr_mode) -> None:
    cron = pr_mode["generated/cronworkflows/drift-monitor.yaml"]
    assert cron["spec"]["schedules"] == ["0 6 * * *"] and "schedule" not in cron["spec"]
    [monitor] = [t for t in cron["spec"]["workflowSpec"]["templates"] if t["name"] == "monitor"]
    env = {e["name"]: e for e in monitor["container"]["env"]}
    assert env["HF_DRIFT_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "drift-webhook", "key": "token",
                                                                 "optional": False}
    assert "--event-url=http://drift-eventsource-svc.mlops-automation.svc:12000/drift/evidently" in \
        monitor["container"]["args"]


def test_one_bearer_endpoint_per_source(pr_mode) -> None:
    webhook = pr_mode["eventsources/drift.yaml"]["spec"]["webhook"]
    assert sorted(webhook) == ["alertmanager", "arize", "evidently", "fiddler", "nannyml", "whylabs"]
    assert all(w["authSecret"] == {"name": "drift-webhook", "key": "token"} for w in webhook.values())
    assert webhook["alertmanager"]["endpoint"] == "/drift/alertmanager"


def test_sensor_rate_limit_at_least_once_and_filters(pr_mode, fixtures_dir) -> None:
    sensor = pr_mode["sensors/drift-remediation.yaml"]
    for trigger in sensor["spec"]["triggers"]:
        assert trigger["atLeastOnce"] is True
        assert trigger["rateLimit"] == {"unit": "Hour", "requestsPerUnit": 20}
    deps = {d["eventName"]: d for d in sensor["spec"]["dependencies"]}
    firing = (fixtures_dir / "alertmanager" / "drift_alert_firing.json").read_text()
    resolved = (fixtures_dir / "alertmanager" / "drift_alert_resolved.json").read_text()
    assert dependency_passes(deps["alertmanager"], f'{{"header":{{}},"body":{firing}}}')[0]
    assert not dependency_passes(deps["alertmanager"], f'{{"header":{{}},"body":{resolved}}}')[0]
    bad_name = firing.replace('"model": "recommendation"', '"model": "../../etc"')
    assert not dependency_passes(deps["alertmanager"], f'{{"header":{{}},"body":{bad_name}}}')[0]

    def evidently(severity: object) -> str:
        return json.dumps({"header": {}, "body": {"kind": "hera-flows/drift", "model": "m", "feature": "f",
                                                  "severity": severity}})

    assert dependency_passes(deps["evidently"], evidently("critical"))[0]
    assert dependency_passes(deps["evidently"], evidently("HIGH"))[0]
    assert not dependency_passes(deps["evidently"], evidently("warning"))[0]
    assert dependency_passes(deps["whylabs"], json.dumps({"body": {"datasetId": "m", "severity": 1}}))[0]
    assert not dependency_passes(deps["whylabs"], json.dumps({"body": {"datasetId": "m", "severity": 3}}))[0]
    workflow, _ = route_event([sensor], "drift-remediation", f'{{"header":{{}},"body":{firing}}}')
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert params["event-source"] == "alertmanager" and params["model"] == "recommendation"
    assert schemas.problems(workflow) == []


def test_only_the_guard_may_patch_workflows(pr_mode) -> None:
    # guards label their own Workflow with their decision (hera_flows/steps/run_labels.py); nobody else patches
    rbac = pr_mode["generated/rbac.yaml"]
    patchers = {d["metadata"]["name"] for d in rbac if d["kind"] == "Role"
                and any("workflows" in r["resources"] and "patch" in r["verbs"] for r in d["rules"])}
    assert "hera-flows-guard" in patchers and patchers <= {"hera-flows-guard", "hera-flows-triage-guard"}
    subjects = {s["name"] for d in rbac if d["kind"] == "RoleBinding" and d["roleRef"]["name"] in patchers
                for s in d["subjects"]}
    assert subjects == patchers  # each guard Role is bound to that guard's own ServiceAccount only
    templates = pr_mode["generated/workflowtemplates/drift-remediation.yaml"]["spec"]["templates"]
    # the guard, and the two steps that end its claims (confirm after review, release on exit), as the guard
    assert sorted(t["name"] for t in templates if t.get("automountServiceAccountToken")) == [
        "confirm-claims", "guard", "release-claims"]
    assert {t["serviceAccountName"] for t in templates if t.get("automountServiceAccountToken")} == {
        "hera-flows-guard"}


def test_retrain_mode_runs_the_team_template_behind_the_guard(tmp_path, monkeypatch) -> None:
    docs = _render(", mode: retrain, retrain: {workflow_template: train-fraud, template: train, "
                   "parameters: {model-name: model, drifted-feature: feature}}")
    template = docs["generated/workflowtemplates/drift-retrain.yaml"]
    [dag] = [t for t in template["spec"]["templates"] if t["name"] == "main"]
    [retrain] = [t for t in dag["dag"]["tasks"] if t["name"] == "retrain"]
    assert retrain["templateRef"] == {"name": "train-fraud", "template": "train"}
    assert retrain["when"] == "'{{tasks.guard.outputs.parameters.decision}}' == 'proceed'"
    assert {p["name"]: p["value"] for p in retrain["arguments"]["parameters"]} == {
        "drifted-feature": "{{tasks.guard.outputs.parameters.feature}}",
        "model-name": "{{tasks.guard.outputs.parameters.model}}"}
    [guard] = [t for t in template["spec"]["templates"] if t["name"] == "guard"]
    assert "--max-open-prs=0" in guard["container"]["args"]
    assert docs["sensors/drift-remediation.yaml"]["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"][
        "resource"]["spec"]["workflowTemplateRef"]["name"] == "drift-retrain"

    # Gating on the local runner: an alert inside the cooldown is skipped and the team's template never runs.
    state = tmp_path / "state"
    body = json.dumps({"kind": "hera-flows/drift", "model": "fraud", "feature": "amount", "severity": "critical",
                       "value": 0.5, "threshold": 0.1, "id": "e1"})
    params = {p["name"]: p.get("value", "") for p in template["spec"]["arguments"]["parameters"]}
    params.update({"event-source": "evidently", "model": "fraud"})
    from hera_flows.steps import naming
    from hera_flows.steps.state import FileLeaseStore

    FileLeaseStore(state, "mlops-automation").acquire_cooldown(
        naming.lease_name("drift-cooldown", naming.dedupe_key("fraud", "amount")), "earlier-run", 21600)
    result = LocalRun(template, params, {"hera-flows-forge": {"token": "t"}}, tmp_path / "run", echo=False,
                      state_dir=state, annotations={"hera-flows.io/event-body": body}).execute()
    assert result.phase == "Succeeded", result.message
    assert result.tasks["guard"].outputs["decision"] == "skipped-cooldown"
    assert result.tasks["retrain"].phase == "Skipped"


def test_the_examples_stay_true() -> None:
    from hera_flows.steps.drift.normalise import normalise
    from hera_flows.steps.drift.smoke import validate_params
    from tests.conftest import ROOT

    examples = ROOT / "examples" / "drift"
    sensors = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "sensors").glob("*.yaml"))]
    for name, source, count in [("event.alertmanager-firing.json", "alertmanager", 2),
                                ("event.alertmanager-data-bug.json", "alertmanager", 1),
                                ("event.evidently-monitor.json", "evidently", 1)]:
        workflow, trigger = route_event(sensors, "drift-remediation", (examples / name).read_text())
        params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
        assert trigger == f"remediate-from-{source}" and params["model"] == "fraud-detector"
        assert "event-body" not in params  # event data travels in an annotation, never in a parameter
        assert len(normalise(source, workflow["metadata"]["annotations"]["hera-flows.io/event-body"])) == count
    params_file = examples / "gitops-repo" / "pipelines" / "fraud-detector" / "params.yaml"
    assert validate_params(params_file.read_text(), 7) == []
    secrets = yaml.safe_load((examples / "secrets.example.yaml").read_text())
    assert "token" in secrets["drift-webhook"] and "token" in secrets["hera-flows-forge"]


def test_an_alert_holding_template_braces_reaches_the_guard_unchanged(tmp_path) -> None:
    """Issue 16 item 13: Alertmanager annotations often hold unrendered templates (``{{ $value }}``), and a sender
    may write ``{{workflow.foo}}`` or ``{{=expr}}``. In a parameter, Argo would substitute or evaluate them (or refuse
    the submission); in the Workflow's annotations they are plain data, byte for byte."""
    from hera_flows.config import parse_config
    from hera_flows.generate import render, write
    from hera_flows.local.runner import run_workflow
    from tests.support.drift_events import alertmanager_event

    generated = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump({
        "repository": {"url": "https://github.com/acme/ml-gitops", "slug": "acme/ml-gitops"},
        "patterns": {"promotion": {"enabled": False}, "drift": {"enabled": True, "monitor": {"enabled": False},
                                                                 "mode": "retrain"}}}))), generated)
    event = json.loads(alertmanager_event("fraud", "amount"))
    event["body"]["alerts"][0]["annotations"]["description"] = (
        "PSI is {{ $value }} for {{workflow.foo}} {{=sprig.env('HOME')}} {{inputs.parameters.x}}")
    data = json.dumps(event, separators=(",", ":"))
    train = tmp_path / "train.yaml"
    train.write_text(yaml.safe_dump({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                                     "metadata": {"name": "train", "namespace": "mlops-automation"},
                                     "spec": {"templates": [{"name": "main", "inputs": {"parameters": [
                                         {"name": "model"}, {"name": "feature"}]},
                                         "container": {"image": "x", "command": ["true"]}}]}}))
    result = run_workflow("drift-retrain", generated=generated, event=data, workdir=tmp_path / "run",
                          state_dir=tmp_path / "state", echo=False, extra_templates=[train])
    assert result.tasks["guard"].phase == "Succeeded", result.tasks["guard"].log[-2000:]
    assert result.tasks["guard"].outputs["decision"] == "proceed"
    [record] = (tmp_path / "state" / "workflows").glob("*.json")
    stored = json.loads(record.read_text())["metadata"]["annotations"]["hera-flows.io/event-body"]
    assert json.loads(stored) == event["body"]  # not substituted, not evaluated
