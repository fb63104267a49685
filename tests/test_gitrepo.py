"""The shared git runner: a clone that fails on the network is retried from an empty folder, then reported as
transient (exit 75, Argo may retry the pod); other failures are final at once."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hera_flows.steps import gitrepo
from hera_flows.steps.common import TransientError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_network_failures_are_retried_then_transient(tmp_path: Path, monkeypatch) -> None:
    calls: list[list[str]] = []
    real = gitrepo.run_git

    def counting(args, *a, **kw):
        calls.append(args)
        (tmp_path / "dest").mkdir(exist_ok=True)  # a failed attempt leaves files behind
        return real(args, *a, **kw)

    monkeypatch.setattr(gitrepo, "run_git", counting)
    with pytest.raises(TransientError, match="git clone"):
        gitrepo.clone(f"http://127.0.0.1:{_closed_port()}/repo.git", tmp_path / "dest", "main", attempts=3)
    assert len(calls) == 3


def test_a_missing_repository_is_final_at_once(tmp_path: Path, monkeypatch) -> None:
    calls: list[list[str]] = []
    real = gitrepo.run_git
    monkeypatch.setattr(gitrepo, "run_git", lambda args, *a, **kw: calls.append(args) or real(args, *a, **kw))
    with pytest.raises(gitrepo.GitError):
        gitrepo.clone(str(tmp_path / "no-such-repo.git"), tmp_path / "dest", "main")
    assert len(calls) == 1
