"""A real MLflow tracking server on this machine and a webhook receiver, for the demo and the tests.

``start_mlflow_server(root)``: ``mlflow server`` with a sqlite backend and a ``file:`` artifact root under ``root``, on
127.0.0.1 and a free port. Artifacts are not proxied (``--no-serve-artifacts``), so a model version's download URI
is a plain ``file:///...`` location, the local analogue of the ``s3://...`` URI a KServe ``storageUri`` points at.
Webhooks may target plain http on private addresses (``MLFLOW_WEBHOOK_ALLOWED_SCHEMES``,
``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS``) and the server's webhook list cache is off, so a webhook fires from the first
event after it is created. The server runs in its own process group, which ``stop_mlflow_server`` kills as a whole,
and dies with its parent (Linux): no process outlives the caller.

``WebhookReceiver``: a threaded HTTP server on 127.0.0.1 that records every request byte for byte (method, path,
headers in arrival order, raw body) and answers 200 — where the webhook EventSource would listen in a cluster.
Needs the dev extra (``mlflow``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

from hera_flows.local.processes import STOP_TIMEOUT_SECONDS, die_with_parent, free_port, stop_process_group

if TYPE_CHECKING:
    from mlflow import MlflowClient

START_TIMEOUT_SECONDS = 90.0


@dataclass
class MlflowServer:
    """A running ``mlflow server``; ``uri`` is its tracking URI (http://127.0.0.1:PORT)."""

    uri: str
    root: Path  # the temporary folder holding the database, the artifacts and the log
    artifact_root: str  # file:///... URI under which every artifact is stored
    log_path: Path
    start_seconds: float  # how long the server took to answer /health
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_mlflow_server(root: Path, *, extra_env: dict[str, str] | None = None) -> MlflowServer:
    """Start ``mlflow server`` under ``root`` and wait until /health answers; the caller must stop it."""
    root.mkdir(parents=True, exist_ok=True)
    artifacts = root / "artifacts"
    artifacts.mkdir(exist_ok=True)
    artifact_root = artifacts.as_uri()
    log_path = root / "server.log"
    env = {
        **os.environ,
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_CACHE_TTL": "0",
        "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "5",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # The GenAI job runner (a second process) is not needed here; without it the server starts ~2 s sooner.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **(extra_env or {}),
    }
    preexec = die_with_parent()
    last_error = ""
    for _ in range(3):  # a free port can be taken between probing and binding: try another one
        port = free_port()
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--default-artifact-root", artifact_root,
            "--no-serve-artifacts",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
        ]
        started = time.monotonic()
        with open(log_path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed as a whole at teardown
                preexec_fn=preexec,  # noqa: PLW1509 - one prctl call, no locks
            )
        server = MlflowServer(
            uri=f"http://127.0.0.1:{port}", root=root, artifact_root=artifact_root, log_path=log_path,
            start_seconds=0.0, process=process,
        )
        try:
            if _wait_healthy(server, started + START_TIMEOUT_SECONDS):
                server.start_seconds = time.monotonic() - started
                return server
        except BaseException:
            stop_mlflow_server(server)
            raise
        last_error = server.log_tail()
        stop_mlflow_server(server)
    raise RuntimeError(f"mlflow server did not start; log tail:\n{last_error}")


def _wait_healthy(server: MlflowServer, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def stop_mlflow_server(server: MlflowServer) -> None:
    """Stop the whole process group (the CLI, uvicorn and MLflow's job runner), forcefully if it lingers."""
    stop_process_group(server.process, STOP_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]  # in arrival order, names as sent
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, matched case-insensitively."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


class WebhookReceiver:
    """Records every request; ``status`` is what it answers (200 unless a test changes it)."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.status = 200
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ReceivedRequest(self.command, self.path, list(self.headers.items()), body)
                with receiver._changed:
                    receiver.requests.append(request)
                    receiver._changed.notify_all()
                reply = b"ok"
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _record  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence stderr
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def url_for(self, path: str = "/") -> str:
        return self.url + path

    def wait_for(self, count: int, timeout: float = 15.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests arrived; return them all (TimeoutError otherwise)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"webhook receiver got {len(self.requests)} request(s) in {timeout}s, "
                                   f"expected {count}")
            return list(self.requests)

    def clear(self) -> None:
        with self._changed:
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
