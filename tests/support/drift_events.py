"""Drift alerts as Argo Events delivers them, for the drift end-to-end tests (PR mode and retrain mode)."""

from __future__ import annotations

import json


def alertmanager_event(model: str, feature: str, *, value: str = "0.5", metric: str = "psi",
                       severity: str = "critical", status: str = "firing") -> str:
    """One Alertmanager v4 group holding one alert, wrapped as the EventSource's event (header + body)."""
    body = {
        "version": "4", "status": status, "receiver": "argo-events-drift", "groupLabels": {"model": model},
        "commonLabels": {"model": model}, "truncatedAlerts": 0,
        "alerts": [{"status": status, "fingerprint": f"{feature}-{value}",
                    "labels": {"alertname": "DataDriftDetected", "model": model, "feature": feature,
                               "metric": metric, "severity": severity},
                    "annotations": {"value": value, "threshold": "0.2"},
                    "startsAt": "2026-11-22T06:15:00.000Z", "endsAt": "0001-01-01T00:00:00Z"}],
    }
    return json.dumps({"header": {"Content-Type": ["application/json"]}, "body": body}, separators=(",", ":"))
