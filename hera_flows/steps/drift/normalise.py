"""Turn a monitoring tool's webhook body into drift events: one per (model, feature) that is firing.

Every tool speaks its own JSON; everything after the guard sees only :class:`DriftEvent`. A normaliser returns
a list because one delivery can carry several alerts (an Alertmanager group with N firing alerts gives N
events); resolved or healthy alerts give none. The body is untrusted: names are checked for length and
charset here (they become branch names, Lease keys, label hashes and mutex names), and a bad field is one
clear :class:`~hera_flows.steps.common.StepError` line naming the field.

Accepted shapes (see docs/patterns/drift.md for examples):

- ``alertmanager``: Prometheus Alertmanager webhook, payload version 4 — ``alerts[]`` with ``status``,
  ``labels.model``, ``labels.feature``, ``labels.severity``, optional ``labels.metric``, ``annotations.value`` and
  ``annotations.threshold``, and ``fingerprint``.
- ``evidently``: the event hera-flows' own drift monitor posts (``kind: hera-flows/drift``), one per column.
- ``arize``, ``whylabs``, ``fiddler``, ``nannyml``: these vendors do not publish a webhook body schema (or send
  alerts only to Slack/PagerDuty/e-mail); we accept the documented subset below, which their custom webhook or
  a small relay can send. Field names follow each vendor's own vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hera_flows.steps.common import StepError

SEVERITIES = ("critical", "high", "medium", "warning", "low", "info")
# Names become branches, Lease keys and mutex names: keep them to a portable charset.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FEATURE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:-]{0,127}$")
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}$")
MAX_ALERTS = 1000  # Alertmanager's max_alerts caps a group too; more than this is not a drift alert
MAX_TEXT = 500

# Vendor severity words -> ours. Anything else is an error (a typo must not silently never match).
SEVERITY_WORDS = {
    **{s: s for s in SEVERITIES},
    "page": "critical", "fatal": "critical", "emergency": "critical", "p1": "critical",
    "error": "high", "major": "high", "p2": "high",
    "moderate": "medium", "p3": "medium",
    "warn": "warning", "minor": "low", "p4": "low",
    "informational": "info", "none": "info", "p5": "info",
}
# WhyLabs severities are integers, 1 the most severe.
WHYLABS_SEVERITY = {1: "critical", 2: "high", 3: "medium", 4: "low", 5: "info"}


@dataclass(frozen=True)
class DriftEvent:
    """One firing drift signal for one (model, feature), whatever tool sent it."""

    model: str
    feature: str
    severity: str
    metric: str
    metric_value: float | None
    threshold: float | None
    source: str
    id: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.feature)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_hash(model: str, feature: str, length: int = 16) -> str:
    """A label-safe hash of a (model, feature) key (hex, lower case)."""
    return hashlib.sha256(json.dumps([model, feature]).encode("utf-8")).hexdigest()[:length]


# --- field checks -----------------------------------------------------------------------------------------


def checked_name(value: Any, where: str, pattern: re.Pattern[str] = NAME) -> str:
    if not isinstance(value, str) or not value:
        raise StepError(f"{where} is missing or not a string")
    if not pattern.match(value):
        shown = value[:60] + ("..." if len(value) > 60 else "")
        raise StepError(f"{where} {shown!r} is not a valid name (1-128 characters: letters, digits, '.', '_', '-')")
    return value


def _number(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise StepError(f"{where} must be a number, not a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value.strip())
        except ValueError:
            raise StepError(f"{where} {value!r} is not a number") from None
    else:
        raise StepError(f"{where} must be a number")
    if not math.isfinite(number):
        raise StepError(f"{where} must be a finite number")
    return number


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def severity(value: Any, where: str) -> str:
    """Our severity word for a vendor's; unknown words are an error."""
    if isinstance(value, str) and value.strip().lower() in SEVERITY_WORDS:
        return SEVERITY_WORDS[value.strip().lower()]
    raise StepError(f"{where} {str(value)[:40]!r} is not a known severity ({', '.join(SEVERITIES)})")


def _event_id(value: Any, where: str, fallback: str) -> str:
    if value is None or value == "":
        return fallback
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return checked_name(value, where, EVENT_ID)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StepError(f"{where} must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise StepError(f"{where} must be a JSON list")
    if len(value) > MAX_ALERTS:
        raise StepError(f"{where} has {len(value)} entries (more than {MAX_ALERTS})")
    return value


def _fallback_id(source: str, *parts: Any) -> str:
    return f"{source}-" + hashlib.sha256(json.dumps(parts, default=str).encode("utf-8")).hexdigest()[:16]


# --- vendors ----------------------------------------------------------------------------------------------


def alertmanager(body: dict[str, Any]) -> list[DriftEvent]:
    """Alertmanager webhook v4: one event per *firing* alert of the group."""
    version = body.get("version")
    if version not in (None, "4"):
        raise StepError(f"Alertmanager payload version {str(version)[:10]!r} is not supported (expected '4')")
    alerts = _list(body.get("alerts"), "alertmanager: 'alerts'")
    events = []
    for index, raw in enumerate(alerts):
        where = f"alertmanager: alerts[{index}]"
        alert = _object(raw, where)
        if alert.get("status") != "firing":
            continue  # resolved alerts never trigger
        labels = _object(alert.get("labels"), f"{where}.labels")
        annotations = alert.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        model = checked_name(labels.get("model"), f"{where}.labels.model")
        feature = checked_name(labels.get("feature"), f"{where}.labels.feature", FEATURE)
        metric = checked_name(labels.get("metric") or labels.get("alertname") or "drift", f"{where}.labels.metric")
        events.append(DriftEvent(
            model=model,
            feature=feature,
            severity=severity(labels.get("severity"), f"{where}.labels.severity"),
            metric=metric,
            metric_value=_number(annotations.get("value"), f"{where}.annotations.value"),
            threshold=_number(annotations.get("threshold"), f"{where}.annotations.threshold"),
            source="alertmanager",
            id=_event_id(alert.get("fingerprint"), f"{where}.fingerprint",
                         _fallback_id("alertmanager", model, feature, alert.get("startsAt"))),
            details={"summary": _text(annotations.get("summary")),
                     "description": _text(annotations.get("description")),
                     "starts_at": _text(alert.get("startsAt"), 40),
                     "generator_url": _text(alert.get("generatorURL"))},
        ))
    return events


def evidently(body: dict[str, Any]) -> list[DriftEvent]:
    """hera-flows' drift monitor: ``{"kind": "hera-flows/drift", "model", "feature", "metric", "value",
    "threshold", "severity", "id", "drift_share", "missing_share", ...}``, one column per event."""
    if body.get("kind") != "hera-flows/drift":
        raise StepError("evidently: the body is not a hera-flows drift monitor event (kind 'hera-flows/drift')")
    if body.get("drifted") is False:
        return []
    model = checked_name(body.get("model"), "evidently: 'model'")
    feature = checked_name(body.get("feature"), "evidently: 'feature'", FEATURE)
    details = {k: v for k in ("drift_share", "missing_share", "reference_missing_share", "method", "reference_rows",
                              "current_rows", "sampled", "report_id", "dtype", "reference_dtype")
               if (v := body.get(k)) is not None
               and (isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 200))}
    return [DriftEvent(
        model=model,
        feature=feature,
        severity=severity(body.get("severity"), "evidently: 'severity'"),
        metric=checked_name(body.get("metric") or "drift_score", "evidently: 'metric'"),
        metric_value=_number(body.get("value"), "evidently: 'value'"),
        threshold=_number(body.get("threshold"), "evidently: 'threshold'"),
        source="evidently",
        id=_event_id(body.get("id"), "evidently: 'id'", _fallback_id("evidently", model, feature)),
        details=details,
    )]


def arize(body: dict[str, Any]) -> list[DriftEvent]:
    """Arize monitor alert (subset): ``{"model_id", "feature_name" | "dimension", "metric", "metric_value",
    "threshold", "severity", "status": "triggered", "monitor_id", "monitor_name"}``."""
    status = str(body.get("status", "triggered")).lower()
    if status not in ("triggered", "firing"):
        return []
    model = checked_name(body.get("model_id"), "arize: 'model_id'")
    feature = checked_name(body.get("feature_name") or body.get("dimension"), "arize: 'feature_name'", FEATURE)
    return [DriftEvent(
        model=model,
        feature=feature,
        severity=severity(body.get("severity", "high"), "arize: 'severity'"),
        metric=checked_name(body.get("metric") or "drift", "arize: 'metric'"),
        metric_value=_number(body.get("metric_value"), "arize: 'metric_value'"),
        threshold=_number(body.get("threshold"), "arize: 'threshold'"),
        source="arize",
        id=_event_id(body.get("monitor_id"), "arize: 'monitor_id'", _fallback_id("arize", model, feature)),
        details={"monitor_name": _text(body.get("monitor_name"))},
    )]


def whylabs(body: dict[str, Any]) -> list[DriftEvent]:
    """WhyLabs monitor notification (subset): ``{"datasetId", "monitorId", "severity": 1-5, "anomalies":
    [{"column", "metric", "value", "threshold", "analysisId"}]}`` — one event per anomaly."""
    model = checked_name(body.get("datasetId"), "whylabs: 'datasetId'")
    raw_severity = body.get("severity", 3)
    if isinstance(raw_severity, int) and not isinstance(raw_severity, bool):
        if raw_severity not in WHYLABS_SEVERITY:
            raise StepError(f"whylabs: 'severity' {raw_severity} is not 1-5")
        level = WHYLABS_SEVERITY[raw_severity]
    else:
        level = severity(raw_severity, "whylabs: 'severity'")
    events = []
    for index, raw in enumerate(_list(body.get("anomalies"), "whylabs: 'anomalies'")):
        where = f"whylabs: anomalies[{index}]"
        item = _object(raw, where)
        feature = checked_name(item.get("column"), f"{where}.column", FEATURE)
        events.append(DriftEvent(
            model=model, feature=feature, severity=level,
            metric=checked_name(item.get("metric") or "drift", f"{where}.metric"),
            metric_value=_number(item.get("value"), f"{where}.value"),
            threshold=_number(item.get("threshold"), f"{where}.threshold"),
            source="whylabs",
            id=_event_id(item.get("analysisId"), f"{where}.analysisId", _fallback_id("whylabs", model, feature)),
            details={"monitor_id": _text(body.get("monitorId"), 128)},
        ))
    return events


def fiddler(body: dict[str, Any]) -> list[DriftEvent]:
    """Fiddler alert (subset): ``{"model_name", "project_name", "alert_rule": {"name", "metric_id",
    "columns": [...]}, "metric_value", "threshold", "severity": "CRITICAL" | "WARNING", "alert_id"}``.
    Data-integrity metrics (``null_violation_count``, ``type_violation_count``, ``range_violation_count``) are
    kept as the metric, so the context step can recognise an upstream data bug."""
    if str(body.get("status", "triggered")).lower() in ("resolved", "cleared", "ok"):
        return []
    model = checked_name(body.get("model_name"), "fiddler: 'model_name'")
    rule = _object(body.get("alert_rule", {}), "fiddler: 'alert_rule'")
    columns = rule.get("columns") or ([body["column"]] if body.get("column") else [])
    columns = _list(columns, "fiddler: 'alert_rule.columns'")
    events = []
    for index, column in enumerate(columns):
        feature = checked_name(column, f"fiddler: alert_rule.columns[{index}]", FEATURE)
        events.append(DriftEvent(
            model=model, feature=feature,
            severity=severity(body.get("severity"), "fiddler: 'severity'"),
            metric=checked_name(rule.get("metric_id") or "jsd", "fiddler: 'alert_rule.metric_id'"),
            metric_value=_number(body.get("metric_value"), "fiddler: 'metric_value'"),
            threshold=_number(body.get("threshold"), "fiddler: 'threshold'"),
            source="fiddler",
            id=_event_id(body.get("alert_id"), "fiddler: 'alert_id'", _fallback_id("fiddler", model, feature)),
            details={"project": _text(body.get("project_name"), 128), "rule": _text(rule.get("name"), 200)},
        ))
    return events


def nannyml(body: dict[str, Any]) -> list[DriftEvent]:
    """NannyML Cloud alert (subset): ``{"model_name", "column_name", "metric", "value", "upper_threshold",
    "lower_threshold", "alert": true, "severity", "run_id"}``; ``alert: false`` is not an alert."""
    if body.get("alert") is False:
        return []
    model = checked_name(body.get("model_name"), "nannyml: 'model_name'")
    feature = checked_name(body.get("column_name"), "nannyml: 'column_name'", FEATURE)
    value = _number(body.get("value"), "nannyml: 'value'")
    upper = _number(body.get("upper_threshold"), "nannyml: 'upper_threshold'")
    lower = _number(body.get("lower_threshold"), "nannyml: 'lower_threshold'")
    threshold = lower if (value is not None and lower is not None and value < lower) else upper
    return [DriftEvent(
        model=model, feature=feature,
        severity=severity(body.get("severity", "high"), "nannyml: 'severity'"),
        metric=checked_name(body.get("metric") or "jensen_shannon", "nannyml: 'metric'"),
        metric_value=value, threshold=threshold, source="nannyml",
        id=_event_id(body.get("run_id"), "nannyml: 'run_id'", _fallback_id("nannyml", model, feature)),
        details={"lower_threshold": lower, "upper_threshold": upper},
    )]


NORMALISERS: dict[str, Callable[[dict[str, Any]], list[DriftEvent]]] = {
    "alertmanager": alertmanager,
    "evidently": evidently,
    "arize": arize,
    "whylabs": whylabs,
    "fiddler": fiddler,
    "nannyml": nannyml,
}
SOURCES = tuple(NORMALISERS)


def normalise(source: str, body: str | dict[str, Any]) -> list[DriftEvent]:
    """The firing drift events in ``body`` sent by ``source``; a malformed body is one clear StepError."""
    if source not in NORMALISERS:
        raise StepError(f"unknown drift source {source[:40]!r} (known: {', '.join(SOURCES)})")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise StepError(f"{source}: the event body is not JSON ({exc.msg} at character {exc.pos})") from None
    return NORMALISERS[source](_object(body, f"{source}: the event body"))
