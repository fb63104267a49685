"""What a promotion's model card compares beyond the logged metrics: accuracy, calibration and fairness on the
evaluation set, for the promoted version and for the version served today.

The evaluation set is the one the fairness audit reads (hera_flows/steps/fairness/audit.py: ``fairness.dataset``
and the other ``fairness.*`` tags over the configured defaults; by default ``evaluation/eval.parquet`` among the
version's run artifacts), so a team logs it once. From it:

- **accuracy** and the **fairness disparities** per sensitive attribute (demographic-parity difference and ratio,
  equalized-odds difference) with the audit's own engine, predictions from the prediction column, else the score
  column (thresholded), else the model itself;
- **calibration** (expected calibration error and Brier score, hera_flows/steps/promotion/calibration.py) from the
  score column (``score`` by default, tag ``evaluation.score_column``): probabilities, not labels.

The serving version's fairness comes first from the fairness audit's latest record in the model card (what the
team reviewed), and only without one from its own evaluation set; the source is kept with the values. Nothing
here fails a promotion: a version without an evaluation set, a missing column or an unreadable file becomes a
line in the result (``error`` when nothing was measured, ``problems`` otherwise) that the card and the PR show.
An unreachable MLflow still fails the step (exit 75, retried).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError, TransientError, log

DISPARITIES = ("dp_difference", "dp_ratio", "eo_difference")
SCORE_TAG = "evaluation.score_column"
DIGITS = 6


@dataclass(frozen=True)
class EvaluationSettings:
    """The ``--evaluation`` flag of `promotion-context` (JSON), filled by the generator."""

    enabled: bool
    dataset: str
    label_column: str
    prediction_column: str
    positive_label: str
    threshold: float
    sensitive_attributes: tuple[str, ...]
    min_group_count: int
    score_column: str
    calibration_bins: int

    @classmethod
    def parse(cls, value: Any) -> EvaluationSettings:
        if not isinstance(value, dict):
            raise StepError("--evaluation must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(value) - names), sorted(names - set(value))
        if unknown or missing:
            raise StepError(f"--evaluation: unknown keys {unknown}, missing keys {missing}")
        try:
            settings = cls(
                enabled=bool(value["enabled"]), dataset=str(value["dataset"]),
                label_column=str(value["label_column"]), prediction_column=str(value["prediction_column"]),
                positive_label=str(value["positive_label"]), threshold=float(value["threshold"]),
                sensitive_attributes=tuple(str(a) for a in value["sensitive_attributes"]),
                min_group_count=int(value["min_group_count"]), score_column=str(value["score_column"]),
                calibration_bins=int(value["calibration_bins"]))
        except (TypeError, ValueError) as exc:
            raise StepError(f"--evaluation: {exc}") from None
        if settings.calibration_bins < 1:
            raise StepError("--evaluation: calibration_bins must be at least 1")
        return settings

    def audit_settings(self) -> Any:
        from hera_flows.steps.fairness.audit import Settings

        return Settings(dataset=self.dataset, label_column=self.label_column,
                        prediction_column=self.prediction_column, positive_label=self.positive_label,
                        threshold=self.threshold, sensitive_attributes=list(self.sensitive_attributes),
                        min_group_count=self.min_group_count)


def empty_result() -> dict[str, Any]:
    return {"dataset": "", "rows": 0, "accuracy": None, "ece": None, "brier": None, "score_column": None,
            "bins": None, "fairness": {}, "fairness_source": "", "problems": [], "error": ""}


def evaluate(mv: Any, settings: EvaluationSettings, tracking_uri: str, scratch: Path) -> dict[str, Any]:
    """Accuracy, calibration and fairness of model version ``mv`` on its evaluation set (see the module docstring)."""
    from hera_flows.steps.fairness import audit

    result = empty_result()
    tags = {k: v for k, v in (getattr(mv, "tags", None) or {}).items() if isinstance(v, str)}
    effective = settings.audit_settings().overridden(tags)
    score_column = (tags.get(SCORE_TAG) or "").strip() or settings.score_column
    try:
        location = audit.dataset_location(effective.dataset, getattr(mv, "run_id", None))
        result["dataset"] = location
        folder = scratch / f"v{mv.version}"
        folder.mkdir(parents=True, exist_ok=True)
        table = audit.load_table(audit.fetch(location, folder, tracking_uri))
    except TransientError:
        raise
    except StepError as exc:
        result["error"] = f"no evaluation set: {exc}"
        return result
    result["rows"] = int(table.num_rows)
    columns = set(table.column_names)
    has_scores = bool(score_column) and score_column in columns

    if has_scores:
        try:
            result.update(_calibration(table, effective, score_column, settings.calibration_bins))
        except StepError as exc:
            result["problems"].append(f"calibration not measured: {exc}")
    else:
        result["problems"].append(f"calibration not measured: the evaluation set has no score column "
                                  f"{score_column!r} (probabilities; tag {SCORE_TAG} names another)")

    predictions = effective.prediction_column or (score_column if has_scores else "")
    measured_settings = dataclasses.replace(effective, prediction_column=predictions)
    try:
        measured = audit.measure(table, measured_settings,
                                 lambda frame: audit.predict(mv.name, str(mv.version), frame, tracking_uri))
    except TransientError:
        raise
    except StepError as exc:
        result["problems"].append(f"accuracy and fairness not measured: {exc}")
        return result
    overall = measured.get("overall") or []
    result["accuracy"] = overall[2] if len(overall) > 2 else None  # [count, selection_rate, accuracy, ...]
    result["fairness"] = {name: {k: attr.get(k) for k in DISPARITIES}
                          for name, attr in sorted((measured.get("attributes") or {}).items())}
    result["fairness_source"] = f"evaluation set of version {mv.version}"
    result["problems"].extend(str(p) for p in measured.get("problems") or [])
    return result


def _calibration(table: Any, settings: Any, score_column: str, bins: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    from hera_flows.steps.fairness.audit import positives
    from hera_flows.steps.promotion.calibration import brier_score, expected_calibration_error

    if settings.label_column not in table.column_names:
        raise StepError(f"the evaluation set has no label column {settings.label_column!r}")
    column = table.column(score_column)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)):
        raise StepError(f"the score column {score_column!r} is not numeric")
    scores = array.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(float)
    truth, valid = positives(table.column(settings.label_column), settings.positive_label, None)
    keep = valid & np.isfinite(scores)
    if not keep.any():
        raise StepError("no row has both a label and a score")
    return {"ece": round(expected_calibration_error(truth[keep], scores[keep], bins), DIGITS),
            "brier": round(brier_score(truth[keep], scores[keep]), DIGITS), "score_column": score_column,
            "bins": bins}


def audit_fairness(card_text: str | None) -> tuple[dict[str, dict[str, Any]], str, str | None]:
    """The fairness audit's latest disparities from a model card: (per attribute, source, audited version)."""
    from hera_flows.steps.fairness.card import previous_record

    record = previous_record(card_text)
    if not record or not isinstance(record.get("attributes"), dict):
        return {}, "", None
    fairness = {str(name): {k: attr.get(k) for k in DISPARITIES}
                for name, attr in sorted(record["attributes"].items()) if isinstance(attr, dict)}
    version = str(record["version"]) if record.get("version") is not None else None
    week = record.get("week") or record.get("date") or "?"
    return fairness, f"fairness audit {week} (version {version or '?'})", version


def serving_evaluation(mv: Any | None, settings: EvaluationSettings, tracking_uri: str, scratch: Path,
                       card_text: str | None) -> dict[str, Any]:
    """The serving version's result: its evaluation set, with the audit's latest fairness record preferred."""
    result = evaluate(mv, settings, tracking_uri, scratch) if mv is not None else empty_result()
    if mv is None:
        result["error"] = "the serving version is not known"
    fairness, source, audited = audit_fairness(card_text)
    if fairness:
        result["fairness"], result["fairness_source"] = fairness, source
        if mv is not None and audited is not None and audited != str(mv.version):
            result["problems"].append(f"the latest fairness audit is of version {audited}, not the serving version "
                                      f"{mv.version}")
    log(f"context: serving evaluation: {result['error'] or 'measured'}; fairness from "
        f"{result['fairness_source'] or 'nowhere'}")
    return result


def deltas(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """new - serving for accuracy, ECE, Brier and each shared attribute's disparities (None where one is missing)."""
    def diff(a: Any, b: Any) -> float | None:
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
        return round(a - b, DIGITS) if numbers else None

    fairness = {}
    for name in sorted(set(new.get("fairness") or {}) | set(old.get("fairness") or {})):
        mine, theirs = (new.get("fairness") or {}).get(name) or {}, (old.get("fairness") or {}).get(name) or {}
        fairness[name] = {k: diff(mine.get(k), theirs.get(k)) for k in DISPARITIES}
    return {"accuracy": diff(new.get("accuracy"), old.get("accuracy")), "ece": diff(new.get("ece"), old.get("ece")),
            "brier": diff(new.get("brier"), old.get("brier")), "fairness": fairness}
