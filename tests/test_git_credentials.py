"""The forge token reaches git over HTTPS with the username the forge expects (GitHub ``x-access-token``, GitLab
``oauth2``): clone, ls-remote and push against a real smart-HTTP git server (``git http-backend`` behind Basic
auth on 127.0.0.1) that only accepts that username and token."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hera_flows.steps import gitrepo
from hera_flows.steps.common import StepError

TOKEN = "glpat-gitHTTPtoken-0123456789"


@dataclass
class GitHttpServer:
    root: Path
    username: str
    password: str
    logins: list[str] = field(default_factory=list)  # usernames of every request carrying credentials
    server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/acme/ml/gitops.git"


def _handler(state: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: CGI output is streamed as-is

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                state.logins.append(user)
                if (user, password) == (state.username, state.password):
                    return self._cgi(user)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="GitLab"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _cgi(self, user: str) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            env = {
                "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(state.root), "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(length),
                "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1", "GIT_CONFIG_NOSYSTEM": "1",
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            body = self.rfile.read(length) if length else b""
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(": ")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

    return Handler


@pytest.fixture()
def git_http(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GitHttpServer]:
    """A bare repository acme/ml/gitops.git with one commit on main, served for user ``request.param``."""
    root = tmp_path / "srv"
    bare = root / "acme" / "ml" / "gitops.git"
    bare.mkdir(parents=True)
    env = gitrepo.git_env()
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], check=True, env=env)
    work = tmp_path / "seed"
    subprocess.run(["git", "clone", "--quiet", str(bare), str(work)], check=True, env=env, capture_output=True)
    (work / "README.md").write_text("# gitops\n")
    for args in (["add", "README.md"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "init"],
                 ["push", "--quiet", "origin", "HEAD:main"]):
        subprocess.run(["git", *args], cwd=work, check=True, env=env)
    state = GitHttpServer(root, username=request.param, password=TOKEN)
    state.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=state.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()


@pytest.mark.parametrize(("git_http", "forge"), [("oauth2", "gitlab"), ("x-access-token", "github")],
                         indirect=["git_http"])
def test_clone_and_push_authenticate_with_the_forges_username(git_http: GitHttpServer, forge: str,
                                                             tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    gitrepo.clone(git_http.url, clone, "main", token=TOKEN, forge=forge)
    assert (clone / "README.md").read_text() == "# gitops\n"
    (clone / "model.yaml").write_text("v: 7\n")
    gitrepo.run_git(["add", "model.yaml"], cwd=clone)
    gitrepo.run_git(["-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "v7"], cwd=clone)
    gitrepo.run_git(["push", "--quiet", "--", git_http.url, "HEAD:refs/heads/promote/v7"], cwd=clone,
                    token=TOKEN, forge=forge)
    assert gitrepo.remote_branch_head(git_http.url, "promote/v7", token=TOKEN, forge=forge) is not None
    assert set(git_http.logins) == {git_http.username}
    assert TOKEN not in (clone / ".git" / "config").read_text()


@pytest.mark.parametrize("git_http", ["oauth2"], indirect=True)
def test_the_wrong_username_is_refused_without_leaking_the_token(git_http: GitHttpServer, tmp_path: Path) -> None:
    with pytest.raises(StepError) as error:
        gitrepo.clone(git_http.url, tmp_path / "c", "main", token=TOKEN, forge="github", attempts=1)
    assert TOKEN not in str(error.value)
    assert "x-access-token" in git_http.logins


def test_unknown_forge_kind_is_a_clear_error() -> None:
    with pytest.raises(StepError, match="unknown forge 'bitbucket'"):
        gitrepo.git_env("t", "bitbucket")
