"""Failure triage: what reading a huge log costs, and how fast the classifier is.

1. A local HTTP server streams a log of ``--log-gb`` GB and ignores any limit (the worst case: an API server or
   kubelet that does not honour ``limitBytes``). The triage reader (``kube.read_bounded``, as the context step
   uses it) reads it with the default 1 MiB limit; the baseline reads the whole body the way the client does
   with ``_preload_content=True`` (only ``--baseline-mb`` MB, so the machine survives). Reported: bytes read,
   seconds, peak RSS growth.
2. The classifier on ``--contexts`` contexts with a 16 KiB log tail each (a real traceback at the end).

Run: ``python -m benchmarks.triage``.
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LINE = b"step 123456 loss=0.123 lr=0.0001 " + b"x" * 66 + b"\n"  # 100 bytes
TRACEBACK = "Traceback (most recent call last):\n  File \"/app/train.py\", line 9, in <module>\nKeyError: 'label'\n"


def _serve(total_bytes: int) -> tuple[ThreadingHTTPServer, dict[str, int]]:
    sent = {"bytes": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = LINE * 10_000
            sent["bytes"] = 0
            try:
                while sent["bytes"] < total_bytes:
                    self.wfile.write(chunk)
                    sent["bytes"] += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, sent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_log(log_gb: float, baseline_mb: int) -> dict[str, object]:
    import urllib3

    from hera_flows.steps.triage.kube import read_bounded

    server, sent = _serve(int(log_gb * 1024**3))
    url = f"http://127.0.0.1:{server.server_address[1]}/log"
    pool = urllib3.PoolManager()
    before = _rss_mb()
    started = time.perf_counter()
    tail = read_bounded(pool.request("GET", url, preload_content=False), limit_bytes=1024 * 1024, keep_bytes=16 * 1024)
    bounded_s = time.perf_counter() - started
    time.sleep(0.3)
    bounded = {"bytes_read": tail.bytes_read, "server_sent_mb": round(sent["bytes"] / 1024**2, 1),
               "seconds": round(bounded_s, 3), "rss_growth_mb": round(_rss_mb() - before, 1),
               "kept_bytes": len(tail.text.encode())}
    server.shutdown()

    server, _ = _serve(baseline_mb * 1024**2)
    url = f"http://127.0.0.1:{server.server_address[1]}/log"
    before = _rss_mb()
    started = time.perf_counter()
    body = pool.request("GET", url).data  # what _preload_content=True does
    baseline = {"bytes_read": len(body), "seconds": round(time.perf_counter() - started, 3),
                "rss_growth_mb": round(_rss_mb() - before, 1)}
    del body
    server.shutdown()
    return {"log_gb": log_gb, "bounded": bounded, f"baseline_full_read_{baseline_mb}mb": baseline}


def bench_classify(contexts: int) -> dict[str, object]:
    from hera_flows.steps.triage.classify import classify

    tail = (LINE.decode() * 160)[-(16 * 1024 - len(TRACEBACK)):] + TRACEBACK
    context = {"evidence": ["node train: Error (exit code 1)"],
               "pods": [{"step": "train", "logs": {"main": {"tail": tail}}}]}
    started = time.perf_counter()
    for _ in range(contexts):
        result = classify(context)
    seconds = time.perf_counter() - started
    assert result.category == "code-bug"
    return {"contexts": contexts, "seconds": round(seconds, 3), "per_context_ms": round(1000 * seconds / contexts, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-gb", type=float, default=2.0)
    parser.add_argument("--baseline-mb", type=int, default=200)
    parser.add_argument("--contexts", type=int, default=2000)
    args = parser.parse_args(argv)
    report = {"log": bench_log(args.log_gb, args.baseline_mb), "classify": bench_classify(args.contexts)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
