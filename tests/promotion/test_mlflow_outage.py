"""MLflow dies in the middle of the promotion's context step: the step retries within its deadline, then reports a
transient failure (exit 75, one line, no traceback); the generated WorkflowTemplate's retryStrategy retries the
task, and the workflow ends Failed with that clear message and nothing downstream run.

Each test starts its own MLflow server (the session's shared `mlflow_server` is never killed) behind a small TCP
relay that lets the step's first MLflow request through and kills the real server (its whole process group) when
the second request arrives, then stops listening: from then on the address refuses connections, as a crashed
server's does. The kill is driven by the step's own traffic, so it lands mid-step on every run, on any machine.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import run_workflow
from hera_flows.steps.common import EXIT_TRANSIENT
from tests.support.fixtures_mlflow import MlflowServer, start_mlflow_server, stop_mlflow_server
from tests.support.mlflow_models import register_run_version, unique_model_name
from tests.support.settings import generated_flags

pytestmark = pytest.mark.slow

_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(?:GET|POST|PUT|PATCH|DELETE) /api/")


class KillingRelay:
    """Relays 127.0.0.1:port to the MLflow server; on MLflow API request number ``kill_at`` it kills the server,
    drops every connection and closes its listening socket."""

    def __init__(self, server: MlflowServer, kill_at: int) -> None:
        self.server = server
        self.kill_at = kill_at
        self.requests = 0
        self.killed_at: float | None = None
        self.server_stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._upstream = ("127.0.0.1", int(server.uri.rsplit(":", 1)[1]))
        threading.Thread(target=self._accept, name="killing-relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # listener closed: the address now refuses connections
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_client:
                    with self._lock:
                        self.requests += len(_REQUEST_LINE.findall(chunk))
                        kill = self.killed_at is None and self.requests >= self.kill_at
                    if kill:
                        self.kill()
                        return
                dest.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                try:
                    sock.close()
                except OSError:
                    pass

    def kill(self) -> None:
        self.killed_at = time.monotonic()
        self.close()  # the address refuses connections from now on
        stop_mlflow_server(self.server)  # SIGTERM (then SIGKILL) to the server's whole process group
        self.server_stopped.set()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass


@pytest.fixture()
def doomed_mlflow(tmp_path: Path) -> Iterator[tuple[MlflowServer, str, str]]:
    """A dedicated MLflow server with one registered version: (server, model name, version)."""
    server = start_mlflow_server(tmp_path / "doomed-mlflow")
    try:
        model = unique_model_name("outage")
        registered = register_run_version(server.uri, model, seed=1, metrics={"accuracy": 0.9})
        yield server, model, registered.version
    finally:
        stop_mlflow_server(server)


def _assert_clean_transient(log: str, relay: KillingRelay) -> None:
    assert "Traceback" not in log, log
    assert relay.killed_at is not None, "the relay never killed MLflow"
    assert relay.server_stopped.wait(30) and relay.server.process.poll() is not None, "MLflow is still running"
    assert re.search(r"reaching MLflow at http://127\.0\.0\.1:\d+ \(.*\): attempt 1 failed", log), log
    last = log.strip().splitlines()[-1]
    assert last.startswith("promotion-context: reaching MLflow at ") and "failed after retries" in last, last


def test_the_step_retries_then_reports_a_transient_failure_when_mlflow_dies(doomed_mlflow, make_gitops_remote,
                                                                         tmp_path: Path) -> None:
    server, model, version = doomed_mlflow
    remote = make_gitops_remote(fraud_model=model, fraud_version=version)
    relay = KillingRelay(server, kill_at=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MLFLOW_"))}
    env.update(HF_PARAM_MODEL_NAME=model, HF_PARAM_VERSION=version, HF_PARAM_ALIAS="champion")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "hera_flows", "step", "promotion-context", *generated_flags("promotion-context"),
         f"--tracking-uri={relay.url}", f"--repo-url={remote.url}", "--base-branch=main", "--inference-dir=inference",
         "--deadline-seconds=20", f"--outputs={tmp_path / 'outputs'}"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    elapsed = time.monotonic() - started
    relay.close()

    assert proc.returncode == EXIT_TRANSIENT, proc.stderr
    assert relay.requests >= 2  # the first request was answered: MLflow died mid-step, not before it
    _assert_clean_transient(proc.stderr, relay)
    assert elapsed < 20 + 10, f"the step outlived its 20 s deadline: {elapsed:.1f}s"
    assert not (tmp_path / "outputs" / "context").exists()


def test_argo_retries_the_context_task_then_the_workflow_fails_cleanly(doomed_mlflow, make_gitops_remote,
                                                                       tmp_path: Path, capsys) -> None:
    server, model, version = doomed_mlflow
    remote = make_gitops_remote(fraud_model=model, fraud_version=version)
    relay = KillingRelay(server, kill_at=2)
    config = {
        "namespace": "mlops-automation",
        "repository": {"url": remote.url, "slug": "acme/ml-gitops", "base_branch": "main"},
        "forge": {"api_url": "http://127.0.0.1:9", "token_secret": {"name": "forge", "key": "token"}},
        "mlflow": {"tracking_uri": relay.url},
        "workflow": {"retry": {"limit": 2, "backoff_seconds": 1}},
        "patterns": {"promotion": {"webhook_secret": {"name": "mlflow-webhook", "key": "secret"},
                                   "smoke": {"endpoint": "http://127.0.0.1:9", "protocol": "v2"}}},
    }
    out = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), out)
    template = yaml.safe_load((out / "generated/workflowtemplates/mlflow-promotion.yaml").read_text())
    [context] = [t for t in template["spec"]["templates"] if t["name"] == "context"]
    assert context["retryStrategy"]["limit"] == "2" and "75" in context["retryStrategy"]["expression"]

    result = run_workflow(
        "mlflow-promotion", generated=out,
        overrides={"manual": "true", "model-name": model, "version": version},
        secrets={"mlflow-webhook": {"secret": "s"}, "forge": {"token": "t"}},
        workdir=tmp_path / "run", state_dir=tmp_path / "state", echo=True,
    )
    relay.close()
    printed = capsys.readouterr().out

    assert result.phase == "Failed"
    assert result.tasks["guard"].phase == "Succeeded"
    task = result.tasks["context"]
    assert task.phase == "Failed" and task.attempts == 3, (task.attempts, task.message)  # 1 try + limit 2
    assert printed.count("[context] failed with exit code 75; retrying") == 2, printed
    _assert_clean_transient(task.log, relay)
    assert result.message == task.message and "\n" not in task.message
    assert task.message.startswith("promotion-context: reaching MLflow at ") and "failed after retries" in task.message
    downstream = [t for name, t in result.tasks.items() if name not in ("guard", "context")]
    assert downstream and all(t.phase == "Omitted" for t in downstream), [(t.name, t.phase) for t in downstream]
    assert "Traceback" not in printed
