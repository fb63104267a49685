"""``git_http``: a real smart-HTTP git server on 127.0.0.1 (``git http-backend`` behind a tiny HTTP front), which
can be told to answer the next few requests of one git service with an HTTP error — a forge having a bad minute.

It serves the bare repositories under one folder: ``server.url_for(bare_repo_path)`` is the clone URL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest


@dataclass
class GitHttpServer:
    root: Path
    port: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # git service -> how many requests still fail
    served: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url_for(self, repo: Path) -> str:
        return f"http://127.0.0.1:{self.port}/{repo.relative_to(self.root).as_posix()}"

    def fail_next(self, service: str, times: int = 1) -> None:
        """Answer the next ``times`` POSTs to ``service`` (git-upload-pack or git-receive-pack) with 503."""
        with self.lock:
            self.failures[service] = times

    def should_fail(self, method: str, path: str) -> bool:
        service = path.rsplit("/", 1)[-1]
        with self.lock:
            if method == "POST" and self.failures.get(service, 0) > 0:
                self.failures[service] -= 1
                return True
        return False


def _handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if server.should_fail(self.command, parts.path):
                server.served.append((self.command, parts.path, 503))
                self.send_response(503)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"service unavailable\n")
                return
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": "tests",  # lets http-backend accept pushes
                "REQUEST_METHOD": self.command,
                "PATH_INFO": parts.path,
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "HOME": str(server.root),
            }
            proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False,
                                  timeout=60)
            head, _, payload = proc.stdout.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            server.served.append((self.command, parts.path, status))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

    return Handler


@pytest.fixture()
def git_http(tmp_path: Path) -> Iterator[GitHttpServer]:
    if shutil.which("git") is None:
        pytest.fail("git is required")
    root = tmp_path / "git-http"
    root.mkdir()
    state = GitHttpServer(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
