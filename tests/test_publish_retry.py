"""A transient publish failure is retried by Argo (issue 16 item 7): the agent pod's retryStrategy reruns the pod
when publish (the main container) exits 75, and idempotent publish makes the rerun safe — exactly one branch, one
commit, one PR. Against a real smart-HTTP git server (``git http-backend``) that answers the first push with 503."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from tests.support.fixtures_git_http import GitHttpServer
from tests.support.fixtures_gitops import create_gitops_remote
from tests.support.partial_run import run_tasks

pytestmark = pytest.mark.slow

AGENT = r'''
import os, pathlib
(pathlib.Path.cwd() / "inference" / "fraud.yaml").write_text("kind: InferenceService\nmetadata: {name: fraud}\n"
                                                             "spec: {storageUri: s3://models/fraud/7}\n")
if os.environ.get("FAIL_AGENT"):
    raise SystemExit(3)
'''
UPSTREAM = {"guard": {"branch": "model-promotion/fraud-v7", "title": "Promote fraud v7", "dedupe-key": "fraud@v7",
                      "model": "fraud"},
            "context": {"context": json.dumps({"model": "fraud", "version": "7", "alias": "champion"})}}


def _generated(tmp: Path, url: str, api_url: str, script: Path, extra_env: str = "") -> Path:
    config = {
        "repository": {"url": url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": api_url, "token_secret": {"name": "forge", "key": "token"}},
        "agent": {"kind": "command", "image": "example.com/agent:1",
                  "command": [sys.executable, str(script)] if not extra_env else
                  ["env", extra_env, sys.executable, str(script)]},
        "workflow": {"retry": {"limit": 2, "backoff_seconds": 1}},
        "patterns": {"promotion": {"webhook_secret": {"name": "w", "key": "s"}}},
    }
    out = tmp / "out"
    write(render(parse_config(yaml.safe_dump(config))), out)
    return out


def _remote(git_http: GitHttpServer):
    remote = create_gitops_remote(git_http.root / "r", {
        "inference/fraud.yaml": "kind: InferenceService\nmetadata: {name: fraud}\nspec: {storageUri: s3://models/fraud/6}\n",
        "model-cards/fraud.md": "# fraud\n"})
    return remote, git_http.url_for(git_http.root / "r" / "gitops.git")


def test_a_push_answered_503_is_retried_and_publishes_once(tmp_path: Path, git_http: GitHttpServer,
                                                            github_api) -> None:
    remote, url = _remote(git_http)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    generated = _generated(tmp_path, url, github_api.url, script)
    git_http.fail_next("git-receive-pack", times=1)

    results, workdir = run_tasks(generated, "mlflow-promotion", run=["agent", "review"], upstream=UPSTREAM,
                                 secrets={"forge": {"token": github_api.token}}, workdir=tmp_path / "run")

    agent = results["agent"]
    publish_log = (workdir / "logs" / "agent.main.log").read_text()  # both attempts
    assert agent.phase == "Succeeded", agent.log[-2000:]
    assert agent.attempts == 2  # the first pod's publish exited 75 on the 503, Argo's retry reran the pod
    assert "git push of branch model-promotion/fraud-v7 failed" in publish_log and "503" in publish_log
    assert ("POST", "/r/gitops.git/git-receive-pack", 503) in git_http.served
    branch = "model-promotion/fraud-v7"
    assert remote.git("rev-list", "--count", f"main..{branch}").strip() == "1"
    assert "s3://models/fraud/7" in remote.read("inference/fraud.yaml", branch)
    assert len(github_api.pulls()) == 1 and results["review"].phase == "Succeeded"


def test_a_failing_agent_is_not_retried(tmp_path: Path, git_http: GitHttpServer, github_api) -> None:
    """Only publish's transient exit (75, from the main container) reruns the pod; an agent that failed would
    only fail again (and cost again): main never ran, so the exit code Argo sees is -1."""
    remote, url = _remote(git_http)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    generated = _generated(tmp_path, url, github_api.url, script, extra_env="FAIL_AGENT=1")
    results, _ = run_tasks(generated, "mlflow-promotion", run=["agent"], upstream=UPSTREAM,
                           secrets={"forge": {"token": github_api.token}}, workdir=tmp_path / "run")
    assert results["agent"].phase == "Failed" and results["agent"].attempts == 1
    assert remote.branches() == ["main"]
