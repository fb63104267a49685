"""The drift event shapes hera-flows knows: each a default mapping (hera_flows/steps/event_mapping.py) from what a
tool sends to the fields of a drift event, which a source's ``mapping`` may override field by field.

The fields a drift mapping fills: ``model`` (required), ``feature`` (absent: a model-level alert, remediated per
model with the key ``model@*``), ``severity``, ``metric``, ``value``, ``threshold``, ``id``, ``direction``
(``above``: drift when the value is at or above the threshold, the default; ``below``: when under it, e.g. a
p-value); any other field is kept as a detail of the event (shown in the PR).

The document an expression reads: ``body`` (the payload), ``id`` (the event's id: Argo Events' event context id,
e.g. ``<eventsource>:<event>:<broker>:<topic>:<partition>:<offset>`` for Kafka), and per transport either
``header`` (webhook: Go-canonical names, each a list of values, ``header["Ce-Id"][0]``) or ``topic``, ``key``,
``headers`` (Kafka: record headers, one string each). ``vars`` holds the source's configured constants.
"""

from __future__ import annotations

from typing import Any

# Alibi-Detect (alibi_detect/base.py concept_drift_dict, cd/base.py predict): data.is_drift, p_val, distance,
# threshold; per-feature arrays for univariate detectors (batch: is_drift an int and threshold the corrected
# p-value threshold; drift_type='feature': is_drift an array), scalars for multivariate ones, test_stat for online
# ones. ../shared/fixtures/alibi-detect/README.md.
_ALIBI_FIELDS = {
    "feature": "vars.features[item.index]",
    "severity": 'vars.severity ?? "high"',
    "metric": "item.metric",
    "value": "item.value",
    "threshold": "item.threshold",
    "direction": "item.direction",
    "drifted_features": "item.drifted",
}

PRESETS: dict[str, dict[str, Any]] = {
    # Alertmanager webhook v4 (webhook_config): one record per alert of the group, firing ones only.
    "alertmanager": {
        "match": 'body.version == "4" or body.version == null',
        "each": "body.alerts",
        "when": 'item.status == "firing"',
        "fields": {
            "model": "item.labels.model",
            "feature": "item.labels.feature",
            "severity": "item.labels.severity",
            "metric": 'item.labels.metric ?? item.labels.alertname ?? "drift"',
            "value": "item.annotations.value",
            "threshold": "item.annotations.threshold",
            "id": "item.fingerprint",
            "alertname": "item.labels.alertname",
            "summary": "item.annotations.summary",
            "description": "item.annotations.description",
            "starts_at": "item.startsAt",
            "generator_url": "item.generatorURL",
        },
    },
    # hera-flows' own drift monitor (Evidently DataDriftPreset), one column per event.
    "evidently": {
        "match": 'body.kind == "hera-flows/drift"',
        "when": "body.drifted != false",
        "fields": {
            "model": "body.model",
            "feature": "body.feature",
            "severity": "body.severity",
            "metric": 'body.metric ?? "drift_score"',
            "value": "body.value",
            "threshold": "body.threshold",
            "id": "body.id",
            **{name: f"body.{name}" for name in ("drift_share", "missing_share", "reference_missing_share", "method",
                                                 "reference_rows", "current_rows", "sampled", "report_id", "dtype",
                                                 "reference_dtype")},
        },
    },
    # Arize monitor alert (the documented subset, docs/patterns/drift.md).
    "arize": {
        "when": 'lower(string(body.status ?? "triggered")) in ["triggered", "firing"]',
        "fields": {
            "model": "body.model_id",
            "feature": "body.feature_name ?? body.dimension",
            "severity": 'body.severity ?? "high"',
            "metric": 'body.metric ?? "drift"',
            "value": "body.metric_value",
            "threshold": "body.threshold",
            "id": "body.monitor_id",
            "monitor_name": "body.monitor_name",
        },
    },
    # WhyLabs monitor notification (subset): one record per anomaly; severity 1 (most severe) to 5.
    "whylabs": {
        "each": "body.anomalies",
        "fields": {
            "model": "body.datasetId",
            "feature": "item.column",
            "severity": "body.severity ?? 3",
            "metric": 'item.metric ?? "drift"',
            "value": "item.value",
            "threshold": "item.threshold",
            "id": "item.analysisId",
            "monitor_id": "body.monitorId",
        },
    },
    # Fiddler alert (subset): one record per column of the alert rule.
    "fiddler": {
        "when": 'not (lower(string(body.status ?? "triggered")) in ["resolved", "cleared", "ok"])',
        "each": "body.alert_rule.columns ?? if(body.column != null, [body.column], [])",
        "fields": {
            "model": "body.model_name",
            "feature": "item",
            "severity": "body.severity",
            "metric": 'body.alert_rule.metric_id ?? "jsd"',
            "value": "body.metric_value",
            "threshold": "body.threshold",
            "id": "body.alert_id",
            "project": "body.project_name",
            "rule": "body.alert_rule.name",
        },
    },
    # NannyML Cloud alert (subset): the lower threshold counts when the value fell under it.
    "nannyml": {
        "when": "body.alert != false",
        "fields": {
            "model": "body.model_name",
            "feature": "body.column_name",
            "severity": 'body.severity ?? "high"',
            "metric": 'body.metric ?? "jensen_shannon"',
            "value": "body.value",
            "threshold": "if(number(body.value) < number(body.lower_threshold), body.lower_threshold, "
                         "body.upper_threshold)",
            "direction": 'if(number(body.value) < number(body.lower_threshold), "below", "above")',
            "id": "body.run_id",
            "lower_threshold": "body.lower_threshold",
            "upper_threshold": "body.upper_threshold",
        },
    },
    # Alibi-Detect's predict() dict as the body: the Seldon Core v1 / KServe alibi-detect-server's CloudEvent (its
    # ce-* headers name the model), or a detector publishing its result to a Kafka topic.
    "alibi-detect": {
        "each": "alibi_drift(body.data)",
        "fields": {
            "model": 'vars.model ?? header["Ce-Inferenceservicename"][0] ?? header["Ce-Modelid"][0] '
                     '?? headers.ce_inferenceservicename ?? headers["ce-inferenceservicename"] ?? headers.model',
            **_ALIBI_FIELDS,
            "id": 'header["Ce-Id"][0] ?? headers.ce_id ?? headers["ce-id"] ?? id',
            "detector": "body.meta.name",
        },
    },
    # An Open Inference Protocol (V2) response of an Alibi-Detect detector served by MLServer: what Seldon Core 2
    # writes to seldon.<namespace>.model.<name>.outputs (REST JSON, or protobuf JSON as `seldon pipeline inspect`
    # prints it). The detector's outputs are the predict() dict's data; the model it watches is not in it.
    "seldon-v2": {
        "each": "alibi_drift(inference_v2(body).data)",
        "fields": {
            "model": "vars.model ?? headers.model",
            **_ALIBI_FIELDS,
            "id": "body.id ?? headers[\"x-request-id\"] ?? id",
            "detector": "inference_v2(body).meta.name",
            "detector_model": "inference_v2(body).model_name",
            "pipeline": "headers.pipeline",
        },
    },
}
SHAPES = tuple(PRESETS)
# The tools with an endpoint of their own and their shape (the endpoint's name is the shape's).
NAMED_TOOLS = ("alertmanager", "evidently", "arize", "whylabs", "fiddler", "nannyml")
# Extra severity words per shape (besides the common ones in normalise.SEVERITY_WORDS).
SHAPE_SEVERITIES: dict[str, dict[str, str]] = {
    "whylabs": {"1": "critical", "2": "high", "3": "medium", "4": "low", "5": "info"},
}


def _drifted(values: Any) -> bool:
    return values is True or (isinstance(values, (int, float)) and not isinstance(values, bool) and values >= 1)


def alibi_drift(data: Any) -> list[dict[str, Any]]:
    """The drift records of an Alibi-Detect ``data`` dict: one per drifted feature when the detector reports per
    feature (``index`` its position), else one for the whole model (``index`` null); none without drift."""
    if not isinstance(data, dict):
        return []
    is_drift, p_val, distance, threshold = (data.get(k) for k in ("is_drift", "p_val", "distance", "threshold"))

    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    per_feature = isinstance(p_val, list) or isinstance(is_drift, list)
    if per_feature:
        flags = is_drift if isinstance(is_drift, list) else None
        if flags is None and not _drifted(is_drift):
            return []
        count = len(flags) if flags is not None else len(p_val) if isinstance(p_val, list) else 0
        limit = number(threshold)
        drifted = []
        for i in range(min(count, 10_000)):
            p = number(p_val[i]) if isinstance(p_val, list) and i < len(p_val) else None
            if flags is not None:
                hit = _drifted(flags[i])
            else:
                hit = p is not None and limit is not None and p < limit
            if hit:
                drifted.append(i)
        listed = ",".join(str(i) for i in drifted)
        if not drifted:  # the batch drifted, but no single feature below the corrected threshold
            return [{"index": None, "metric": "p_val", "value": min((number(p) or 1.0) for p in p_val)
                     if isinstance(p_val, list) and p_val else None, "threshold": limit, "direction": "below",
                     "drifted": ""}]
        return [{"index": i,
                 "metric": "p_val",
                 "value": number(p_val[i]) if isinstance(p_val, list) and i < len(p_val) else None,
                 "threshold": limit,
                 "direction": "below",
                 "distance": number(distance[i]) if isinstance(distance, list) and i < len(distance) else None,
                 "drifted": listed}
                for i in drifted]
    if not _drifted(is_drift):
        return []
    if number(p_val) is not None:
        return [{"index": None, "metric": "p_val", "value": number(p_val), "threshold": number(threshold),
                 "direction": "below", "distance": number(distance), "drifted": ""}]
    if number(data.get("test_stat")) is not None:  # online detectors: drift when the statistic exceeds it
        return [{"index": None, "metric": "test_stat", "value": number(data["test_stat"]),
                 "threshold": number(threshold), "direction": "above", "drifted": ""}]
    return [{"index": None, "metric": "distance", "value": number(distance),
             "threshold": number(data.get("distance_threshold")), "direction": "above", "drifted": ""}]


FUNCTIONS = {"alibi_drift": alibi_drift}
