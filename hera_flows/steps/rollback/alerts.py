"""Production SLI alerts from an Alertmanager webhook (payload version 4), one per firing alert with a model.

The fields are read the way the drift pattern reads an Alertmanager delivery (hera_flows/steps/drift/normalise.py:
``labels.model`` checked with the same name rule, ``labels.severity`` through the same severity words,
``fingerprint`` as the id, ``annotations.summary`` / ``description`` as evidence, resolved alerts ignored), using
its helpers: when drift's mapping becomes a shared building block, :func:`sli_alerts` is the one function to
switch over. An SLI alert names no feature; ``labels.alertname`` says which SLI fired.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.drift.normalise import EVENT_ID, MAX_ALERTS, MAX_TEXT, checked_name, severity

SOURCE = "alertmanager"


@dataclass(frozen=True)
class SliAlert:
    model: str
    alertname: str
    severity: str
    id: str
    starts_at: str = ""
    details: dict[str, str] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def sli_alerts(body: str | dict[str, Any]) -> list[SliAlert]:
    """The firing alerts of an Alertmanager delivery that name a model; a bad field is one clear StepError."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError:
            raise StepError("the Alertmanager body is not JSON") from None
    if not isinstance(body, dict):
        raise StepError("the Alertmanager body must be a JSON object")
    version = body.get("version")
    if version not in (None, "4"):
        raise StepError(f"Alertmanager payload version {str(version)[:10]!r} is not supported (expected '4')")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or len(alerts) > MAX_ALERTS:
        raise StepError(f"alertmanager: 'alerts' must be a JSON list of at most {MAX_ALERTS}")
    found = []
    for index, alert in enumerate(alerts):
        where = f"alertmanager: alerts[{index}]"
        if not isinstance(alert, dict) or alert.get("status") != "firing":
            continue
        labels = alert.get("labels")
        if not isinstance(labels, dict):
            raise StepError(f"{where}.labels must be a JSON object")
        if labels.get("model") in (None, ""):
            continue  # not about one model: nothing to roll back
        model = checked_name(labels.get("model"), f"{where}.labels.model")
        alertname = checked_name(labels.get("alertname") or "sli", f"{where}.labels.alertname")
        raw_annotations = alert.get("annotations")
        annotations: dict[str, Any] = raw_annotations if isinstance(raw_annotations, dict) else {}
        fingerprint = alert.get("fingerprint")
        if isinstance(fingerprint, str) and fingerprint:
            ident = checked_name(fingerprint, f"{where}.fingerprint", EVENT_ID)
        else:
            ident = "alertmanager-" + hashlib.sha256(json.dumps([model, alertname, alert.get("startsAt")],
                                                                default=str).encode()).hexdigest()[:16]
        found.append(SliAlert(
            model=model, alertname=alertname, severity=severity(labels.get("severity"), f"{where}.labels.severity"),
            id=ident, starts_at=_text(alert.get("startsAt"), 40),
            details={"summary": _text(annotations.get("summary")), "description": _text(annotations.get("description")),
                     "generator_url": _text(alert.get("generatorURL"))},
        ))
    return found
