"""SLI alerts from Alertmanager deliveries, read with the drift pattern's mapping (real v4 payload shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.rollback.alerts import sli_alerts


def test_the_real_fixture_gives_one_alert_per_firing_alert_with_a_model(fixtures_dir: Path) -> None:
    body = json.loads((fixtures_dir / "alertmanager" / "drift_alert_firing.json").read_text())
    alerts = sli_alerts(body)
    firing = [a for a in body["alerts"] if a["status"] == "firing" and a["labels"].get("model")]
    assert len(alerts) == len(firing) > 0
    first = alerts[0]
    assert (first.model, first.alertname, first.severity, first.id) == (
        "recommendation", "DataDriftDetected", "high", "5b1b5b2c7f0e6a1d")
    assert first.details["generator_url"].startswith("http://prometheus.monitoring.svc:9090/graph")
    assert sli_alerts(json.loads((fixtures_dir / "alertmanager" / "drift_alert_resolved.json").read_text())) == []


def sli(model: object = "fraud-detector", severity: object = "critical", status: str = "firing") -> dict:
    return {"version": "4", "status": status, "alerts": [
        {"status": status, "labels": {"alertname": "ModelErrorRateHigh", "model": model, "severity": severity},
         "annotations": {"summary": "error ratio 4 % > 0.1 %"}, "startsAt": "2026-12-01T10:00:00Z",
         "fingerprint": "a1b2c3"}]}


def test_an_sli_alert_without_a_feature_is_read() -> None:
    [alert] = sli_alerts(json.dumps(sli()))
    assert (alert.model, alert.alertname, alert.severity) == ("fraud-detector", "ModelErrorRateHigh", "critical")


@pytest.mark.parametrize(("body", "message"), [
    (sli(model="bad model!"), "labels.model"),
    (sli(severity="apocalyptic"), "not a known severity"),
    ({"version": "3", "alerts": []}, "version '3' is not supported"),
    ({"version": "4", "alerts": {}}, "'alerts' must be a JSON list"),
])
def test_bad_fields_are_one_clear_error(body: dict, message: str) -> None:
    with pytest.raises(StepError, match=message):
        sli_alerts(body)


def test_alerts_without_a_model_are_not_rollbacks() -> None:
    body = sli()
    del body["alerts"][0]["labels"]["model"]
    assert sli_alerts(body) == []
