"""Normalisation of every supported drift source into DriftEvents, on the real fixtures where they exist."""

from __future__ import annotations

import json

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.drift.normalise import DriftEvent, normalise


def _load(fixtures_dir, *parts: str) -> str:
    return fixtures_dir.joinpath(*parts).read_text()


def test_alertmanager_group_with_two_firing_alerts_gives_two_events(fixtures_dir) -> None:
    events = normalise("alertmanager", _load(fixtures_dir, "alertmanager", "drift_alert_firing.json"))
    assert [(e.model, e.feature, e.severity, e.metric, e.metric_value, e.threshold, e.id) for e in events] == [
        ("recommendation", "basket_value", "high", "wasserstein_distance", 0.31, 0.1, "5b1b5b2c7f0e6a1d"),
        ("recommendation", "category_id", "critical", "jensenshannon", 0.52, 0.1, "9c2e41aa03d7b845"),
    ]
    assert all(e.source == "alertmanager" for e in events)


def test_alertmanager_resolved_alerts_trigger_nothing(fixtures_dir) -> None:
    assert normalise("alertmanager", _load(fixtures_dir, "alertmanager", "drift_alert_resolved.json")) == []
    body = json.loads(_load(fixtures_dir, "alertmanager", "drift_alert_firing.json"))
    body["alerts"][0]["status"] = "resolved"
    assert [e.feature for e in normalise("alertmanager", body)] == ["category_id"]


def test_alertmanager_v034_fixture_without_value_annotations(fixtures_dir) -> None:
    [event] = normalise("alertmanager", _load(fixtures_dir, "alertmanager", "drift_alert_firing.v0.34.json"))
    assert (event.model, event.feature, event.severity, event.metric_value) == (
        "fraud-detector", "transaction_amount", "warning", None)


def test_evidently_monitor_event() -> None:
    body = {"kind": "hera-flows/drift", "model": "fraud-detector", "feature": "transaction_amount",
            "severity": "high", "metric": "drift_score", "method": "Wasserstein distance (normed)", "value": 0.4,
            "threshold": 0.1, "id": "evidently-abc-1234", "missing_share": 0.0, "drift_share": 0.5}
    [event] = normalise("evidently", body)
    assert event == DriftEvent("fraud-detector", "transaction_amount", "high", "drift_score", 0.4, 0.1, "evidently",
                               "evidently-abc-1234")
    assert event.details["missing_share"] == 0.0
    assert normalise("evidently", {**body, "drifted": False}) == []


@pytest.mark.parametrize(("source", "body", "expected"), [
    ("arize", {"model_id": "churn", "feature_name": "tenure", "metric": "psi", "metric_value": "0.4",
               "threshold": 0.2, "severity": "Critical", "status": "triggered", "monitor_id": "mon-1"},
     [("churn", "tenure", "critical", "psi", 0.4, 0.2, "mon-1")]),
    ("whylabs", {"datasetId": "model-7", "monitorId": "drift-mon", "severity": 2,
                 "anomalies": [{"column": "age", "metric": "frequent_items", "value": 0.7, "threshold": 0.5,
                                "analysisId": "a1"},
                               {"column": "income", "metric": "hellinger", "value": 0.9, "analysisId": "a2"}]},
     [("model-7", "age", "high", "frequent_items", 0.7, 0.5, "a1"),
      ("model-7", "income", "high", "hellinger", 0.9, None, "a2")]),
    ("fiddler", {"model_name": "credit", "project_name": "risk", "severity": "CRITICAL", "metric_value": 0.33,
                 "threshold": 0.1, "alert_id": "al-9",
                 "alert_rule": {"name": "jsd", "metric_id": "jsd", "columns": ["zip", "amount"]}},
     [("credit", "zip", "critical", "jsd", 0.33, 0.1, "al-9"), ("credit", "amount", "critical", "jsd", 0.33, 0.1,
                                                                "al-9")]),
    ("nannyml", {"model_name": "claims", "column_name": "region", "metric": "jensen_shannon", "value": 0.02,
                 "lower_threshold": 0.05, "upper_threshold": 0.3, "alert": True, "run_id": 17},
     [("claims", "region", "high", "jensen_shannon", 0.02, 0.05, "17")]),
])
def test_vendor_subsets(source, body, expected) -> None:
    events = normalise(source, body)
    assert [(e.model, e.feature, e.severity, e.metric, e.metric_value, e.threshold, e.id) for e in events] == expected
    assert all(e.source == source for e in events)


@pytest.mark.parametrize(("source", "body"), [
    ("arize", {"model_id": "churn", "feature_name": "tenure", "status": "resolved"}),
    ("fiddler", {"model_name": "credit", "status": "resolved", "alert_rule": {"columns": ["zip"]}}),
    ("nannyml", {"model_name": "claims", "column_name": "region", "alert": False}),
])
def test_vendor_non_alerts_give_nothing(source, body) -> None:
    assert normalise(source, body) == []


@pytest.mark.parametrize(("source", "body", "message"), [
    ("alertmanager", "{not json", "not JSON"),
    ("alertmanager", {"version": "4", "alerts": [{"status": "firing", "labels": {"model": "a b", "feature": "f",
                                                                                  "severity": "high"}}]},
     "alerts[0].labels.model 'a b' is not a valid name"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"model": "m" * 200, "feature": "f",
                                                                  "severity": "high"}}]}, "not a valid name"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"model": "m", "feature": "f\n; rm -rf",
                                                                  "severity": "high"}}]}, "labels.feature"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"model": "m", "feature": "f",
                                                                  "severity": "loud"}}]}, "not a known severity"),
    ("alertmanager", {"version": "3", "alerts": []}, "version '3' is not supported"),
    ("alertmanager", {"alerts": "nope"}, "'alerts' must be a JSON list"),
    ("evidently", {"kind": "other"}, "not a hera-flows drift monitor event"),
    ("arize", {"model_id": "m", "feature_name": "f", "metric_value": "lots"}, "'metric_value' 'lots' is not a number"),
    ("whylabs", {"datasetId": "m", "severity": 9, "anomalies": []}, "'severity' 9 is not 1-5"),
    ("nope", {}, "unknown drift source"),
])
def test_untrusted_input_fails_with_one_clear_line(source, body, message) -> None:
    with pytest.raises(StepError) as excinfo:
        normalise(source, body)
    text = str(excinfo.value)
    assert message in text and "\n" not in text
