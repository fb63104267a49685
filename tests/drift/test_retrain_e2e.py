"""End to end, `mode: retrain`: Alertmanager deliveries through the generated Sensor into the generated
`drift-retrain` WorkflowTemplate on the local runner, whose `templateRef` runs a real team training template
(examples/drift/fraud-detector-retrain.yaml, a DAG of one container) given with `--template-file`.

An alert whose key is cooling down ends Succeeded and the training template never runs; a fresh alert makes the
guard proceed and the training template runs with the event's model and feature, its outputs visible on the
`retrain` task and in `hera-flows run`'s summary; the same alert again is inside the cooldown the run just took.
The sample pipeline of examples/training cannot be referenced from drift-retrain as it is (another namespace):
that is a clear error before the guard takes any cooldown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hera_flows.cli import main
from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import RunError, RunResult, run_workflow
from hera_flows.steps import naming
from hera_flows.steps.state import FileLeaseStore
from tests.conftest import ROOT
from tests.support import schemas
from tests.support.drift_events import alertmanager_event

TRAINING = ROOT / "examples" / "drift" / "fraud-detector-retrain.yaml"
SAMPLE_PIPELINE = ROOT / "examples" / "training" / "fraud-detector-training.yaml"
MODEL = "fraud-detector"


def _generate(out: Path, workflow_template: str, template: str) -> Path:
    config = {
        "repository": {"url": "https://github.com/acme/ml-gitops", "slug": "acme/ml-gitops"},
        "patterns": {"promotion": {"enabled": False}, "drift": {
            "enabled": True, "mode": "retrain", "monitor": {"enabled": False},
            "retrain": {"workflow_template": workflow_template, "template": template,
                        "parameters": {"model": "model", "feature": "feature"}}}},
    }
    write(render(parse_config(yaml.safe_dump(config))), out)
    return out


class Runs:
    def __init__(self, tmp: Path, generated: Path) -> None:
        self.tmp, self.generated, self.count = tmp, generated, 0

    def run(self, event: str, templates: list[Path]) -> RunResult:
        self.count += 1
        return run_workflow("drift-retrain", generated=self.generated, event=event, workdir=self.workdir(self.count),
                            state_dir=self.tmp / "state", extra_templates=templates, echo=False,
                            event_name="alertmanager")

    def workdir(self, count: int) -> Path:
        return self.tmp / f"run-{count}"


def _training_pods(workdir: Path) -> list[str]:
    return sorted(p.name for p in (workdir / "pods").iterdir() if ".train." in p.name)


def test_cooldown_keeps_the_training_template_from_running_and_a_fresh_alert_runs_it(tmp_path: Path, capsys) -> None:
    assert schemas.problems(yaml.safe_load(TRAINING.read_text())) == []  # what a cluster would accept
    runs = Runs(tmp_path, _generate(tmp_path / "out", "fraud-detector-retrain", "main"))
    # An earlier remediation of fraud-detector@amount is cooling down.
    FileLeaseStore(tmp_path / "state", "mlops-automation").acquire_cooldown(
        naming.lease_name("drift-cooldown", naming.dedupe_key(MODEL, "amount")), "earlier-run", 21600)

    cooling = runs.run(alertmanager_event(MODEL, "amount"), [TRAINING])
    assert cooling.phase == "Succeeded", cooling.message
    assert cooling.outputs["decision"] == "skipped-cooldown"
    assert cooling.tasks["retrain"].phase == "Skipped" and cooling.tasks["retrain"].children == []
    assert _training_pods(runs.workdir(1)) == []  # the training container never started
    assert cooling.synchronization == []  # no key's chain ran, so no model's mutex was taken

    # A fresh key: the guard proceeds and the team's DAG runs with the event's model and feature.
    fresh = runs.run(alertmanager_event(MODEL, "merchant", value="0.7"), [TRAINING])
    assert fresh.phase == "Succeeded", fresh.message
    assert fresh.outputs["decision"] == "proceed"
    [key] = fresh.tasks["retrain"].children  # one key: its chain ran the team's template, then confirmed
    item = f"retrain(0:{MODEL}-merchant)"
    assert key.name == item and [(c.name, c.phase) for c in key.children] == [
        (f"{item}.train", "Succeeded"), (f"{item}.confirm-claims", "Succeeded")]
    train = key.children[0]
    assert [(c.name, c.phase) for c in train.children] == [(f"{item}.train.train", "Succeeded")]
    assert json.loads(train.outputs["summary"]) == {"model": MODEL, "retrained_for": "merchant", "window_days": 30}
    assert train.outputs["run-id"].startswith("run-")
    log = (runs.workdir(2) / "logs" / f"{item}.train.train.main.log").read_text()
    assert f"trained {MODEL} after drift on merchant" in log
    assert _training_pods(runs.workdir(2)) == [f"retrain-0-{MODEL}-merchant-.train.train-1"]
    assert fresh.synchronization == [f"mutex drift-{MODEL}"]

    # The same alert through the CLI: inside the cooldown that run took, so nothing is trained.
    event = tmp_path / "event.json"
    event.write_text(alertmanager_event(MODEL, "merchant", value="0.8"))
    capsys.readouterr()
    code = main(["run", "drift-retrain", "--generated", str(runs.generated), "--event", str(event),
                 "--event-name", "alertmanager", "--template-file", str(TRAINING), "--workdir", str(tmp_path / "cli"),
                 "--state-dir", str(tmp_path / "state")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "output decision: skipped-cooldown" in out and ".train.train" not in out
    assert _training_pods(tmp_path / "cli") == []


def test_the_cli_shows_what_the_training_template_returned(tmp_path: Path, capsys) -> None:
    generated = _generate(tmp_path / "out", "fraud-detector-retrain", "main")
    event = tmp_path / "event.json"
    event.write_text(alertmanager_event(MODEL, "amount"))
    code = main(["run", "drift-retrain", "--generated", str(generated), "--event", str(event),
                 "--event-name", "alertmanager", "--template-file", str(TRAINING.parent),
                 "--state-dir", str(tmp_path / "state"),
                 "--workdir", str(tmp_path / "run")])  # a folder: every WorkflowTemplate below it
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"[retrain(0:{MODEL}-amount).train] templateRef fraud-detector-retrain/main (dag)" in out
    assert f"retrain(0:{MODEL}-amount).train.train Succeeded" in out
    assert '"retrained_for": "amount"' in out and "output run-id: run-" in out


def test_the_sample_pipeline_in_another_namespace_is_refused_before_the_guard_runs(tmp_path: Path) -> None:
    runs = Runs(tmp_path, _generate(tmp_path / "out", "fraud-detector-training", "main"))
    with pytest.raises(RunError, match="namespace 'ml-training'; Argo looks it up in the workflow's namespace "
                                       "'mlops-automation'"):
        runs.run(alertmanager_event(MODEL, "amount"), [SAMPLE_PIPELINE])
    assert not (tmp_path / "state" / "mlops-automation").exists()  # no cooldown was taken
    with pytest.raises(RunError, match="'fraud-detector-training', which is neither generated nor in a "
                                       "--template-file"):
        runs.run(alertmanager_event(MODEL, "amount"), [TRAINING])
