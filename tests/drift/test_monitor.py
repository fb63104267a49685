"""The drift monitor: a real Evidently report on real data, events POSTed to a real HTTP server on 127.0.0.1 —
only for drifted columns, with the bearer token — and nothing at all when nothing drifted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.drift.monitor import main, sample
from hera_flows.steps.drift.normalise import normalise
from tests.support.settings import generated_flags

TOKEN = "monitor-test-token"


@pytest.fixture()
def receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.end_headers()
                return
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/drift/evidently", received
    server.shutdown()
    server.server_close()


def _datasets(tmp_path: Path, *, shift: bool) -> tuple[str, str]:
    rng = np.random.default_rng(1)
    n = 3000
    reference = pd.DataFrame({"amount": rng.normal(50, 10, n), "age": rng.integers(18, 80, n),
                              "merchant": rng.choice(["a", "b", "c"], n)})
    current = pd.DataFrame({"amount": rng.normal(80 if shift else 50, 10, n), "age": rng.integers(18, 80, n),
                            "merchant": rng.choice(["a", "b", "c"], n, p=[0.8, 0.1, 0.1] if shift else None)})
    reference.to_csv(tmp_path / "reference.csv", index=False)
    current.to_parquet(tmp_path / "current.parquet")
    return str(tmp_path / "reference.csv"), str(tmp_path / "current.parquet")


@pytest.mark.slow
def test_drifted_columns_are_posted_and_others_are_not(tmp_path, receiver, monkeypatch) -> None:
    url, received = receiver
    reference, current = _datasets(tmp_path, shift=True)
    monkeypatch.setenv("HF_DRIFT_TOKEN", TOKEN)
    out = tmp_path / "out"
    assert main([*generated_flags("drift-monitor"), "--model=fraud-detector", f"--reference={reference}",
                 f"--current={current}", f"--event-url={url}", "--max-rows=2000", f"--outputs={out}"]) == 0
    scores = json.loads((out / "scores").read_text())
    assert set(scores) == {"amount", "age", "merchant"}
    assert scores["amount"]["drifted"] and scores["merchant"]["drifted"] and not scores["age"]["drifted"]
    assert sorted(e["feature"] for e in received) == ["amount", "merchant"]
    assert json.loads((out / "drifted").read_text()) == ["amount", "merchant"]
    assert (out / "posted").read_text() == "2"
    # what was posted is exactly what the guard's normaliser accepts
    for event in received:
        [normalised] = normalise("evidently", event)
        assert normalised.model == "fraud-detector" and normalised.metric_value == event["value"]
        assert event["sampled"] is True and event["current_rows"] == 3000


@pytest.mark.slow
def test_no_drift_posts_nothing(tmp_path, receiver, monkeypatch) -> None:
    url, received = receiver
    reference, current = _datasets(tmp_path, shift=False)
    monkeypatch.setenv("HF_DRIFT_TOKEN", TOKEN)
    out = tmp_path / "out"
    assert main([*generated_flags("drift-monitor"), "--model=fraud-detector", f"--reference={reference}",
                 f"--current={current}", f"--event-url={url}", f"--outputs={out}"]) == 0
    assert received == [] and (out / "posted").read_text() == "0"
    assert not any(s["drifted"] for s in json.loads((out / "scores").read_text()).values())


def test_a_wrong_token_is_one_clear_error(tmp_path, receiver, monkeypatch) -> None:
    from hera_flows.steps.drift.monitor import post_events

    url, _ = receiver
    with pytest.raises(StepError, match="refused the event for amount with HTTP 401"):
        post_events(url, "wrong", [{"model": "m", "feature": "amount", "method": "x", "value": 1.0,
                                    "threshold": 0.1}])


def test_sampling_is_deterministic_and_bounded() -> None:
    frame = pd.DataFrame({"x": range(10_000)})
    first, sampled = sample(frame, 1000, 42)
    again, _ = sample(frame, 1000, 42)
    assert sampled and len(first) == 1000 and first.equals(again)
    assert sample(frame, 20_000, 42)[1] is False


def test_missing_dataset_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DRIFT_TOKEN", TOKEN)
    with pytest.raises(StepError, match="does not exist"):
        main([*generated_flags("drift-monitor"), "--model=m", f"--reference={tmp_path}/nope.csv",
              f"--current={tmp_path}/nope.csv", "--event-url=http://127.0.0.1:9/x"])
