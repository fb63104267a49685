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
from hera_flows.local.sensor import SensorError, dependency_passes, route_event
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


def test_per_model_mutex_on_each_keys_chain_in_the_list_form(pr_mode) -> None:
    """One remediation per model at a time, across runs and across the keys of one run: a template-level mutex on
    the per-key chain, named after the model the guard mapped and checked (Argo substitutes the chain's inputs into
    its synchronization before taking the lock: workflow/controller/operator.go executeTemplate, processedTmpl ->
    handleSynchronization, argoproj/argo-workflows)."""
    spec = pr_mode["generated/workflowtemplates/drift-remediation.yaml"]["spec"]
    assert "synchronization" not in spec  # the guard itself runs at once: its cooldowns are race-free
    [chain] = [t for t in spec["templates"] if t["name"] == "remediate"]
    assert chain["synchronization"] == {"mutexes": [{"name": "drift-{{inputs.parameters.model}}"}]}
    [main] = [t for t in spec["templates"] if t["name"] == "main"]
    [fan_out] = [t for t in main["dag"]["tasks"] if t["name"] == "remediate"]
    assert fan_out["withParam"] == "{{tasks.guard.outputs.parameters.remediations}}"
    assert {p["name"]: p["value"] for p in fan_out["arguments"]["parameters"]}["model"] == "{{item.model}}"
    assert spec["parallelism"] == 5
    singular = json.loads(json.dumps(pr_mode["generated/workflowtemplates/drift-remediation.yaml"]))
    [chain] = [t for t in singular["spec"]["templates"] if t["name"] == "remediate"]
    chain["synchronization"] = {"mutex": {"name": "m"}}
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
    assert "eventsources/drift-kafka.yaml" not in pr_mode  # no Kafka source configured


def test_the_sensor_drops_only_resolved_groups(pr_mode, fixtures_dir) -> None:
    """Issue 14: an alert with no model label was dropped silently by the Sensor. Now the Sensor passes everything
    but a resolved Alertmanager group; the guard decides (and says why) about models, names and severities."""
    sensor = pr_mode["sensors/drift-remediation.yaml"]
    for trigger in sensor["spec"]["triggers"]:
        assert trigger["atLeastOnce"] is True
        assert trigger["rateLimit"] == {"unit": "Hour", "requestsPerUnit": 20}
    deps = {d["eventName"]: d for d in sensor["spec"]["dependencies"]}
    assert [name for name, d in deps.items() if d.get("filters")] == ["alertmanager"]
    firing = (fixtures_dir / "alertmanager" / "drift_alert_firing.json").read_text()
    resolved = (fixtures_dir / "alertmanager" / "drift_alert_resolved.json").read_text()
    assert dependency_passes(deps["alertmanager"], f'{{"header":{{}},"body":{firing}}}')[0]
    assert not dependency_passes(deps["alertmanager"], f'{{"header":{{}},"body":{resolved}}}')[0]
    no_model = firing.replace('"model": "recommendation", ', "")
    assert no_model != firing and dependency_passes(deps["alertmanager"], f'{{"header":{{}},"body":{no_model}}}')[0]
    event = f'{{"header":{{"X-Test":["1"]}},"body":{no_model}}}'
    workflow, trigger = route_event([sensor], "drift-remediation", event, event_name="alertmanager")
    assert trigger == "remediate-from-alertmanager"
    assert {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]} == {
        "event-source": "alertmanager"}  # nothing from the event travels in a parameter
    annotations = workflow["metadata"]["annotations"]
    assert json.loads(annotations["hera-flows.io/event-body"]) == json.loads(no_model)
    assert json.loads(annotations["hera-flows.io/event-headers"]) == {"X-Test": ["1"]}
    assert annotations["hera-flows.io/event-id"] == "local"
    assert schemas.problems(workflow) == []
    with pytest.raises(SensorError, match="passes the filters of several triggers"):
        route_event([sensor], "drift-remediation", event)  # which endpoint received it? a real Sensor knows


KAFKA = (", sources: [alertmanager, {name: ml-drift, kind: kafka, topic: ml.drift, brokers: ['kafka-0:9092', "
         "'kafka-1:9092'], shape: alibi-detect, consumer_group: drift-ci, start_from_oldest: true, "
         "tls: {ca_cert: {name: kafka-tls, key: ca.crt}, client_cert: {name: kafka-tls, key: tls.crt}, "
         "client_key: {name: kafka-tls, key: tls.key}}, sasl: {mechanism: SCRAM-SHA-512, "
         "user: {name: kafka-user, key: user}, password: {name: kafka-user, key: password}}, kafka_version: 3.6.0, "
         "mapping: {vars: {model: income, features: [age, workclass, education, hours]}}}]")


def test_a_kafka_source_is_an_argo_events_kafka_eventsource() -> None:
    """Issue 14 item 2: topic, brokers, TLS/SASL Secret references and the consumer group, validated strictly
    against the Argo Events v1.9.11 schema; jsonBody so the record's JSON reaches the guard as JSON. What Argo
    Events requires beyond the schema (pkg/eventsources/sources/kafka/validate.go, argoproj/argo-events): url,
    topic, and a consumer group or a partition; TLS with a CA or a client pair (ValidateTLSConfig)."""
    docs = _render(KAFKA)
    source = docs["eventsources/drift-kafka.yaml"]
    assert schemas.problems(source) == []
    assert sorted(docs["eventsources/drift.yaml"]["spec"]["webhook"]) == ["alertmanager"]
    kafka = source["spec"]["kafka"]["ml-drift"]
    assert kafka["url"] == "kafka-0:9092,kafka-1:9092" and kafka["topic"] == "ml.drift" and kafka["jsonBody"]
    assert kafka["consumerGroup"] == {"groupName": "drift-ci", "oldest": True, "rebalanceStrategy": "range"}
    assert kafka["tls"] == {"caCertSecret": {"name": "kafka-tls", "key": "ca.crt"},
                            "clientCertSecret": {"name": "kafka-tls", "key": "tls.crt"},
                            "clientKeySecret": {"name": "kafka-tls", "key": "tls.key"}}
    assert kafka["sasl"]["mechanism"] == "SCRAM-SHA-512" and kafka["version"] == "3.6.0"
    assert "service" not in source["spec"]  # it connects out to the brokers; nothing connects to it
    sensor = docs["sensors/drift-remediation.yaml"]
    assert schemas.problems(sensor) == []
    [dependency] = [d for d in sensor["spec"]["dependencies"] if d["eventName"] == "ml-drift"]
    assert dependency["eventSourceName"] == "drift-kafka" and "filters" not in dependency
    [trigger] = [t for t in sensor["spec"]["triggers"] if t["template"]["conditions"] == dependency["name"]]
    sources = {(m["src"].get("dataKey") or "context:" + m["src"]["contextKey"]): m["dest"]
               for m in trigger["template"]["argoWorkflow"]["parameters"]}
    assert sources == {"body": "metadata.annotations.hera-flows\\.io/event-body",
                       "context:id": "metadata.annotations.hera-flows\\.io/event-id",
                       "headers": "metadata.annotations.hera-flows\\.io/event-headers",
                       "topic": "metadata.annotations.hera-flows\\.io/event-topic",
                       "key": "metadata.annotations.hera-flows\\.io/event-key"}


@pytest.mark.parametrize(("extra", "message"), [
    (", sources: [{name: k, kind: kafka, shape: alibi-detect, topic: t}]", "kind kafka needs topic and brokers"),
    (", sources: [{name: k, kind: kafka, shape: alibi-detect, topic: t, brokers: ['b:9092'], "
     "tls: {client_cert: {name: s, key: c}}}]", "client_cert and client_key go together"),
    (", sources: [{name: k, kind: kafka, shape: alibi-detect, topic: t, brokers: ['b:9092'], tls: {}}]",
     "a CA certificate, a client certificate and key, or both"),
    (", sources: [{name: k, shape: alibi-detect, topic: t}]", "are for kind kafka"),
    (", sources: [{name: my-monitor}]", "is not a named tool"),
    (", sources: [{name: my-monitor, shape: custom, mapping: {fields: {feature: body.f}}}]",
     "fields.model is required"),
    (", sources: [{name: a, shape: custom, mapping: {fields: {model: 'body.m ?? '}}}]",
     "mapping: fields.model: expected a value at character 11 (found the end)"),
    (", sources: [alertmanager, {name: alertmanager, shape: alertmanager}]", "names must be unique: alertmanager"),
    (", sources: [alertmanager], webhook: {sources: [evidently]}", "webhook.sources is its older spelling"),
])
def test_a_bad_source_is_one_line_naming_it(extra: str, message: str) -> None:
    from hera_flows.config import ConfigError

    with pytest.raises(ConfigError) as excinfo:
        _render(extra)
    assert any(message in line for line in excinfo.value.problems), excinfo.value.problems


def test_the_older_webhook_sources_spelling_still_works() -> None:
    docs = _render(", webhook: {sources: [alertmanager, evidently]}")
    assert sorted(docs["eventsources/drift.yaml"]["spec"]["webhook"]) == ["alertmanager", "evidently"]


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


def test_retrain_mode_runs_the_team_template_behind_the_guard_per_key(tmp_path, monkeypatch) -> None:
    docs = _render(", mode: retrain, retrain: {workflow_template: train-fraud, template: train, "
                   "parameters: {model-name: model, drifted-feature: feature}}")
    template = docs["generated/workflowtemplates/drift-retrain.yaml"]
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    [retrain] = [t for t in templates["main"]["dag"]["tasks"] if t["name"] == "retrain"]
    assert retrain["template"] == "retrain-key"
    assert retrain["withParam"] == "{{tasks.guard.outputs.parameters.remediations}}"
    assert retrain["when"] == "'{{tasks.guard.outputs.parameters.decision}}' == 'proceed'"
    chain = templates["retrain-key"]
    assert chain["synchronization"] == {"mutexes": [{"name": "drift-{{inputs.parameters.model}}"}]}
    train, confirm = chain["dag"]["tasks"]
    assert train["templateRef"] == {"name": "train-fraud", "template": "train"}
    assert {p["name"]: p["value"] for p in train["arguments"]["parameters"]} == {
        "drifted-feature": "{{inputs.parameters.feature}}", "model-name": "{{inputs.parameters.model}}"}
    assert confirm["depends"] == "train.Succeeded"
    assert {p["name"]: p["value"] for p in confirm["arguments"]["parameters"]}["claims"] == \
        "{{inputs.parameters.claims}}"  # this key's cooldown only: another key's training may still fail
    assert "--max-open-prs=0" in templates["guard"]["container"]["args"]
    assert docs["sensors/drift-remediation.yaml"]["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"][
        "resource"]["spec"]["workflowTemplateRef"]["name"] == "drift-retrain"

    # Gating on the local runner: an alert inside the cooldown is skipped and the team's template never runs.
    state = tmp_path / "state"
    body = json.dumps({"kind": "hera-flows/drift", "model": "fraud", "feature": "amount", "severity": "critical",
                       "value": 0.5, "threshold": 0.1, "id": "e1"})
    params = {p["name"]: p.get("value", "") for p in template["spec"]["arguments"]["parameters"]}
    params.update({"event-source": "evidently"})
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
                                ("event.alertmanager-group.json", "alertmanager", 3),
                                ("event.alertmanager-model-level.json", "alertmanager", 1),
                                ("event.alertmanager-data-bug.json", "alertmanager", 1),
                                ("event.evidently-monitor.json", "evidently", 1)]:
        workflow, trigger = route_event(sensors, "drift-remediation", (examples / name).read_text(),
                                        event_name=source)
        params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
        assert trigger == f"remediate-from-{source}" and params == {"event-source": source}
        # event data travels in annotations, never in a parameter
        events = normalise(source, workflow["metadata"]["annotations"]["hera-flows.io/event-body"])
        assert len(events) == count
        if "model-level" in name:
            assert [e.key for e in events] == [("fraud-detector", "*")]
        if "group" in name:
            assert {e.severity for e in events} <= {"critical", "high"} and len({e.key for e in events}) == 3
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
                          state_dir=tmp_path / "state", echo=False, extra_templates=[train], event_name="alertmanager")
    assert result.tasks["guard"].phase == "Succeeded", result.tasks["guard"].log[-2000:]
    assert result.tasks["guard"].outputs["decision"] == "proceed"
    # the description reaches the key's event (a detail shown in the PR) with its braces defused
    [item] = json.loads(result.tasks["guard"].outputs["remediations"])
    description = json.loads(item["event"])["details"]["description"]
    assert "{{" not in description and "$value" in description
    [record] = (tmp_path / "state" / "workflows").glob("*.json")
    stored = json.loads(record.read_text())["metadata"]["annotations"]["hera-flows.io/event-body"]
    assert json.loads(stored) == event["body"]  # not substituted, not evaluated
