"""Production SLI alerts from an Alertmanager webhook (payload version 4), one per firing alert with a model.

The fields are read with the drift pattern's Alertmanager mapping (the ``alertmanager`` preset of
hera_flows/steps/drift/shapes.py, evaluated by the shared hera_flows/steps/event_mapping.py): ``labels.model``
checked with the same name rule, ``labels.severity`` through the same severity words, ``fingerprint`` as the id,
``annotations.summary`` / ``description`` as evidence, resolved alerts ignored. An SLI alert names no feature;
``labels.alertname`` says which SLI fired.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.drift.normalise import EVENT_ID, checked_name, parse_body, printable_text, severity
from hera_flows.steps.drift.shapes import PRESETS
from hera_flows.steps.event_mapping import MAX_RECORDS, Mapping, merge_specs, present

SOURCE = "alertmanager"
# Drift's Alertmanager preset without the drift-only fields: an SLI alert has a model, an alertname and evidence.
_MAPPING = Mapping.from_spec(merge_specs(PRESETS[SOURCE], {"fields": {
    "feature": None, "metric": None, "value": None, "threshold": None}}))


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


def sli_alerts(body: str | dict[str, Any]) -> list[SliAlert]:
    """The firing alerts of an Alertmanager delivery that name a model; a bad field is one clear StepError."""
    document = parse_body(SOURCE, body)
    if not isinstance(document, dict):
        raise StepError("the Alertmanager body must be a JSON object")
    version = document.get("version")
    if version not in (None, "4"):
        raise StepError(f"Alertmanager payload version {str(version)[:10]!r} is not supported (expected '4')")
    alerts = document.get("alerts")
    if not isinstance(alerts, list) or len(alerts) > MAX_RECORDS:
        raise StepError(f"alertmanager: 'alerts' must be a JSON list of at most {MAX_RECORDS}")
    records, _ = _MAPPING.apply({"body": document})  # no records: nothing firing
    found = []
    for record in records:
        values = record.values
        where = f"alertmanager: {record.where.removeprefix('body.')}"
        if not record.firing or not present(values.get("model")):
            continue  # resolved, or not about one model: nothing to roll back
        model = checked_name(values["model"], f"{where}.labels.model")
        alertname = checked_name(values.get("alertname") or "sli", f"{where}.labels.alertname")
        fingerprint = values.get("id")
        if isinstance(fingerprint, str) and fingerprint:
            ident = checked_name(fingerprint, f"{where}.fingerprint", EVENT_ID)
        else:
            ident = "alertmanager-" + hashlib.sha256(json.dumps([model, alertname, values.get("starts_at")],
                                                                default=str).encode()).hexdigest()[:16]
        found.append(SliAlert(
            model=model, alertname=alertname, severity=severity(values.get("severity"), f"{where}.labels.severity"),
            id=ident, starts_at=printable_text(values.get("starts_at"), 40),
            details={name: printable_text(values.get(name)) for name in ("summary", "description", "generator_url")},
        ))
    return found
