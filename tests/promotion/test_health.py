"""The canary health gate against a real Prometheus server (tests/support/fixtures_prometheus.py): SLIs read
through the HTTP API, recorded from an exporter's counters and histogram by real PromQL."""

from __future__ import annotations

import pytest

from hera_flows.config import PromotionRollout
from hera_flows.steps.common import StepError
from hera_flows.steps.promotion import health

SLIS = health.parse_slis([s.model_dump() for s in PromotionRollout().health])
ERROR_RATIO = 'model:request_error_ratio:rate5m{model="fraud-detector"}'
P99 = 'model:request_latency_seconds:p99_5m{model="fraud-detector"}'


def test_healthy_then_unhealthy_then_no_data(prometheus) -> None:
    prometheus.exporter.set("fraud-detector", error_ratio=0.0002, latency_seconds=0.08)
    prometheus.wait_for(ERROR_RATIO, lambda v: v < 0.001)
    prometheus.wait_for(P99, lambda v: v < 0.2)
    result = health.evaluate(prometheus.url, SLIS, model="fraud-detector", namespace="models")
    assert result.verdict == health.HEALTHY, result.summary()
    assert [r.sli.name for r in result.readings] == ["error_ratio", "latency_p99"]
    assert result.readings[0].query == ERROR_RATIO  # {model} replaced
    assert 0 < result.readings[1].value < 0.2

    prometheus.exporter.set("fraud-detector", error_ratio=0.05, latency_seconds=0.4)
    prometheus.wait_for(ERROR_RATIO, lambda v: v > 0.04)
    prometheus.wait_for(P99, lambda v: v > 0.2)
    result = health.evaluate(prometheus.url, SLIS, model="fraud-detector", namespace="models")
    assert result.verdict == health.UNHEALTHY
    assert result.readings[0].value > 0.04 and "error_ratio = 0.0" in result.summary()
    assert "> 0.001" in result.summary() and "latency_p99 = 0.4" in result.summary()

    # a model the exporter knows nothing about: no series, so no step is taken on silence
    result = health.evaluate(prometheus.url, SLIS, model="churn-model", namespace="models")
    assert result.verdict == health.NO_DATA and "no series" in result.summary()


def test_a_bad_query_is_one_clear_error(prometheus) -> None:
    bad = [health.Sli("broken", "sum(rate(model_requests_total[", 1.0)]
    with pytest.raises(StepError, match="Prometheus refused the query"):
        health.evaluate(prometheus.url, bad, model="fraud-detector", namespace="models")
    matrix = [health.Sli("matrix", "model_requests_total[1m]", 1.0)]
    with pytest.raises(StepError, match="instant vector or a scalar"):
        health.evaluate(prometheus.url, matrix, model="fraud-detector", namespace="models")


def test_several_series_are_no_data_not_a_guess(prometheus) -> None:
    prometheus.exporter.set("a-model", error_ratio=0.0, latency_seconds=0.08)
    prometheus.exporter.set("b-model", error_ratio=0.0, latency_seconds=0.08)
    prometheus.wait_for('count(model_requests_total)', lambda v: v == 2)
    result = health.evaluate(prometheus.url, [health.Sli("all", "model_requests_total", 1e12)], model="a-model",
                             namespace="models")
    assert result.verdict == health.NO_DATA and "2 series" in result.summary()


def test_names_that_could_inject_promql_are_refused() -> None:
    with pytest.raises(StepError, match="not a DNS-1123 label"):
        health.render_query('x{model="{model}"}', model='a"} or vector(0) #', namespace="models")


def test_an_unreachable_prometheus_is_transient() -> None:
    from hera_flows.local.processes import free_port
    from hera_flows.steps.common import TransientError

    with pytest.raises(TransientError, match="cannot reach Prometheus"):
        health.evaluate(f"http://127.0.0.1:{free_port()}", SLIS, model="m", namespace="models")
