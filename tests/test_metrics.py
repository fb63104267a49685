"""Custom Prometheus metrics in the generated templates, and the alerts/dashboard that read them.

Argo rejects (or silently drops) metrics whose names are not `[a-zA-Z0-9_]`, and Prometheus refuses a name
registered twice with different help texts or types — across every template of every pattern. Label values
must be bounded: constants, Argo's own status/duration, or the template's own declared outputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hera_flows.blocks import metrics
from hera_flows.config import parse_config
from hera_flows.generate import render
from tests.conftest import ROOT

CONFIG = ROOT / "config" / "flows.yaml"
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
ALLOWED_VARIABLES = {"{{workflow.status}}", "{{workflow.duration}}", "{{status}}"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render(parse_config(CONFIG.read_text(), str(CONFIG)))


def _workflow_docs(rendered: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, text in rendered.items():
        for doc in yaml.safe_load_all(text):
            if doc["kind"] in ("WorkflowTemplate", "CronWorkflow"):
                yield path, doc


def _metrics_of(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """(template or None for workflow level, metric) for every metric in a WorkflowTemplate/CronWorkflow."""
    spec = doc["spec"].get("workflowSpec", doc["spec"])
    for metric in spec.get("metrics", {}).get("prometheus", []):
        yield None, metric
    for template in spec.get("templates", []):
        for metric in template.get("metrics", {}).get("prometheus", []):
            yield template, metric


def _check_value(value: str, template: dict[str, Any] | None, where: str) -> None:
    for variable in re.findall(r"{{[^}]*}}", value):
        if variable in ALLOWED_VARIABLES:
            continue
        match = re.fullmatch(r"{{outputs\.parameters\.([A-Za-z0-9_-]+)}}", variable)
        assert match and template is not None, f"{where}: unbounded or unknown variable {variable}"
        declared = {p["name"] for p in template.get("outputs", {}).get("parameters", [])}
        assert match.group(1) in declared, f"{where}: {variable} is not an output of template {template['name']}"


def test_every_metric_is_from_the_catalogue_and_consistent(rendered: dict[str, str]) -> None:
    catalogue = {spec.name: spec for spec in metrics.CATALOGUE}
    seen: dict[str, tuple[str, str]] = {}
    count = 0
    for path, doc in _workflow_docs(rendered):
        for template, metric in _metrics_of(doc):
            where = f"{path}: {metric['name']}"
            assert NAME.match(metric["name"]), where
            spec = catalogue.get(metric["name"])
            assert spec is not None, f"{where} is not in hera_flows/blocks/metrics.py CATALOGUE"
            kind = next(k for k in ("counter", "gauge", "histogram") if k in metric)
            assert (kind, metric["help"]) == (spec.kind, spec.help), where
            assert seen.setdefault(metric["name"], (kind, metric["help"])) == (kind, metric["help"]), where
            assert tuple(label["key"] for label in metric.get("labels", [])) == spec.labels, where
            for label in metric.get("labels", []):
                assert NAME.match(label["key"]), where
                _check_value(label["value"], template, where)
            _check_value(metric[kind]["value"], template, where)
            if template is not None:
                # template metrics read the template's outputs: only emitted when it succeeded
                assert metric.get("when") == metrics.SUCCEEDED, where
            count += 1
    assert count >= 4


def test_every_pattern_counts_runs_guard_decisions_and_reviews(rendered: dict[str, str]) -> None:
    for path, doc in _workflow_docs(rendered):
        if doc["kind"] != "WorkflowTemplate":
            continue
        names = {metric["name"] for _, metric in _metrics_of(doc)}
        assert {metrics.RUNS.name, metrics.RUN_DURATION.name} <= names, path
        templates = {t["name"]: t for t in doc["spec"]["templates"]}
        if "guard" in templates:
            assert metrics.GUARD_DECISIONS.name in names, path
        if "review" in templates:
            assert metrics.REVIEWS.name in names, path


def test_alerts_and_dashboard_query_only_series_we_emit(rendered: dict[str, str]) -> None:
    rule, dashboard = list(yaml.safe_load_all(rendered["generated/monitoring/monitoring.yaml"]))
    assert rule["kind"] == "PrometheusRule" and rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert dashboard["kind"] == "ConfigMap" and dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    emitted = {metrics.PREFIX + spec.name for spec in metrics.CATALOGUE}
    expressions = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    board = json.loads(dashboard["data"]["hera-flows.json"])
    expressions += [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    assert len(expressions) >= 6
    for expr in expressions:
        series = set(re.findall(r"\b(argo_workflows_[a-z0-9_]+?)(?:_bucket)?\b(?=[{\[)])", expr))
        events = set(re.findall(r"\b(argo_events_[a-z0-9_]+)\b(?=[{\[)])", expr))
        assert (series or events) and series <= emitted and events <= {metrics.EVENTSOURCE_FAILURES}, expr
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert r["alert"] and r["labels"]["severity"] and r["annotations"]["summary"]


def test_a_metric_outside_the_catalogue_is_caught(rendered: dict[str, str]) -> None:
    path, doc = next((p, d) for p, d in _workflow_docs(rendered) if d["kind"] == "WorkflowTemplate")
    doc["spec"]["metrics"]["prometheus"].append({"name": "bad-name", "help": "x", "counter": {"value": "1"}})
    with pytest.raises(AssertionError):
        test_every_metric_is_from_the_catalogue_and_consistent({path: yaml.safe_dump(doc)})
