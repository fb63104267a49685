"""The builtin drift editor (retraining proposal or data-quality issue), the config smoke check, the data-quality
rules of the context step and the PR renderer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hera_flows.steps.common import StepError
from hera_flows.steps.drift.context import data_quality
from hera_flows.steps.drift.editor import builtin_edit
from hera_flows.steps.drift.pr import review_text
from hera_flows.steps.drift.smoke import validate_params
from tests.support.settings import editor_args

PARAMS = """\
# Training parameters of fraud-detector (owned by the fraud team)
model: fraud-detector
features: [amount, merchant, age]
dataset:
  table: features.transactions
  window_days: 30   # days of history
  window_end: "2026-10-01"
training:
  learning_rate: 0.1
retraining:
  revision: 3
"""


def _context(**event) -> dict:
    base = {"model": "fraud-detector", "feature": "amount", "severity": "critical", "metric": "psi",
            "metric_value": 0.5, "threshold": 0.2, "source": "alertmanager", "id": "fp1",
            "details": {"starts_at": "2026-11-22T06:15:00Z"}}
    base.update(event)
    return {"pattern": "drift", "event": base, "data_quality": data_quality(base, yaml.safe_load(PARAMS)),
            "serving": {"alias": "champion", "version": "4", "metrics": {"auc": 0.91}}, "history": []}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "repo" / "pipelines" / "fraud-detector").mkdir(parents=True)
    (tmp_path / "repo" / "pipelines" / "fraud-detector" / "params.yaml").write_text(PARAMS)
    return tmp_path / "repo"


def test_severe_drift_slides_and_halves_the_window_keeping_comments(repo: Path) -> None:
    summary = builtin_edit(repo, _context(), editor_args("drift"))
    text = (repo / "pipelines/fraud-detector/params.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["dataset"]["window_end"] == "2026-11-22" and data["dataset"]["window_days"] == 15
    assert data["retraining"]["revision"] == 4 and "psi = 0.5 (threshold 0.2)" in data["retraining"]["reason"]
    assert "# days of history" in text and "# Training parameters" in text
    assert "threshold 0.2" in summary and "halved" in summary
    # a key the edit adds reads as absent, not as the editor's internal MISSING marker (issue 14 item 7)
    assert "- `retraining.reason`: (absent) -> `drift on amount: " in summary and "MISSING" not in summary
    assert validate_params(text, 7) == []
    assert not (repo.parent / "issue.json").exists()


def test_mild_drift_keeps_the_window_length_and_is_idempotent(repo: Path) -> None:
    builtin_edit(repo, _context(metric_value=0.3), editor_args("drift"))
    first = (repo / "pipelines/fraud-detector/params.yaml").read_text()
    assert yaml.safe_load(first)["dataset"]["window_days"] == 30
    (repo / "pipelines/fraud-detector/params.yaml").write_text(PARAMS)
    builtin_edit(repo, _context(metric_value=0.3), editor_args("drift"))
    assert (repo / "pipelines/fraud-detector/params.yaml").read_text() == first


def test_window_never_below_the_minimum(repo: Path) -> None:
    builtin_edit(repo, _context(metric_value=5.0), editor_args("drift", min_window_days=20))
    assert yaml.safe_load((repo / "pipelines/fraud-detector/params.yaml").read_text())["dataset"]["window_days"] == 20


@pytest.mark.parametrize(("event", "reason"), [
    ({"metric": "null_violation_count"}, "data integrity"),
    ({"details": {"missing_share": 0.6, "reference_missing_share": 0.01}}, "missing"),
    ({"details": {"dtype": "object", "reference_dtype": "float64"}}, "type changed"),
    ({"feature": "zip_code"}, "not one of the pipeline's features"),
])
def test_data_bugs_become_an_issue_instead_of_an_edit(repo: Path, event, reason) -> None:
    summary = builtin_edit(repo, _context(**event), editor_args("drift"))
    issue = json.loads((repo.parent / "issue.json").read_text())
    assert "data-quality" in issue["labels"] and issue["title"].startswith("Data quality:")
    assert reason in issue["body"] and reason in summary
    assert (repo / "pipelines/fraud-detector/params.yaml").read_text() == PARAMS


def test_missing_params_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    with pytest.raises(StepError, match="pipelines/fraud-detector/params.yaml does not exist"):
        builtin_edit(tmp_path / "repo", _context(), editor_args("drift"))


@pytest.mark.parametrize(("text", "problem"), [
    ("dataset: {window_days: 3, window_end: '2026-01-01'}", "window_days must be a whole number >= 7"),
    ("dataset: {window_days: 30, window_end: 'yesterday'}", "ISO date"),
    ("dataset: {window_days: 30, window_end: '2999-01-01'}", "in the future"),
    ("dataset: [1]", "dataset must be a mapping"),
    ("a: [", "not valid YAML"),
])
def test_smoke_rejects_broken_params(text, problem) -> None:
    assert any(problem in p for p in validate_params(text, 7))


def test_pr_renderer_quotes_evidence_and_has_an_update_comment() -> None:
    title, body, update = review_text(_context(), "Moved the window.", [], "fraud-detector@amount", "drift/x")
    assert title == "Retrain fraud-detector: drift on amount"
    assert "threshold 0.2" in body and "Moved the window." in body and "Serving version 4" in body
    assert "0.5" in update and "fp1" in update
