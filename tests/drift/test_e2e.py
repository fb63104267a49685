"""End to end: the generated `drift-remediation` WorkflowTemplate on the local runner, Alertmanager deliveries and
an Alibi-Detect record on Kafka routed through the generated Sensor, a real bare git remote, the GitHub stand-in
and a real MLflow server.

A drift alert opens a retraining PR (params file changed on `drift/<model>-<feature>-<id>`, config check
commented); the same alert inside the cooldown ends Succeeded with the reason and opens nothing; after the
cooldown a new alert updates the same PR with a comment carrying the new evidence; a data-bug alert opens an
issue labelled data-quality and pushes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import RunResult, run_workflow
from hera_flows.local.sensor import SensorError
from hera_flows.steps.state import micro_time
from tests.support.drift_events import alertmanager_event
from tests.support.fixtures_gitops import create_gitops_remote
from tests.support.mlflow_models import register_run_version, unique_model_name

pytestmark = pytest.mark.slow

PARAMS = """\
# Training parameters (owned by the fraud team)
features: [amount, merchant]
dataset:
  table: features.transactions
  window_days: 30   # days of history
  window_end: "2026-10-01"
training:
  learning_rate: 0.1
"""


_alert = alertmanager_event  # shared with tests/drift/test_retrain_e2e.py


class Setup:
    def __init__(self, tmp: Path, model: str, remote: Any, github: Any, generated: Path) -> None:
        self.tmp, self.model, self.remote, self.github, self.generated = tmp, model, remote, github, generated
        self.count = 0

    def run(self, event: str, event_name: str = "alertmanager", context: dict | None = None) -> RunResult:
        self.count += 1
        return run_workflow("drift-remediation", generated=self.generated, event=event, event_name=event_name,
                            event_context=context, secrets={"forge": {"token": self.github.token}},
                            workdir=self.tmp / f"run-{self.count}", state_dir=self.tmp / "state", echo=False)

    def drift_branches(self) -> list[str]:
        return [b for b in self.remote.branches() if b.startswith("drift/")]

    def age_cooldowns(self, hours: float) -> None:
        """Move every cooldown record ``hours`` into the past (what waiting would do)."""
        for path in (self.tmp / "state" / "mlops-automation").glob("hf-drift-cooldown-*.json"):
            lease = json.loads(path.read_text())
            moment = micro_time(datetime.now(timezone.utc) - timedelta(hours=hours))
            lease["spec"]["acquireTime"] = lease["spec"]["renewTime"] = moment
            path.write_text(json.dumps(lease))


@pytest.fixture()
def setup(tmp_path: Path, mlflow_server, github_api) -> Setup:
    model = unique_model_name("fraud")
    register_run_version(mlflow_server.uri, model, alias="champion", seed=1, metrics={"auc": 0.91, "f1": 0.7})
    remote = create_gitops_remote(tmp_path / "remote", {
        "README.md": "# ml-gitops\n",
        f"pipelines/{model}/params.yaml": PARAMS,
        f"pipelines/{model}/features.sql": "select amount, merchant from transactions\n",
    })
    remote.commit_files({f"pipelines/{model}/features.sql": "select amount, merchant, ts from transactions\n"},
                        "features: add the event timestamp")
    config = {
        "namespace": "mlops-automation",
        "repository": {"url": remote.url, "slug": "acme/ml-gitops", "base_branch": "main"},
        "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
        "mlflow": {"tracking_uri": mlflow_server.uri},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
        "patterns": {"promotion": {"enabled": False},
                     "drift": {"enabled": True, "monitor": {"enabled": False}, "max_open_prs": 5,
                               "max_open_prs_per_model": 5,
                               "sources": ["alertmanager", {
                                   "name": "ml-drift", "kind": "kafka", "topic": "ml.drift",
                                   "brokers": ["kafka-0.kafka.svc:9092"], "shape": "alibi-detect",
                                   "mapping": {"vars": {"model": model,
                                                        "features": ["hours", "age", "education", "workclass"]}}}]}},
    }
    generated = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), generated)
    return Setup(tmp_path, model, remote, github_api, generated)


def _failed(result: RunResult) -> list:
    return [(t.name, t.phase, t.message, t.log[-1500:]) for t in result.tasks.values() if t.phase == "Failed"]


def _chains(result: RunResult) -> list[dict[str, str]]:
    """Each remediated key's chain, in item order: its tasks' phases by task name."""
    return [{task.name.rsplit(".", 1)[-1]: task.phase for task in item.children}
            for item in result.tasks["remediate"].children]


def _list(result: RunResult, name: str) -> list[str]:
    return json.loads(result.outputs.get(name) or "[]")


def test_alert_pr_cooldown_update_and_data_quality_issue(setup: Setup) -> None:
    model = setup.model
    # 1. a drift alert opens a retraining PR
    first = setup.run(_alert(model, "amount"))
    assert first.phase == "Succeeded", _failed(first)
    assert [t.phase for t in first.tasks.values()] == ["Succeeded"] * 2  # guard, the fan-out over its keys
    assert _chains(first) == [{"context": "Succeeded", "agent": "Succeeded", "review": "Succeeded",
                               "confirm-claims": "Succeeded", "smoke": "Succeeded", "report": "Succeeded"}]
    assert first.synchronization == [f"mutex drift-{model}"]  # one remediation per model at a time
    assert first.exit_handler is not None and first.exit_handler.phase == "Succeeded"
    [branch] = setup.drift_branches()
    assert branch.startswith(f"drift/{model}-amount-")
    params = yaml.safe_load(setup.remote.read(f"pipelines/{model}/params.yaml", branch))
    assert params["dataset"] == {"table": "features.transactions", "window_days": 15, "window_end": "2026-11-22"}
    assert params["retraining"]["revision"] == 1 and "threshold 0.2" in params["retraining"]["reason"]
    assert "# days of history" in setup.remote.read(f"pipelines/{model}/params.yaml", branch)
    [pull] = setup.github.pulls()
    assert pull["head"] == branch and pull["state"] == "open"
    assert "threshold 0.2" in pull["body"] and "Serving version 1" in pull["body"]
    assert "features: add the event timestamp" in pull["body"]  # git history of the feature's files
    assert "drift" in setup.github.labels(pull["number"])
    assert _list(first, "smoke-results") == ["passed"] and first.outputs["count"] == "1"
    assert any("parses and validates" in c["body"] for c in setup.github.comments(pull["number"]))
    [pr_url] = _list(first, "pr-urls")
    assert pr_url.endswith(f"/pull/{pull['number']}")
    labels = json.loads((setup.tmp / "state" / "workflow-labels" / f"{first.workflow_name}.json").read_text())
    assert labels["hera-flows.io/decision"] == "proceed"

    # 2. the same alert inside the cooldown: skipped, Succeeded, with the reason
    second = setup.run(_alert(model, "amount", value="0.6"))
    assert second.phase == "Succeeded", _failed(second)
    assert second.outputs["decision"] == "skipped-cooldown" and "cooldown" in second.outputs["reason"]
    assert all(t.phase in ("Skipped", "Omitted") for n, t in second.tasks.items() if n != "guard")
    assert len(setup.github.pulls()) == 1
    labels = json.loads((setup.tmp / "state" / "workflow-labels" / f"{second.workflow_name}.json").read_text())
    assert labels["hera-flows.io/decision"] == "skipped-cooldown"

    # 3. after the cooldown a new alert updates the same PR, with the new evidence in a comment
    setup.age_cooldowns(7)
    third = setup.run(_alert(model, "amount", value="0.7"))
    assert third.phase == "Succeeded", _failed(third)
    assert len(setup.github.pulls()) == 1 and setup.drift_branches() == [branch]
    assert _list(third, "pr-urls") == [pr_url]
    comments = [c["body"] for c in setup.github.comments(pull["number"])]
    assert any("New drift evidence" in c and "0.7" in c for c in comments)

    # 4. an upstream data bug: an issue labelled data-quality, nothing pushed
    fourth = setup.run(_alert(model, "merchant", metric="missing_values", value="0.4"))
    assert fourth.phase == "Succeeded", _failed(fourth)
    [issue] = setup.github.issues()
    assert "data-quality" in setup.github.labels(issue["number"])
    assert model in issue["title"] and "missing_values" in issue["body"]
    assert _list(fourth, "issue-urls")[0] and setup.drift_branches() == [branch]
    assert _chains(fourth)[0]["smoke"] == "Skipped"


def test_resolved_and_low_severity_alerts(setup: Setup) -> None:
    with pytest.raises(SensorError, match="sensor filters drop this event"):
        setup.run(_alert(setup.model, "amount", status="resolved"))
    low = setup.run(_alert(setup.model, "amount", severity="warning"))
    assert low.phase == "Succeeded" and low.outputs["decision"] == "skipped-filter"
    assert setup.drift_branches() == [] and setup.github.pulls() == []


def test_a_forge_outage_does_not_lock_the_key(setup: Setup) -> None:
    """Issue 16 item 6, reproduced: the forge failed after the guard took the key, and the key stayed suppressed
    for the whole 6 h cooldown with no PR. Now the run fails, its exit handler releases the pending claim, and the
    next alert for the key is remediated."""
    setup.github.fail("POST", r"/pulls$", 500, times=100)  # review cannot open the PR, even after retries
    failed = setup.run(_alert(setup.model, "amount"))
    assert failed.phase == "Failed" and _chains(failed)[0]["review"] == "Failed"
    assert _chains(failed)[0]["confirm-claims"] == "Omitted"
    assert failed.exit_handler is not None and failed.exit_handler.phase == "Succeeded"
    assert "released 2 pending claim(s): hf-drift-cooldown-" in failed.exit_handler.log  # the key and its slot
    assert "hf-drift-ceiling-" in failed.exit_handler.log
    assert list((setup.tmp / "state" / "mlops-automation").glob("hf-drift-cooldown-*.json")) == []

    setup.github.clear_failures()
    again = setup.run(_alert(setup.model, "amount"))
    assert again.phase == "Succeeded", _failed(again)
    assert again.outputs["decision"] == "proceed" and _list(again, "pr-urls")[0]
    # this one confirmed: the cooldown now holds
    held = setup.run(_alert(setup.model, "amount"))
    assert held.outputs["decision"] == "skipped-cooldown" and "cooldown" in held.outputs["reason"]


def test_every_shape_of_issue_14_reaches_a_pr_or_its_reason(setup: Setup, fixtures_dir: Path) -> None:
    """Issue 14 "Done when" and issue 13 item 3: a group of two drifting features opens two PRs in one run (each
    key its own chain under the model's mutex); a model-level alert (no feature label) opens one PR for the whole
    model; an alert without a model label ends Succeeded with its one-line reason; an Alibi-Detect drift result
    published to Kafka goes through the Kafka EventSource's envelope and the same mapping to a PR."""
    from hera_flows.local import kafka

    model = setup.model
    setup.remote.commit_files({f"pipelines/{model}/params.yaml": PARAMS.replace("[amount, merchant]",
                                                                                "[amount, merchant, age]")},
                              "features: add age")
    # 1. one delivery, two keys: two PRs in the same run
    group = json.loads(_alert(model, "amount"))
    second_alert = json.loads(_alert(model, "merchant", value="0.3"))["body"]["alerts"][0]
    group["body"]["alerts"].append(second_alert)
    both = setup.run(json.dumps(group))
    assert both.phase == "Succeeded", _failed(both)
    assert both.outputs["count"] == "2" and len(_chains(both)) == 2
    assert all(chain["review"] == "Succeeded" for chain in _chains(both))
    assert both.synchronization == [f"mutex drift-{model}"] * 2  # each key's chain under the model's mutex
    assert sorted(p["head"].split("/")[1].split("-")[-2] for p in setup.github.pulls()) == ["amount", "merchant"]
    assert json.loads(both.outputs["dedupe-keys"]) == [f"{model}@amount", f"{model}@merchant"]

    # 2. a model-level alert: no feature label -> one PR for the model, keyed model@*
    level = json.loads(_alert(model, "x", metric="drift_share", value="0.6"))
    alert = level["body"]["alerts"][0]
    del alert["labels"]["feature"]
    alert["labels"]["alertname"] = "ModelDriftDetected"
    whole = setup.run(json.dumps(level))
    assert whole.phase == "Succeeded", _failed(whole)
    assert json.loads(whole.outputs["dedupe-keys"]) == [f"{model}@*"]
    [pull] = [p for p in setup.github.pulls() if p["title"] == f"Retrain {model}: drift on the whole model"]
    assert "named no single feature" in pull["body"] and f"{model}@*" in pull["body"]
    assert pull["head"].startswith(f"drift/{model}-") and "-x-" not in pull["head"]
    params = yaml.safe_load(setup.remote.read(f"pipelines/{model}/params.yaml", pull["head"]))
    assert "the whole model" in params["retraining"]["reason"]

    # 3. an alert without a model label: the run says why in one line, opens nothing
    nameless = json.loads(_alert(model, "amount"))
    del nameless["body"]["alerts"][0]["labels"]["model"]
    unmapped = setup.run(json.dumps(nameless))
    assert unmapped.phase == "Succeeded"
    assert unmapped.outputs["decision"] == "skipped-unmapped"
    assert unmapped.outputs["reason"] == "alertmanager: body.alerts[0]: model (item.labels.model) is missing"
    assert unmapped.tasks["remediate"].phase == "Skipped" and len(setup.github.pulls()) == 3
    labels = json.loads((setup.tmp / "state" / "workflow-labels" / f"{unmapped.workflow_name}.json").read_text())
    assert labels["hera-flows.io/decision"] == "skipped-unmapped"

    # 4. Alibi-Detect's KSDrift result on the Kafka topic ml.drift: the EventSource's envelope, then the mapping
    event_source = yaml.safe_load((setup.generated / "eventsources" / "drift-kafka.yaml").read_text())
    fixture = json.loads((fixtures_dir / "alibi-detect" / "cloudevent_adserver_ksdrift_batch.json").read_text())
    data, context = kafka.event_data(event_source, "ml-drift", value=json.dumps(fixture["body"], indent=2),
                                     key=model, headers={"ce_type": fixture["headers"]["ce-type"]}, partition=0,
                                     offset=42)
    detected = setup.run(data, event_name="ml-drift", context=context)
    assert detected.phase == "Succeeded", _failed(detected)
    assert json.loads(detected.outputs["dedupe-keys"]) == [f"{model}@age"]  # feature index 1, named in the config
    [pull] = [p for p in setup.github.pulls() if p["title"] == f"Retrain {model}: drift on age"]
    assert "`p_val`" in pull["body"] and "drift when below it" in pull["body"]
    params = yaml.safe_load(setup.remote.read(f"pipelines/{model}/params.yaml", pull["head"]))
    assert params["dataset"]["window_days"] == 15  # a p-value of 8e-8 against 0.0125 is severe
    assert "drift-kafka:ml-drift:kafka-0.kafka.svc:9092:ml.drift:0:42" in pull["body"]  # the record's id
