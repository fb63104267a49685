"""Flyte failures reach triage through a bearer-authenticated webhook: the event shapes FlyteAdmin publishes
(flyteorg/flyte v1.16.8; the shared fixture ``flyte/cloudevent_v1_kafka_workflow_failed.json`` and its README),
checked against the official flyteidl 1.16.8 protos, normalised, guarded and turned into the classifier's context;
and end to end through the local runner to an issue for the owner."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import RunResult, run_workflow
from hera_flows.local.sensor import SensorError
from hera_flows.steps.triage import flyte
from hera_flows.steps.triage.classify import classify
from hera_flows.steps.triage.flyte_context import build_context
from hera_flows.steps.triage.flyte_guard import decide, occurred
from tests.support import schemas

BASE = {"repository": {"url": "https://github.com/acme/ml-gitops", "slug": "acme/ml-gitops"}}
NOW = occurred("2026-11-22T02:50:00Z").timestamp()  # type: ignore[union-attr]


@pytest.fixture
def record(fixtures_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixtures_dir / "flyte" / "cloudevent_v1_kafka_workflow_failed.json").read_text())
    return data


def v2_body(v1: dict[str, Any], *, enriched: bool = True) -> dict[str, Any]:
    """The same failure as cloudEventVersion v2 writes it (flyteidl.event.CloudEventWorkflowExecution)."""
    body: dict[str, Any] = {"rawEvent": copy.deepcopy(v1["event"])}
    if enriched:  # eventsPublisher.enrichAllWorkflowEventTypes: true
        body["launchPlanId"] = {"resourceType": "LAUNCH_PLAN", "project": "flytesnacks", "domain": "development",
                                "name": "churn.training.nightly", "version": "v42"}
        body["labels"] = {"team": "acme/churn-team"}
    return body


def test_the_payloads_are_what_the_official_flyteidl_protos_define(record: dict[str, Any]) -> None:
    from flyteidl.admin import event_pb2 as admin_event
    from flyteidl.event import cloudevents_pb2
    from google.protobuf import json_format

    v1 = json_format.ParseDict(record["value"], admin_event.WorkflowExecutionEventRequest())  # strict: no unknowns
    assert admin_event.WorkflowExecutionEventRequest.DESCRIPTOR.full_name in record["headers"]["ce_type"]
    v2 = json_format.ParseDict(v2_body(record["value"]), cloudevents_pb2.CloudEventWorkflowExecution())
    assert v1.event.error.code == v2.raw_event.error.code == "RetriesExhausted|OOMKilled"
    assert v2.launch_plan_id.name == "churn.training.nightly" and v2.labels["team"] == "acme/churn-team"


def test_v1_and_v2_normalise_to_the_same_execution(record: dict[str, Any]) -> None:
    one = flyte.parse_event(record["value"])
    two = flyte.parse_event(v2_body(record["value"]))
    assert (one.key, one.phase, one.error_kind, one.shape) == \
        ("flytesnacks/development/a8k2m4p9q1r7s3t5v6w0", "FAILED", "USER", "v1")
    assert (two.key, two.error_code, two.launch_plan, two.shape) == \
        (one.key, one.error_code, "churn.training.nightly", "v2")
    structured = {"specversion": "1.0", "type": record["headers"]["ce_type"], "data": record["value"]}
    assert flyte.parse_event(structured) == one
    assert occurred(one.occurred_at).isoformat() == "2026-11-22T02:41:37.512345+00:00"  # type: ignore[union-attr]


@pytest.mark.parametrize(("body", "why"), [
    ([], "not a JSON object"),
    ({"event": {"executionId": {"project": "p", "domain": "d"}, "phase": "FAILED"}}, "executionId.name is missing"),
    ({"nodeExecutionEvent": {}}, "neither `event`"),
    ({"event": {"executionId": {"project": "Bad Project", "domain": "d", "name": "x1"}}}, "is not a Flyte name"),
    ({"event": {"executionId": {"project": "p", "domain": "d", "name": "x1"}, "phase": "EXPLODED"}}, "phase"),
    ({"specversion": "1.0", "data_base64": "CgQ="}, "protobuf"),
])
def test_what_is_not_a_flyte_execution_event_is_refused_in_one_line(body: Any, why: str) -> None:
    with pytest.raises(flyte.FlyteEventError, match=why) as caught:
        flyte.parse_event(body)
    assert "\n" not in str(caught.value)


def test_the_guard_triages_failures_only_recent_ones_of_the_chosen_projects(record: dict[str, Any]) -> None:
    execution = flyte.parse_event(record["value"])
    assert decide(execution, projects=[], max_age_seconds=3600, now=NOW).decision == "proceed"
    assert "not triaged" in decide(execution, projects=["fraud"], max_age_seconds=3600, now=NOW).reason
    assert "more than 60 s" in decide(execution, projects=[], max_age_seconds=60, now=NOW).reason
    for phase in ("SUCCEEDED", "ABORTED", "RUNNING"):
        body = copy.deepcopy(record["value"])
        body["event"]["phase"] = phase
        assert decide(flyte.parse_event(body), projects=[], max_age_seconds=3600, now=NOW).decision == "skip"
    body = copy.deepcopy(record["value"])
    body["event"]["phase"] = 8  # a number is TIMED_OUT too
    assert decide(flyte.parse_event(body), projects=[], max_age_seconds=3600, now=NOW).decision == "proceed"


def test_the_context_feeds_the_unchanged_classifier(record: dict[str, Any]) -> None:
    context = build_context(flyte.parse_event(record["value"]), owner_key="team",
                            owners={"flytesnacks": "acme/ml-platform"}, console="https://flyte.example.com/console")
    assert context["source"] == "flyte" and context["workflow"]["pipeline"] == "flytesnacks-development"
    assert context["workflow"]["owner"] == "acme/ml-platform"
    assert context["flyte"]["url"] == ("https://flyte.example.com/console/projects/flytesnacks/domains/development/"
                                       "executions/a8k2m4p9q1r7s3t5v6w0")
    verdict = classify(context)
    assert verdict.category == "oom"
    assert any("Reason [OOMKilled]" in line for line in verdict.evidence)
    enriched = build_context(flyte.parse_event(v2_body(record["value"])), owner_key="team", owners={}, console="")
    assert enriched["workflow"]["pipeline"] == "churn.training.nightly"
    assert enriched["workflow"]["owner"] == "acme/churn-team"  # the execution's own label wins
    traceback = copy.deepcopy(record["value"])
    traceback["event"]["error"] = {"code": "USER:Unknown", "kind": "USER", "message": (
        "Traceback (most recent call last):\n  File \"/root/workflows/train.py\", line 31, in train\n"
        "    frame = pd.read_parquet(path)\nFileNotFoundError: [Errno 2] No such file or directory: "
        "'s3://ml-data/churn/2026-11-21.parquet'\n")}
    assert classify(build_context(flyte.parse_event(traceback), owner_key="team", owners={},
                                  console="")).category == "data-missing"


def test_the_manifests_validate_and_the_webhook_is_authenticated() -> None:
    cfg = parse_config(yaml.safe_dump({**BASE, "patterns": {"failure_triage": {
        "enabled": True, "flyte": {"enabled": True, "projects": ["flytesnacks"]}}}}))
    rendered = {path: yaml.safe_load(text) for path, text in render(cfg).items() if path.endswith(
        ("flyte-failure-triage.yaml", "flyte-failures.yaml"))}
    for path in ("generated/workflowtemplates/flyte-failure-triage.yaml", "eventsources/flyte-failures.yaml",
                 "sensors/flyte-failure-triage.yaml"):
        assert schemas.problems(rendered[path]) == [], path
    [endpoint] = rendered["eventsources/flyte-failures.yaml"]["spec"]["webhook"].values()
    assert endpoint["authSecret"] == {"name": "flyte-webhook", "key": "token"} and endpoint["endpoint"] == "/flyte"
    sensor = rendered["sensors/flyte-failure-triage.yaml"]
    for trigger in sensor["spec"]["triggers"]:  # the body only ever travels in an annotation
        assert [p["dest"] for p in trigger["template"]["argoWorkflow"]["parameters"]] == \
            ["metadata.annotations.hera-flows\\.io/event-body"]
    default = {path for path in render(parse_config(yaml.safe_dump(
        {**BASE, "patterns": {"failure_triage": {"enabled": True}}}))).keys()}
    assert not any("flyte" in path for path in default)  # off unless enabled


# --- end to end ---------------------------------------------------------------------------------------------


class FlyteSetup:
    def __init__(self, generated: Path, github: Any, tmp: Path) -> None:
        self.generated, self.github, self.tmp, self.count = generated, github, tmp, 0

    def deliver(self, body: dict[str, Any]) -> RunResult:
        """The HTTP delivery as the webhook EventSource publishes it (header + body), through the Sensor."""
        self.count += 1
        event = json.dumps({"header": {"Content-Type": ["application/json"], "Authorization": ["Bearer t0ken"],
                                       "Ce-Type": ["com.flyte.resource.flyteidl.admin.WorkflowExecutionEventRequest"]},
                            "body": body})
        return run_workflow("flyte-failure-triage", generated=self.generated, event=event,
                            secrets={"forge": {"token": self.github.token}}, workdir=self.tmp / f"run-{self.count}",
                            state_dir=self.tmp / "state", echo=False)


@pytest.fixture
def flyte_setup(tmp_path: Path, make_gitops_remote, github_api) -> FlyteSetup:
    remote = make_gitops_remote(files={"README.md": "# ml\n"})
    config = {
        "namespace": "mlops-automation",
        "repository": {"url": remote.url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}, "ttl_seconds_after_success": 10**9,
                     "ttl_seconds_after_failure": 10**9},
        "patterns": {"promotion": {"enabled": False},
                     "failure_triage": {"enabled": True, "max_event_age_seconds": 10**9,
                                        "owners": {"flytesnacks/development": "acme/ml-platform"},
                                        "flyte": {"enabled": True,
                                                  "console_url": "https://flyte.example.com/console"}}},
    }
    out = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), out)
    return FlyteSetup(out, github_api, tmp_path)


@pytest.mark.slow
def test_a_failed_flyte_execution_becomes_an_issue_for_its_owner_once(flyte_setup: FlyteSetup,
                                                                     record: dict[str, Any]) -> None:
    result = flyte_setup.deliver(record["value"])

    assert result.phase == "Succeeded", [(t.name, t.phase, t.log[-800:]) for t in result.tasks.values()]
    assert result.outputs["decision"] == "proceed" and result.outputs["category"] == "oom"
    assert flyte_setup.github.pulls() == []
    [issue] = flyte_setup.github.issues()
    assert issue["title"] == "[failure-triage] flytesnacks-development: oom in a8k2m4p9q1r7s3t5v6w0"
    assert "@acme/ml-platform: a run of your pipeline failed" in issue["body"]
    assert "Reason [OOMKilled]" in issue["body"] and "flytekit" in issue["body"]
    assert "executions/a8k2m4p9q1r7s3t5v6w0" in issue["body"]
    assert {"failure-triage", "triage:oom"} <= set(flyte_setup.github.labels(issue["number"]))
    assert result.tasks["smoke-schema"].phase == "Skipped"

    again = flyte_setup.deliver(record["value"])  # the broker redelivers: claimed once
    assert again.outputs["decision"] == "skip" and "already triaged" in again.outputs["reason"]
    assert len(flyte_setup.github.issues()) == 1

    running = copy.deepcopy(record["value"])
    running["event"]["phase"] = "RUNNING"
    with pytest.raises(SensorError, match="sensor filters drop this event"):
        flyte_setup.deliver(running)  # only failures pass the Sensor
