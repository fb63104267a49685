"""Whether a served model is healthy enough for the next canary step: its SLIs read through the Prometheus HTTP API.

Each SLI is an instant query (``GET <prometheus>/api/v1/query?query=...``) that must return one sample no greater
than its ``max``: an error ratio under 0.1 % (availability 99.9 %), a p99 latency under 200 ms. The query text has
``{model}`` (the served name, a DNS-1123 label, so it is safe inside a PromQL string literal) and ``{namespace}``
replaced. The defaults read recording rules (``model:request_error_ratio:rate5m``,
``model:request_latency_seconds:p99_5m``), so one pair of rules maps whichever metrics the serving stack exposes
(docs/patterns/promotion.md shows them for KServe and Seldon Core 2).

The verdict is ``healthy`` (every SLI returned a sample within its bound), ``unhealthy`` (one returned more: the
canary stops) or ``no-data`` (an SLI returned nothing, NaN or several series: too little traffic yet or a query
that selects nothing; the canary waits, it never advances on silence). An unreachable Prometheus is a
TransientError (exit 75, retried): the decision is never taken without the data.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from hera_flows.steps.common import StepError, TransientError, retry

HEALTHY, UNHEALTHY, NO_DATA = "healthy", "unhealthy", "no-data"
_LABEL_VALUE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Sli:
    name: str
    query: str
    max: float


@dataclass
class Reading:
    sli: Sli
    query: str  # as sent
    value: float | None
    verdict: str
    detail: str


@dataclass
class Health:
    verdict: str
    readings: list[Reading] = field(default_factory=list)

    def summary(self) -> str:
        return "; ".join(f"{r.sli.name} {r.detail}" for r in self.readings) or "no SLI configured"

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "slis": [
            {"name": r.sli.name, "query": r.query, "max": r.sli.max, "value": r.value, "verdict": r.verdict,
             "detail": r.detail} for r in self.readings]}


def parse_slis(value: Any) -> list[Sli]:
    """The ``health`` setting: a JSON list of {name, query, max}."""
    if not isinstance(value, list) or not value:
        raise StepError("the health SLIs must be a non-empty list of {name, query, max}")
    slis = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("query"), str) or not item["query"].strip():
            raise StepError(f"a health SLI needs a query: {str(item)[:80]}")
        bound = item.get("max")
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise StepError(f"health SLI {item.get('name')!r}: max must be a number")
        slis.append(Sli(str(item.get("name") or "sli"), item["query"], float(bound)))
    return slis


def render_query(template: str, *, model: str, namespace: str) -> str:
    for value, what in ((model, "model"), (namespace, "namespace")):
        if value and not _LABEL_VALUE.match(value):
            raise StepError(f"the {what} {value[:60]!r} is not a DNS-1123 label: it cannot go into a query")
    return template.replace("{model}", model).replace("{namespace}", namespace)


def evaluate(base_url: str, slis: list[Sli], *, model: str, namespace: str, timeout_seconds: float = 10.0,
             deadline: float | None = None) -> Health:
    """Query every SLI; the overall verdict is the worst (unhealthy > no-data > healthy)."""
    import httpx

    readings = []
    with httpx.Client(timeout=timeout_seconds, follow_redirects=False) as client:
        for sli in slis:
            query = render_query(sli.query, model=model, namespace=namespace)
            value, problem = _instant(client, base_url, query, deadline)
            if value is None:
                readings.append(Reading(sli, query, None, NO_DATA, f"has no data ({problem})"))
            elif value > sli.max:
                readings.append(Reading(sli, query, value, UNHEALTHY, f"= {value:.6g} > {sli.max:g}"))
            else:
                readings.append(Reading(sli, query, value, HEALTHY, f"= {value:.6g} <= {sli.max:g}"))
    verdicts = {r.verdict for r in readings}
    overall = UNHEALTHY if UNHEALTHY in verdicts else NO_DATA if NO_DATA in verdicts else HEALTHY
    return Health(overall, readings)


def _instant(client: Any, base_url: str, query: str, deadline: float | None) -> tuple[float | None, str]:
    """(value, "") for one sample; (None, why) otherwise."""
    import httpx

    url = base_url.rstrip("/") + "/api/v1/query"

    def attempt() -> Any:
        try:
            response = client.get(url, params={"query": query})
        except httpx.HTTPError as exc:
            raise OSError(f"cannot reach Prometheus at {base_url}: {exc or type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise OSError(f"Prometheus answered HTTP {response.status_code}")
        return response

    try:
        response = retry(attempt, what=f"querying Prometheus at {base_url}", attempts=3, base_delay=1.0,
                         deadline=deadline)
    except TransientError:
        raise
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise StepError(f"Prometheus at {base_url} did not answer with JSON (HTTP {response.status_code})") from None
    if response.status_code != 200 or not isinstance(data, dict) or data.get("status") != "success":
        error = data.get("error") if isinstance(data, dict) else None
        raise StepError(f"Prometheus refused the query {query!r}: {str(error or response.status_code)[:300]}")
    result = (data.get("data") or {}).get("result")
    kind = (data.get("data") or {}).get("resultType")
    samples: list[Any]
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        samples = [result]
    elif kind == "vector" and isinstance(result, list):
        samples = [item.get("value") for item in result if isinstance(item, dict)]
    else:
        raise StepError(f"the query {query!r} must return an instant vector or a scalar, not {kind!r}")
    if not samples:
        return None, "no series"
    if len(samples) > 1:
        return None, f"{len(samples)} series: aggregate the query to one"
    try:
        value = float(samples[0][1])
    except (TypeError, ValueError, IndexError):
        return None, "an unreadable sample"
    if math.isnan(value):
        return None, "NaN (no traffic in the window?)"
    return value, ""
