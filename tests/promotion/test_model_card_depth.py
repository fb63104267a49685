"""Model-card depth: calibration measures, and the entry's evaluation, fairness and deployment sections."""

from __future__ import annotations

import numpy as np
import pytest

from hera_flows.steps import model_cards
from hera_flows.steps.common import StepError
from hera_flows.steps.promotion import calibration, pr
from hera_flows.steps.promotion.evaluation import EvaluationSettings, audit_fairness, deltas


def test_brier_score_matches_scikit_learn() -> None:
    from sklearn.metrics import brier_score_loss

    rng = np.random.RandomState(0)
    labels, scores = rng.randint(0, 2, 500), rng.uniform(size=500)
    assert calibration.brier_score(labels, scores) == pytest.approx(brier_score_loss(labels, scores))


def test_expected_calibration_error_by_hand() -> None:
    # bin [0.0, 0.5): scores 0.1, 0.3 (mean 0.2), outcomes 0, 1 (mean 0.5) -> gap 0.3, weight 2/4
    # bin [0.5, 1.0]: scores 0.9, 1.0 (mean 0.95), outcomes 1, 1 (mean 1.0) -> gap 0.05, weight 2/4
    assert calibration.expected_calibration_error([0, 1, 1, 1], [0.1, 0.3, 0.9, 1.0], bins=2) == pytest.approx(0.175)
    perfect = calibration.expected_calibration_error([0, 1] * 50, [0.5] * 100, bins=10)
    assert perfect == pytest.approx(0.0)


@pytest.mark.parametrize(("labels", "scores", "message"), [
    ([0, 1], [0.2, 1.5], "not probabilities"),
    ([0, 1], [0.2, float("nan")], "not probabilities"),
    ([0, 2], [0.2, 0.4], "not binary"),
    ([0, 1], [0.2], "2 outcomes but 1 scores"),
    ([], [], "no rows"),
])
def test_bad_calibration_input_is_one_clear_error(labels, scores, message) -> None:
    with pytest.raises(StepError, match=message):
        calibration.brier_score(labels, scores)


def test_evaluation_settings_are_checked() -> None:
    good = {"enabled": True, "dataset": "evaluation/eval.parquet", "label_column": "label", "prediction_column": "",
            "positive_label": "1", "threshold": 0.5, "sensitive_attributes": ["sex"], "min_group_count": 30,
            "score_column": "score", "calibration_bins": 10}
    assert EvaluationSettings.parse(good).sensitive_attributes == ("sex",)
    with pytest.raises(StepError, match="unknown keys"):
        EvaluationSettings.parse({**good, "extra": 1})
    with pytest.raises(StepError, match="at least 1"):
        EvaluationSettings.parse({**good, "calibration_bins": 0})


def test_no_audit_record_gives_no_reference() -> None:
    assert audit_fairness(None) == ({}, "", None)
    assert audit_fairness("# a card without the fairness section\n") == ({}, "", None)


def _context() -> dict:
    new = {"dataset": "runs:/r7/evaluation/eval.parquet", "rows": 400, "accuracy": 0.81, "ece": 0.12, "brier": 0.2,
           "bins": 10, "fairness": {"sex": {"dp_difference": 0.08, "dp_ratio": 0.8, "eo_difference": 0.1}},
           "fairness_source": "evaluation set of version 7", "problems": ["sensitive attribute 'race' is absent"],
           "error": ""}
    old = {"dataset": "runs:/r6/evaluation/eval.parquet", "rows": 380, "accuracy": 0.79, "ece": 0.05, "brier": 0.21,
           "bins": 10, "fairness": {"sex": {"dp_difference": 0.03, "dp_ratio": 0.94, "eo_difference": 0.05}},
           "fairness_source": "fairness audit 2026-W48 (version 6)", "problems": [], "error": ""}
    return {
        "model": "fraud-detector", "version": "7", "alias": "champion",
        "model_version": {"source": "runs:/r7/model", "storage_uri": "s3://b/7", "run_id": "r7"},
        "metrics": {"accuracy": 0.9}, "deltas": {}, "serving": {"current_version": "6", "manifest_path": "i.yaml"},
        "deployment": {"runtime_version": None, "gpu_type": "NVIDIA-L4", "gpu_count": None, "replica_min": 2,
                       "replica_max": 8, "cpu": None, "memory": None},
        "deployment_sources": {"gpu_type": "run r7", "replica_min": "run r7", "replica_max": "model version"},
        "evaluation": {"new": new, "serving": old, "deltas": deltas(new, old)},
    }


def test_the_card_entry_compares_calibration_fairness_and_names_each_deployment_source() -> None:
    entry = model_cards.render_entry(_context())
    assert "| Measure | New (v7) | Serving (v6) | Delta |" in entry
    assert "| Expected calibration error (10 bins) | 0.12 | 0.05 | +0.07 |" in entry
    assert "| Brier score | 0.2 | 0.21 | -0.01 |" in entry
    assert "| Accuracy | 0.81 | 0.79 | +0.02 |" in entry
    assert "| sex | Demographic-parity difference | 0.08 | 0.03 | +0.05 |" in entry
    assert "- Serving: fairness audit 2026-W48 (version 6)" in entry
    assert "| `gpu_type` | `NVIDIA-L4` | run r7 tags |" in entry
    assert "| `replica_max` | `8` | model version tags |" in entry
    assert "new: sensitive attribute 'race' is absent" in entry
    assert entry.count("<!-- hera-flows:promotion v7 -->") == 1  # still one marked entry per version


def test_the_pr_carries_the_same_sections() -> None:
    body = pr.promotion_body(_context(), summary="s", refused=[], dedupe_key="k", branch="b")
    for heading in ("### Evaluation set", "### Fairness", "### Deployment settings"):
        assert heading in body
    assert "| `replica_min` | `2` | run r7 tags |" in body


def test_without_an_evaluation_the_sections_are_left_out() -> None:
    context = {**_context(), "evaluation": None, "deployment": {}}
    entry = model_cards.render_entry(context)
    assert "Evaluation set" not in entry and "Fairness" not in entry and "Deployment" not in entry


def test_hostile_attribute_names_cannot_break_the_tables() -> None:
    context = _context()
    context["evaluation"]["new"]["fairness"] = {"a|b<!--": {"dp_difference": 0.1, "dp_ratio": 1, "eo_difference": 0}}
    entry = model_cards.render_entry(context)
    row = next(line for line in entry.splitlines() if line.startswith("| a") and "Demographic-parity diff" in line)
    assert row.count("|") - row.count("\\|") == 6 and "<!--" not in row
