"""The review and report steps with ``--forge=gitlab`` against the GitLab REST stand-in: the same create-or-update
idempotency as on GitHub (one merge request per branch, one issue per dedupe key), retries and clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hera_flows.cli import run_step
from hera_flows.steps.forge import gitlab
from tests.support.fixtures_gitlab import DEFAULT_PROJECT, WEB, GitLabStandIn
from tests.support.fixtures_workspace import make_context
from tests.test_review import BRANCH, ISSUE, KEY, REFUSED, SUMMARY

MR_URL = f"{WEB}/{DEFAULT_PROJECT}/-/merge_requests/1"
ISSUE_URL = f"{WEB}/{DEFAULT_PROJECT}/-/issues/1"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gitlab, "RETRY_BASE_DELAY", 0.01)


@pytest.fixture()
def review_env(monkeypatch: pytest.MonkeyPatch, gitlab_api: GitLabStandIn) -> None:
    for name, value in {
        "HF_PARAM_BRANCH": BRANCH,
        "HF_PARAM_CHANGED": "true",
        "HF_PARAM_CONTEXT": json.dumps(make_context()),
        "HF_PARAM_SUMMARY": SUMMARY,
        "HF_PARAM_REFUSED": json.dumps(REFUSED),
        "HF_PARAM_DEDUPE_KEY": KEY,
        "HF_FORGE_TOKEN": gitlab_api.token,
    }.items():
        monkeypatch.setenv(name, value)


def run_review(api: GitLabStandIn, out: Path) -> tuple[int, dict[str, str]]:
    code = run_step([
        "review", "--pattern=promotion", "--forge=gitlab", f"--api-url={api.url}", f"--repo-slug={DEFAULT_PROJECT}",
        "--base-branch=main", f"--outputs={out}",
    ])
    outputs = {p.name: p.read_text() for p in out.iterdir()} if out.is_dir() else {}
    return code, outputs


def test_first_run_creates_the_mr_second_run_updates_it(review_env: None, gitlab_api: GitLabStandIn,
                                                        tmp_path: Path) -> None:
    code, out = run_review(gitlab_api, tmp_path / "out1")
    assert code == 0
    assert out == {"pr-url": MR_URL, "pr-number": "1", "issue-url": "", "issue-number": "", "action": "pr-opened"}
    [mr] = gitlab_api.merge_requests()
    assert mr["title"] == "Promote fraud-detector v7 to champion"
    assert mr["source_branch"] == BRANCH and mr["target_branch"] == "main"
    assert "<!-- hera-flows:dedupe-key=fraud-detector@v7 -->" in mr["description"]
    assert gitlab_api.labels("merge_requests", 1) == ["hera-flows", "model-promotion"]
    assert gitlab_api.notes("merge_requests", 1) == []

    # a redelivered event: the open MR for the branch is updated and commented, never a second one
    code, out = run_review(gitlab_api, tmp_path / "out2")
    assert code == 0 and out["pr-number"] == "1" and out["pr-url"] == MR_URL and out["action"] == "pr-updated"
    assert len(gitlab_api.merge_requests()) == 1
    assert len(gitlab_api.requests_to("POST", r"/merge_requests$")) == 1
    assert [r.body for r in gitlab_api.requests_to("PUT", r"/merge_requests/1$")][1].keys() == {"title", "description"}
    [note] = gitlab_api.notes("merge_requests", 1)
    assert note["body"].startswith("Updated by a redelivered or repeated event for `fraud-detector@v7`")
    assert gitlab_api.labels("merge_requests", 1) == ["hera-flows", "model-promotion"]
    assert gitlab_api.issues() == []


def test_an_mr_created_concurrently_is_updated(review_env: None, gitlab_api: GitLabStandIn, tmp_path: Path) -> None:
    """Another run opened the MR between our lookup and our create: GitLab's 409 leads to the update path."""
    gitlab_api.add_merge_request(BRANCH, title="other run")
    gitlab_api.fail("GET", r"/merge_requests$", 200, body=[])  # our first lookup does not see it yet
    code, out = run_review(gitlab_api, tmp_path / "out")
    assert code == 0 and out["pr-number"] == "1"
    assert [r.method for r in gitlab_api.requests_to("POST", r"/merge_requests$")] == ["POST"]
    [mr] = gitlab_api.merge_requests()
    assert mr["title"] == "Promote fraud-detector v7 to champion"
    assert len(gitlab_api.notes("merge_requests", 1)) == 1


def test_server_errors_then_success(review_env: None, gitlab_api: GitLabStandIn, tmp_path: Path) -> None:
    gitlab_api.fail("POST", r"/merge_requests$", 500, times=2)
    gitlab_api.fail("PUT", r"/merge_requests/1$", 502)
    code, out = run_review(gitlab_api, tmp_path / "out")
    assert code == 0 and out["pr-number"] == "1"
    assert len(gitlab_api.requests_to("POST", r"/merge_requests$")) == 3
    assert len(gitlab_api.requests_to("PUT", r"/merge_requests/1$")) == 2
    assert len(gitlab_api.merge_requests()) == 1
    assert gitlab_api.labels("merge_requests", 1) == ["hera-flows", "model-promotion"]


def test_server_errors_that_persist_exit_as_transient(review_env: None, gitlab_api: GitLabStandIn, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    gitlab_api.fail("GET", r"/merge_requests$", 503, times=99)
    code, out = run_review(gitlab_api, tmp_path / "out")
    assert code == 75 and out == {}  # Argo's retryStrategy takes over
    assert "failed after 5 attempts: HTTP 503" in capsys.readouterr().err
    assert gitlab_api.merge_requests() == []


def test_bad_token_is_a_clear_failure(review_env: None, gitlab_api: GitLabStandIn, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_FORGE_TOKEN", "glpat-revoked-token-value")
    code, out = run_review(gitlab_api, tmp_path / "out")
    assert code == 1 and out == {}
    err = capsys.readouterr().err
    assert "HTTP 401: 401 Unauthorized" in err and "Traceback" not in err
    assert "glpat-revoked-token-value" not in err
    assert len(gitlab_api.requests) == 1


def test_issue_mode_opens_one_issue_per_key_and_updates_it(
    review_env: None, gitlab_api: GitLabStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unrelated merge request !1 exists: issue #1 is a different thing on GitLab, notes must go to the issue.
    gitlab_api.add_merge_request("some/other-branch")
    monkeypatch.setenv("HF_PARAM_CHANGED", "false")
    monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps(ISSUE))
    code, out = run_review(gitlab_api, tmp_path / "a")
    assert code == 0
    assert out == {"pr-url": "", "pr-number": "", "issue-url": ISSUE_URL, "issue-number": "1",
                   "action": "issue-opened"}
    [issue] = gitlab_api.issues()
    assert issue["title"] == ISSUE["title"]
    assert issue["description"].startswith("Missing values in `amount`.")
    assert issue["description"].rstrip().endswith(f"<!-- hera-flows:dedupe-key={KEY} -->")
    assert set(gitlab_api.labels("issues", 1)) == {"hera-flows", "model-promotion", "data-quality"}

    # the same key again (a redelivery): the open issue is updated and noted, no second issue
    monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps(ISSUE | {"body": "Missing values in `amount` (again)."}))
    gitlab_api.fail("PUT", r"/issues/1$", 500)  # and a server error on the way
    code, out = run_review(gitlab_api, tmp_path / "b")
    assert code == 0 and out["issue-number"] == "1" and out["issue-url"] == ISSUE_URL
    assert out["action"] == "issue-updated"
    [issue] = gitlab_api.issues()
    assert issue["description"].startswith("Missing values in `amount` (again).")
    assert any("Seen again" in n["body"] for n in gitlab_api.notes("issues", 1))
    assert gitlab_api.notes("merge_requests", 1) == [] and gitlab_api.labels("merge_requests", 1) == []
    assert len(gitlab_api.requests_to("POST", r"/issues$")) == 1

    # another key: another issue
    monkeypatch.setenv("HF_PARAM_DEDUPE_KEY", "fraud-detector@v8")
    code, out = run_review(gitlab_api, tmp_path / "c")
    assert code == 0 and out["issue-number"] == "2" and len(gitlab_api.issues()) == 2


def test_report_comments_on_the_merge_request(gitlab_api: GitLabStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    gitlab_api.add_merge_request(BRANCH)
    monkeypatch.setenv("HF_FORGE_TOKEN", gitlab_api.token)
    monkeypatch.setenv("HF_PARAM_PR_NUMBER", "1")
    monkeypatch.setenv("HF_PARAM_BODY", "## Smoke test: passed\n")
    code = run_step(["report", "--forge=gitlab", f"--api-url={gitlab_api.url}", f"--repo-slug={DEFAULT_PROJECT}"])
    assert code == 0
    [note] = gitlab_api.notes("merge_requests", 1)
    assert note["body"].startswith("## Smoke test: passed")
