"""Listing the production models costs ceil(N / 1000) MLflow requests, counted by a real HTTP proxy between the
step and a real MLflow server holding 200 registered models (aliases, legacy stages, neither)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.fairness import list_models
from tests.support.mlflow_models import unique_model_name
from tests.support.settings import generated_flags

pytestmark = pytest.mark.slow
MODELS = 200


class CountingProxy:
    """Forwards every request to ``target`` and counts them by method and path."""

    def __init__(self, target: str) -> None:
        self.counts: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.counts[f"{self.command} {self.path.split('?')[0]}"] += 1
                request = urllib.request.Request(target + self.path, data=body, method=self.command,
                                                 headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                        status, payload, ctype = response.status, response.read(), response.headers.get("Content-Type")
                except urllib.error.HTTPError as exc:
                    status, payload, ctype = exc.code, exc.read(), exc.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def registry_of_200(mlflow_server):  # noqa: ANN001, ANN201
    client = mlflow_server.client()
    prefix = unique_model_name("fleet")
    expected = {}
    for i in range(MODELS):
        name = f"{prefix}-{i:03d}"
        client.create_registered_model(name, tags={"fairness.dataset": f"/data/{i}.parquet", "team": "x"})
        if i % 4 == 0:  # every 4th: alias production on its second version
            client.create_model_version(name, source=f"s3://models/{name}/1")
            client.create_model_version(name, source=f"s3://models/{name}/2")
            client.set_registered_model_alias(name, "production", "2")
            expected[name] = ("2", "@production")
        elif i % 10 == 1:  # a few legacy-stage models
            client.create_model_version(name, source=f"s3://models/{name}/1")
            client.transition_model_version_stage(name, "1", "Production")
            expected[name] = ("1", "stage:Production")
    return prefix, expected


def test_listing_200_models_takes_one_request(mlflow_server, registry_of_200) -> None:
    prefix, expected = registry_of_200
    proxy = CountingProxy(mlflow_server.uri)
    try:
        found = list_models.list_production_models(proxy.url, ["production"], ["Production"], deadline=1e12)
    finally:
        proxy.close()
    mine = {m["name"]: (m["version"], m["selector"]) for m in found if m["name"].startswith(prefix)}
    assert mine == expected
    entry = next(m for m in found if m["name"].startswith(prefix))
    assert set(entry["tags"]) == {"fairness.dataset"}  # only the fairness.* tags travel on
    total = sum(proxy.counts.values())
    print(f"\nMLflow requests to list {MODELS}+ registered models: {total} {dict(proxy.counts)}")
    registered = len(mlflow_server.client().search_registered_models(max_results=1000))
    assert total <= 2 + -(-registered // 1000)
    assert set(proxy.counts) == {"GET /api/2.0/mlflow/registered-models/search"}


def test_small_pages_are_followed(mlflow_server, registry_of_200) -> None:
    prefix, expected = registry_of_200
    proxy = CountingProxy(mlflow_server.uri)
    try:
        found = list_models.list_production_models(proxy.url, ["production"], [], page_size=50, deadline=1e12)
    finally:
        proxy.close()
    assert {m["name"] for m in found if m["name"].startswith(prefix)} == {
        n for n, (_, s) in expected.items() if s == "@production"}
    registered = len(mlflow_server.client().search_registered_models(max_results=1000))
    assert sum(proxy.counts.values()) == -(-registered // 50)  # MLflow gives no token after the last full page


def test_the_step_writes_the_fan_out_list(mlflow_server, registry_of_200, tmp_path: Path) -> None:
    # The run's date, week, branch and title come from the guard (tests/fairness/test_guard.py).
    code = list_models.main([*generated_flags("fairness-list-models"), f"--tracking-uri={mlflow_server.uri}",
                             "--aliases=production", "--stages=", "--max-models=1000", f"--outputs={tmp_path}"])
    assert code == 0
    models = json.loads((tmp_path / "models").read_text())
    assert int((tmp_path / "count").read_text()) == len(models) >= MODELS // 4
    # one pod per model: no shards folder, and no shard ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["count", "models", "shard-ids"]
    assert (tmp_path / "shard-ids").read_text() == "[]"
    with pytest.raises(StepError, match=r"more than --max-models=3: .*configure an artifact repository "
                                        r"\(`artifacts.repository`"):
        list_models.main([*generated_flags("fairness-list-models"), f"--tracking-uri={mlflow_server.uri}",
                          "--max-models=3", f"--outputs={tmp_path}"])


def test_with_an_artifact_repository_the_list_is_split_into_shards(mlflow_server, registry_of_200,
                                                                   tmp_path: Path) -> None:
    code = list_models.main([*generated_flags("fairness-list-models"), f"--tracking-uri={mlflow_server.uri}",
                             "--aliases=production", "--stages=", "--max-models=100000", "--models-per-pod=7",
                             f"--outputs={tmp_path}"])
    assert code == 0
    models = json.loads((tmp_path / "models").read_text())
    ids = json.loads((tmp_path / "shard-ids").read_text())
    assert ids == [f"{i:05d}" for i in range(-(-len(models) // 7))]
    shards = [json.loads((tmp_path / "shards" / f"{i}.json").read_text()) for i in ids]
    assert [m for shard in shards for m in shard] == models and all(len(s) <= 7 for s in shards)
    with pytest.raises(StepError, match="more than --max-models=3: raise patterns.fairness_audit.max_models"):
        list_models.main([*generated_flags("fairness-list-models"), f"--tracking-uri={mlflow_server.uri}",
                          "--max-models=3", "--models-per-pod=7", f"--outputs={tmp_path / 'again'}"])
