"""Argo custom Prometheus metrics, one catalogue for every pattern.

Argo emits template metrics after the template completes and prefixes every name with ``argo_workflows_``.
Prometheus requires that one metric name always has the same help text and type, so names, help texts and
label keys live here only; the blocks attach them. Label values are bounded vocabularies (pattern, Argo
status, guard decision, review action, triage class) — never event data, which would explode cardinality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hera.workflows import Counter, Histogram, Label

PREFIX = "argo_workflows_"  # what the Argo controller puts in front of every custom metric name
DURATION_BUCKETS = [30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # counter | histogram
    help: str
    labels: tuple[str, ...]


RUNS = MetricSpec(
    "hera_flows_runs_total", "counter", "hera-flows workflow runs by pattern and final status", ("pattern", "status")
)
RUN_DURATION = MetricSpec(
    "hera_flows_run_duration_seconds", "histogram", "hera-flows workflow run duration by pattern", ("pattern",)
)
GUARD_DECISIONS = MetricSpec(
    "hera_flows_guard_decisions_total",
    "counter",
    "hera-flows guard decisions by pattern (proceed, or why the run was skipped)",
    ("pattern", "decision"),
)
REVIEWS = MetricSpec(
    "hera_flows_reviews_total",
    "counter",
    "hera-flows pull requests and issues opened or updated, by pattern",
    ("pattern", "action"),
)
TRIAGE_CLASSES = MetricSpec(
    "hera_flows_triage_failures_total",
    "counter",
    "Failed training workflows triaged by hera-flows, by failure class",
    ("failure_class",),
)
CATALOGUE = (RUNS, RUN_DURATION, GUARD_DECISIONS, REVIEWS, TRIAGE_CLASSES)
# Argo Events' own series an alert reads (pkg/metrics/metrics.go, argoproj/argo-events): events an EventSource
# failed to process (a Kafka record that is not JSON, an event bus it could not reach) never reach a Sensor.
EVENTSOURCE_FAILURES = "argo_events_events_processing_failed_total"


def _labels(spec: MetricSpec, values: dict[str, str]) -> list[Label]:
    assert set(values) == set(spec.labels), f"{spec.name} takes labels {spec.labels}, got {sorted(values)}"
    return [Label(key=key, value=values[key]) for key in spec.labels]


# Template metrics read the template's own outputs, which exist only when it succeeded; failures are counted by
# the workflow-level run counter (status Failed/Error).
SUCCEEDED = "{{status}} == Succeeded"


def counter(spec: MetricSpec, *, when: str | None = None, **labels: str) -> Counter:
    return Counter(name=spec.name, help=spec.help, labels=_labels(spec, labels), when=when, value="1")


def workflow_metrics(pattern: str) -> list[Counter | Histogram]:
    """Emitted once per run when the workflow completes: a run counter by status, and its duration."""
    return [
        counter(RUNS, pattern=pattern, status="{{workflow.status}}"),
        Histogram(
            name=RUN_DURATION.name,
            help=RUN_DURATION.help,
            labels=_labels(RUN_DURATION, {"pattern": pattern}),
            buckets=list(DURATION_BUCKETS),
            value="{{workflow.duration}}",
        ),
    ]


def guard_metrics(pattern: str) -> list[Counter]:
    """Every run starts with the guard, so this also counts runs started; ``decision`` says proceed or why not."""
    return [counter(GUARD_DECISIONS, when=SUCCEEDED, pattern=pattern, decision="{{outputs.parameters.decision}}")]


def review_metrics(pattern: str) -> list[Counter]:
    """``action``: pr-opened, pr-updated, issue-opened, issue-updated or none (written by the review step)."""
    return [counter(REVIEWS, when=SUCCEEDED, pattern=pattern, action="{{outputs.parameters.action}}")]


def triage_metrics(output: str = "class") -> list[Counter]:
    """One count per triaged failure, by the class the classifier wrote to its output ``output``."""
    return [counter(TRIAGE_CLASSES, when=SUCCEEDED, failure_class=f"{{{{outputs.parameters.{output}}}}}")]


# --- what a platform team installs next to the workflows: alerts and a dashboard ------------------------------


def _series(spec: MetricSpec) -> str:
    return PREFIX + spec.name


def prometheus_rule(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """Alerts for the failure modes that matter: runs failing, and a flood of skipped runs (a flapping source)."""
    runs, decisions = _series(RUNS), _series(GUARD_DECISIONS)
    rules = [
        {
            "alert": "HeraFlowsRunsFailing",
            "expr": f'sum by (pattern) (increase({runs}{{status=~"Failed|Error"}}[1h])) > 3',
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "hera-flows {{ $labels.pattern }} runs are failing",
                "description": "More than 3 {{ $labels.pattern }} workflow runs failed in the last hour; "
                "see the Argo UI (label hera-flows.io/pattern={{ $labels.pattern }}).",
            },
        },
        {
            "alert": "HeraFlowsDeliveriesRejected",
            "expr": f'sum by (pattern) (increase({decisions}{{decision="rejected"}}[15m])) > 0',
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "hera-flows {{ $labels.pattern }} rejected deliveries",
                "description": "The guard rejected {{ $labels.pattern }} deliveries (bad signature, stale, replayed "
                "or malformed): someone is sending forgeries, or the webhook secret in MLflow and in the cluster "
                "differ (then every genuine promotion is rejected too). kubectl get wf -l "
                "hera-flows.io/decision=rejected shows each reason.",
            },
        },
        {
            "alert": "HeraFlowsEventsUnmapped",
            "expr": f'sum by (pattern) (increase({decisions}{{decision="skipped-unmapped"}}[1h])) > 0',
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "hera-flows {{ $labels.pattern }} received events it cannot map",
                "description": "Events reached hera-flows that name no model, or hold a name it refuses, so nothing "
                "was remediated: an alert rule without a model label, or a source whose mapping does not fit what "
                "it sends. kubectl get wf -l hera-flows.io/decision=skipped-unmapped shows each one-line reason; "
                "fix the rule's labels or the source's mapping (docs/patterns/drift.md#mapping).",
            },
        },
        {
            "alert": "HeraFlowsEventSourceDrops",
            "expr": f'sum by (eventsource_name, event_name) (increase({EVENTSOURCE_FAILURES}'
                    f'{{namespace="{namespace}"}}[15m])) > 0',
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "the EventSource {{ $labels.eventsource_name }} dropped {{ $labels.event_name }} events",
                "description": "An EventSource of hera-flows failed to process events before any Sensor saw them "
                "(e.g. a Kafka record whose value is not JSON, or the event bus unreachable); see the logs of the "
                "{{ $labels.eventsource_name }} EventSource pod.",
            },
        },
        {
            "alert": "HeraFlowsEventStorm",
            "expr": f'sum by (pattern) (increase({decisions}{{decision!~"proceed|rejected"}}[1h])) > 50',
            "for": "15m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "hera-flows {{ $labels.pattern }} is skipping many events",
                "description": "More than 50 {{ $labels.pattern }} runs were skipped by the guard in an hour "
                "(cooldown, duplicate or ceiling): an alert source is probably flapping.",
            },
        },
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "hera-flows", "namespace": namespace, "labels": dict(labels)},
        "spec": {"groups": [{"name": "hera-flows", "rules": rules}]},
    }


def grafana_dashboard() -> dict[str, Any]:
    """A small Grafana dashboard (JSON model) over the catalogue's series."""
    panels = [
        ("Runs by pattern and status", f"sum by (pattern, status) (increase({_series(RUNS)}[$__range]))"),
        ("Guard decisions", f"sum by (pattern, decision) (increase({_series(GUARD_DECISIONS)}[$__range]))"),
        ("Pull requests and issues", f"sum by (pattern, action) (increase({_series(REVIEWS)}[$__range]))"),
        ("Triaged failures by class", f"sum by (failure_class) (increase({_series(TRIAGE_CLASSES)}[$__range]))"),
        (
            "Run duration p90 (s)",
            f"histogram_quantile(0.9, sum by (le, pattern) (rate({_series(RUN_DURATION)}_bucket[1h])))",
        ),
    ]
    return {
        "title": "hera-flows",
        "uid": "hera-flows",
        "schemaVersion": 39,
        "time": {"from": "now-7d", "to": "now"},
        "panels": [
            {
                "id": index + 1,
                "type": "timeseries",
                "title": title,
                "gridPos": {"x": (index % 2) * 12, "y": (index // 2) * 8, "w": 12, "h": 8},
                "targets": [{"refId": "A", "expr": expr}],
            }
            for index, (title, expr) in enumerate(panels)
        ],
    }


def monitoring_documents(namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """PrometheusRule (needs the Prometheus Operator CRDs) and the dashboard as a ConfigMap that Grafana's
    dashboard sidecar picks up by its ``grafana_dashboard`` label."""
    dashboard = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "hera-flows-dashboard",
            "namespace": namespace,
            "labels": {**labels, "grafana_dashboard": "1"},
        },
        "data": {"hera-flows.json": json.dumps(grafana_dashboard(), indent=2, sort_keys=True) + "\n"},
    }
    return [prometheus_rule(namespace, labels), dashboard]
