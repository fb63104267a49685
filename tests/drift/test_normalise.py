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
     "alertmanager: body.alerts[0]: model (item.labels.model) 'a b' is not a valid name"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"model": "m" * 200, "feature": "f",
                                                                  "severity": "high"}}]}, "not a valid name"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"model": "m", "feature": "f\n; rm -rf",
                                                                  "severity": "high"}}]},
     "feature (item.labels.feature)"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"model": "m", "feature": "f",
                                                                  "severity": "loud"}}]}, "not a known severity"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"alertname": "DataDriftDetected",
                                                                  "feature": "f", "severity": "high"}}]},
     "alertmanager: body.alerts[0]: model (item.labels.model) is missing"),
    ("alertmanager", {"version": "3", "alerts": []}, 'does not have the expected shape (match: body.version == "4"'),
    ("alertmanager", {"alerts": "nope"}, "the event holds no drift record: body.alerts is not a list"),
    ("evidently", {"kind": "other"}, 'does not have the expected shape (match: body.kind == "hera-flows/drift")'),
    ("arize", {"model_id": "m", "feature_name": "f", "metric_value": "lots"},
     "value (body.metric_value) 'lots' is not a number"),
    ("whylabs", {"datasetId": "m", "severity": 9, "anomalies": [{"column": "c"}]}, "severity (body.severity ?? 3) '9'"),
    ("nope", {}, "unknown drift source"),
])
def test_untrusted_input_fails_with_one_clear_line(source, body, message) -> None:
    with pytest.raises(StepError) as excinfo:
        normalise(source, body)
    text = str(excinfo.value)
    assert message in text and "\n" not in text


# --- model-level alerts, alerts without a model, Alibi-Detect, your own shape (issue 14 items 1-2) --------------

from hera_flows.steps.drift.normalise import (  # noqa: E402
    Source,
    compile_mapping,
    deliver,
    mapping_spec,
    source_from_spec,
)
from hera_flows.steps.event_data import canonical_header  # noqa: E402

FEATURES = ["age", "workclass", "education", "hours_per_week"]


def _model_level_group() -> dict:
    """The Evidently -> Prometheus -> Alertmanager loop of a typical ModelOps setup: ModelDriftDetected{model=...}."""
    return {"version": "4", "status": "firing", "receiver": "argo-events-drift",
            "groupLabels": {"alertname": "ModelDriftDetected", "model": "churn"},
            "alerts": [{"status": "firing", "fingerprint": "0a1b2c3d4e5f6071",
                        "labels": {"alertname": "ModelDriftDetected", "model": "churn", "severity": "critical"},
                        "annotations": {"summary": "share of drifted features 0.6", "value": "0.6",
                                        "threshold": "0.5"},
                        "startsAt": "2026-11-22T06:15:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}


def test_a_model_level_alert_is_one_event_for_the_whole_model() -> None:
    [event] = normalise("alertmanager", _model_level_group())
    assert (event.model, event.feature, event.key, event.model_level) == ("churn", "", ("churn", "*"), True)
    assert (event.severity, event.metric, event.metric_value, event.threshold) == ("critical",
                                                                                    "ModelDriftDetected", 0.6, 0.5)


def test_an_alert_without_a_model_label_is_unmapped_with_one_line(fixtures_dir) -> None:
    """The shared-rule DataDriftDetected alert of the issue: the guard reports it (skipped-unmapped), nothing
    is dropped in silence; the other alerts of the group still map."""
    body = json.loads(_load(fixtures_dir, "alertmanager", "drift_alert_firing.json"))
    del body["alerts"][0]["labels"]["model"]
    delivery = deliver(Source("alertmanager", "alertmanager", compile_mapping(mapping_spec("alertmanager"))),
                       {"header": {}, "body": body, "id": ""})
    assert [e.feature for e in delivery.events] == ["category_id"]
    assert delivery.unmapped == ["alertmanager: body.alerts[0]: model (item.labels.model) is missing"]


def test_your_own_mapping_over_a_shape_field_by_field() -> None:
    """A shared rule puts the model in labels.service and has no severity: map both, keep the rest."""
    override = {"fields": {"model": "item.labels.model ?? item.labels.service", "severity":
                           'item.labels.severity ?? "high"'}}
    source = source_from_spec("shared-rules", {"shape": "alertmanager",
                                               "mapping": mapping_spec("alertmanager", override)})
    body = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "DataDriftDetected", "service": "reco", "feature": "price"},
         "annotations": {"value": "0.4", "threshold": "0.2"}}]}
    [event] = deliver(source, {"header": {}, "body": body, "id": ""}).events
    assert (event.model, event.feature, event.severity, event.metric_value, event.source) == (
        "reco", "price", "high", 0.4, "shared-rules")


def _alibi(override: dict | None = None, shape: str = "alibi-detect") -> Source:
    return Source("alibi", shape, compile_mapping(mapping_spec(shape, override)))


def test_alibi_detect_server_cloudevent_ks_batch(fixtures_dir) -> None:
    """KSDrift (batch): is_drift 1, per-feature p-values against the Bonferroni threshold 0.0125; the model is in
    the CloudEvent's ce-inferenceservicename header (Argo Events canonicalises header names)."""
    fixture = json.loads(_load(fixtures_dir, "alibi-detect", "cloudevent_adserver_ksdrift_batch.json"))
    header = {canonical_header(k): [v] for k, v in fixture["headers"].items()}
    document = {"header": header, "body": fixture["body"], "id": "ignored"}
    [event] = deliver(_alibi(), document).events  # no feature names configured: model-level, the index noted
    assert (event.model, event.feature, event.metric, event.threshold) == ("income", "", "p_val", 0.0125)
    assert event.metric_value == pytest.approx(7.859417650024625e-08)
    assert event.id == fixture["headers"]["ce-id"] and event.details["drifted_features"] == "1"
    assert event.details["direction"] == "below" and event.details["detector"] == "KSDrift"
    [named] = deliver(_alibi({"vars": {"features": FEATURES}}), document).events
    assert named.feature == "workclass" and named.key == ("income", "workclass")


def test_mlserver_v2_rest_response_tabular_batch(fixtures_dir) -> None:
    """What Seldon Core 2 writes to seldon.<ns>.model.<drift model>.outputs over REST: a V2 response whose output
    tensors are the detector's predict() dict ([1, n] arrays, [1, 1] scalars)."""
    fixture = json.loads(_load(fixtures_dir, "alibi-detect", "mlserver_v2_rest_tabulardrift_batch.json"))
    source = _alibi({"vars": {"model": "income", "features": FEATURES}}, "seldon-v2")
    document = {"topic": "seldon.seldon-mesh.model.income-drift.outputs", "key": "", "headers": {},
                "body": fixture["body"], "id": "drift-kafka:income:kafka:9092:seldon.seldon-mesh.model.income-"
                                                "drift.outputs:0:17"}
    [event] = deliver(source, document).events
    assert (event.model, event.feature, event.threshold, event.id) == ("income", "workclass", 0.0125,
                                                                       fixture["body"]["id"])
    assert event.details["detector"] == "TabularDrift" and event.details["detector_model"] == "income-drift"


def test_seldon_v2_kafka_protobuf_json_per_feature(fixtures_dir) -> None:
    """The pipeline (gRPC) path as protobuf JSON: int64 contents as strings, drift_type 'feature' (is_drift per
    feature); only the flagged feature drifts, though feature 3's distance is the largest."""
    fixture = json.loads(_load(fixtures_dir, "alibi-detect", "kafka_seldon_v2_outputs_tabulardrift_feature.json"))
    source = _alibi({"vars": {"model": "income", "features": FEATURES}}, "seldon-v2")
    document = {"topic": fixture["topic"], "key": fixture["key"], "headers": fixture["headers"],
                "body": fixture["value_protojson"], "id": "x"}
    [event] = deliver(source, document).events
    assert (event.model, event.feature, event.threshold) == ("income", "workclass", 0.05)
    assert event.id == fixture["headers"]["x-request-id"] and event.details["pipeline"] == "income-production"
    assert event.metric_value == pytest.approx(7.859418e-08)


def test_alibi_detect_without_drift_or_without_a_model() -> None:
    calm = {"data": {"is_drift": 0, "p_val": [0.9, 0.5], "distance": [0.1, 0.2], "threshold": 0.025},
            "meta": {"name": "KSDrift"}}
    delivery = deliver(_alibi({"vars": {"model": "m"}}), {"headers": {}, "body": calm, "id": ""})
    assert delivery.events == [] and delivery.empty.endswith("alibi_drift(body.data) is empty")
    drifted = {**calm, "data": {**calm["data"], "is_drift": 1, "p_val": [0.001, 0.5]}}
    nameless = deliver(_alibi(), {"headers": {}, "body": drifted, "id": ""})
    assert nameless.events == [] and nameless.unmapped[0].startswith("alibi: alibi_drift(body.data)[0]: model (")
    assert nameless.unmapped[0].endswith("is missing")
    mmd = {"data": {"is_drift": 1, "p_val": 0.0, "distance": 0.04, "threshold": 0.05, "distance_threshold": 0.01},
           "meta": {"name": "MMDDrift"}}
    [event] = deliver(_alibi({"vars": {"model": "m", "features": FEATURES}}), {"headers": {}, "body": mmd,
                                                                              "id": ""}).events
    assert (event.feature, event.metric, event.metric_value) == ("", "p_val", 0.0)  # multivariate: model-level
