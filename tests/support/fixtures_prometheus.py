"""pytest fixture: a real Prometheus server (Debian's package, `make prometheus`) scraping a small SLI exporter.

The exporter is a real HTTP server on 127.0.0.1 whose counters grow on every scrape the way a model server's do:
``model_requests_total``, ``model_request_errors_total`` and the histogram ``model_request_duration_seconds``, per
``model`` label. A test steers it with ``exporter.set(model, error_ratio=, latency_seconds=)``. Prometheus scrapes
it every second and evaluates the recording rules the promotion's default health queries read
(``model:request_error_ratio:rate5m``, ``model:request_latency_seconds:p99_5m``; in the tests over a 15 s window
instead of 5 m, so a change shows within seconds). ``prometheus.wait_for(query, predicate)`` polls the HTTP API
until the data shows what a test set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0)
REQUESTS_PER_SCRAPE = 100
RULES = """groups:
- name: hera-flows-sli
  interval: 1s
  rules:
  - record: model:request_error_ratio:rate5m
    expr: sum by (model) (rate(model_request_errors_total[15s])) / sum by (model) (rate(model_requests_total[15s]))
  - record: model:request_latency_seconds:p99_5m
    expr: histogram_quantile(0.99, sum by (model, le) (rate(model_request_duration_seconds_bucket[15s])))
"""


def prometheus_binary() -> str:
    for candidate in (os.environ.get("HERA_FLOWS_PROMETHEUS"), str(ROOT / ".tools/prometheus/usr/bin/prometheus"),
                      shutil.which("prometheus")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no prometheus binary: run `make prometheus` (Debian's package into .tools/prometheus), or set "
                "HERA_FLOWS_PROMETHEUS")


@dataclass
class _Model:
    error_ratio: float = 0.0
    latency_seconds: float = 0.08
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0.0))
    duration_sum: float = 0.0


class SliExporter:
    """The model servers' metrics endpoint: each scrape adds 100 requests with the configured errors and latency."""

    def __init__(self) -> None:
        self.models: dict[str, _Model] = {}
        self.lock = threading.Lock()
        self.scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = exporter.scrape().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="sli-exporter", daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def set(self, model: str, *, error_ratio: float, latency_seconds: float) -> None:
        with self.lock:
            state = self.models.setdefault(model, _Model())
            state.error_ratio, state.latency_seconds = error_ratio, latency_seconds

    def scrape(self) -> str:
        lines = ["# TYPE model_requests_total counter", "# TYPE model_request_errors_total counter",
                 "# TYPE model_request_duration_seconds histogram"]
        with self.lock:
            self.scrapes += 1
            for name, m in sorted(self.models.items()):
                m.requests += REQUESTS_PER_SCRAPE
                m.errors += REQUESTS_PER_SCRAPE * m.error_ratio
                m.duration_sum += REQUESTS_PER_SCRAPE * m.latency_seconds
                for bound in BUCKETS:
                    if m.latency_seconds <= bound:
                        m.buckets[bound] += REQUESTS_PER_SCRAPE
                label = f'model="{name}"'
                lines.append(f"model_requests_total{{{label}}} {m.requests}")
                lines.append(f"model_request_errors_total{{{label}}} {m.errors}")
                for bound in BUCKETS:
                    lines.append(f'model_request_duration_seconds_bucket{{{label},le="{bound}"}} {m.buckets[bound]}')
                lines.append(f'model_request_duration_seconds_bucket{{{label},le="+Inf"}} {m.requests}')
                lines.append(f"model_request_duration_seconds_sum{{{label}}} {m.duration_sum}")
                lines.append(f"model_request_duration_seconds_count{{{label}}} {m.requests}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class PrometheusServer:
    url: str
    exporter: SliExporter
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, query: str) -> list[Any]:
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}",
                                    timeout=5) as answer:
            data = json.loads(answer.read())
        assert data["status"] == "success", data
        return list(data["data"]["result"])

    def wait_for(self, query: str, predicate: Callable[[float], bool], timeout: float = 60.0) -> float:
        """Poll ``query`` until its single sample satisfies ``predicate``; returns the value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            result = self.query(query)
            if len(result) == 1:
                last = float(result[0]["value"][1])
                if predicate(last):
                    return last
            time.sleep(0.5)
        raise AssertionError(f"{query}: still {last!r} after {timeout:g} s; log: {self.log.read_text()[-2000:]}")


def start_prometheus(folder: Path) -> PrometheusServer:
    from hera_flows.local.processes import free_port, stop_process_group

    binary = prometheus_binary()
    exporter = SliExporter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yml").write_text(RULES, encoding="utf-8")
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{json.dumps(str(folder / 'rules.yml'))}]\n"
        "scrape_configs:\n"
        f"- job_name: model-servers\n  static_configs: [{{targets: ['{exporter.address}']}}]\n", encoding="utf-8")
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as out:  # the child keeps its own descriptor of the log
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [binary, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process_group(process)
            exporter.close()
            raise RuntimeError(f"prometheus did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    return PrometheusServer(url, exporter, process, log)


def stop_prometheus(server: PrometheusServer) -> None:
    from hera_flows.local.processes import stop_process_group

    stop_process_group(server.process)
    server.exporter.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = start_prometheus(tmp_path / "prometheus")
    try:
        yield server
    finally:
        stop_prometheus(server)
