"""The GitHub forge client against the REST stand-in (tests/support/fixtures_github.py): requests, retries, errors."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from hera_flows.steps.common import StepError, TransientError
from hera_flows.steps.forge import github
from hera_flows.steps.forge.base import ForgeError, open_forge
from hera_flows.steps.forge.github import GitHubForge
from tests.support.fixtures_github import DEFAULT_REPO, GitHubStandIn

BRANCH = "model-promotion/fraud-detector-v7"


@pytest.fixture()
def sleeps() -> list[float]:
    return []


@pytest.fixture()
def forge(github_api: GitHubStandIn, sleeps: list[float]) -> GitHubForge:
    client = GitHubForge(api_url=github_api.url, repo_slug=DEFAULT_REPO, token=github_api.token, sleep=sleeps.append)
    yield client
    client.close()


def test_requests_carry_githubs_headers(forge: GitHubForge, github_api: GitHubStandIn) -> None:
    assert forge.find_open_pr(BRANCH) is None
    [request] = github_api.requests
    assert request.method == "GET" and request.path == "/repos/acme/ml-gitops/pulls"
    assert request.query == {"head": [f"acme:{BRANCH}"], "state": ["open"], "per_page": ["100"]}
    assert request.headers["authorization"] == f"Bearer {github_api.token}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"


def test_pull_request_lifecycle(forge: GitHubForge, github_api: GitHubStandIn) -> None:
    pr = forge.create_pr(branch=BRANCH, base="main", title="Promote", body="body")
    assert pr.number == 1 and pr.url == "https://github.com/acme/ml-gitops/pull/1" and pr.head == BRANCH
    assert github_api.requests_to("POST", r"/pulls$")[0].body == {
        "title": "Promote", "head": BRANCH, "base": "main", "body": "body"
    }
    assert forge.find_open_pr(BRANCH) == pr
    assert forge.find_open_pr("model-promotion/other") is None

    updated = forge.update_pr(pr.number, title="Promote again", body="new body")
    assert updated.title == "Promote again" and github_api.pulls()[0]["body"] == "new body"
    url = forge.comment(pr.number, "hello")
    assert url.startswith("https://github.com/acme/ml-gitops/pull/1#issuecomment-")
    forge.add_labels(pr.number, ["hera-flows", "model-promotion"])
    forge.add_labels(pr.number, ["hera-flows"])
    assert github_api.labels(1) == ["hera-flows", "model-promotion"]
    assert [c["body"] for c in github_api.comments(1)] == ["hello"]

    with pytest.raises(ForgeError) as duplicate:
        forge.create_pr(branch=BRANCH, base="main", title="again", body="")
    assert duplicate.value.status == 422
    assert "A pull request already exists for acme:" + BRANCH in duplicate.value.detail
    assert len(github_api.pulls()) == 1


def test_issues_found_by_hidden_marker(forge: GitHubForge, github_api: GitHubStandIn) -> None:
    marker = "<!-- hera-flows:dedupe-key=fraud-detector@drift -->"
    forge.create_pr(branch=BRANCH, base="main", title="a PR with the marker", body=marker)  # PRs are skipped
    assert forge.find_open_issue(marker) is None
    issue = forge.create_issue(title="Drift on fraud-detector", body=f"text\n{marker}", labels=["hera-flows"])
    assert issue.number == 2 and issue.url == "https://github.com/acme/ml-gitops/issues/2"
    assert forge.find_open_issue(marker, labels=["hera-flows"]) == issue
    assert forge.find_open_issue(marker, labels=["other"]) is None
    assert forge.find_open_issue("<!-- hera-flows:dedupe-key=else -->") is None
    assert forge.update_issue(issue.number, body=f"newer\n{marker}").number == 2
    assert github_api.issues()[0]["body"].startswith("newer")


def test_finds_issues_beyond_the_first_page(forge: GitHubForge, github_api: GitHubStandIn) -> None:
    marker = "<!-- hera-flows:dedupe-key=old -->"
    forge.create_issue(title="the old one", body=marker)
    for i in range(105):
        forge.create_issue(title=f"noise {i}", body="")
    assert forge.find_open_issue(marker).title == "the old one"
    pages = [r.query["page"] for r in github_api.requests_to("GET", r"/issues$")]
    assert pages == [["1"], ["2"]]


def test_server_errors_are_retried(forge: GitHubForge, github_api: GitHubStandIn, sleeps: list[float]) -> None:
    github_api.fail("POST", r"/pulls$", 500, times=2)
    pr = forge.create_pr(branch=BRANCH, base="main", title="t", body="b")
    assert pr.number == 1
    assert len(github_api.requests_to("POST", r"/pulls$")) == 3
    assert len(sleeps) == 2 and sleeps[0] <= sleeps[1] * 1.01 + 1  # backoff grows (with jitter)


def test_server_errors_give_up_as_transient(forge: GitHubForge, github_api: GitHubStandIn, sleeps: list[float]) -> None:
    github_api.fail("GET", r"/pulls$", 502, times=99)
    with pytest.raises(TransientError, match="failed after 5 attempts: HTTP 502"):
        forge.find_open_pr(BRANCH)
    assert len(github_api.requests) == github.RETRY_ATTEMPTS and len(sleeps) == github.RETRY_ATTEMPTS - 1


def test_rate_limits_follow_githubs_headers(forge: GitHubForge, github_api: GitHubStandIn, sleeps: list[float]) -> None:
    github_api.fail("GET", r"/pulls$", 403, body={"message": "You have exceeded a secondary rate limit."})
    github_api.fail("GET", r"/pulls$", 429, headers={"Retry-After": "7"},
                    body={"message": "You have exceeded a secondary rate limit."})
    reset = int(time.time()) + 3
    github_api.fail("GET", r"/pulls$", 403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                    body={"message": "API rate limit exceeded"})
    assert forge.find_open_pr(BRANCH) is None
    assert sleeps[0] == github.SECONDARY_LIMIT_WAIT  # no header: "wait at least one minute"
    assert sleeps[1] == 7.0
    assert 1.0 <= sleeps[2] <= 5.0
    assert len(github_api.requests) == 4


def test_a_long_rate_limit_is_left_to_argo(forge: GitHubForge, github_api: GitHubStandIn, sleeps: list[float]) -> None:
    github_api.fail("GET", r"/pulls$", 403, headers={"x-ratelimit-remaining": "0",
                                                      "x-ratelimit-reset": str(int(time.time()) + 3600)})
    with pytest.raises(TransientError, match="rate limit"):
        forge.find_open_pr(BRANCH)
    assert sleeps == [] and len(github_api.requests) == 1
    # A secondary limit that persists: the waits grow, and past MAX_RETRY_WAIT the step hands over to Argo.
    github_api.fail("GET", r"/pulls$", 429, times=5, body={"message": "You have exceeded a secondary rate limit."})
    with pytest.raises(TransientError, match="rate limit"):
        forge.find_open_pr(BRANCH)
    assert sleeps == [github.SECONDARY_LIMIT_WAIT] and len(github_api.requests) == 3


@pytest.mark.parametrize(("status", "message", "hint"), [
    (403, "Resource not accessible by personal access token", "lacks a permission"),
    (404, "Not Found", "--repo-slug"),
    (422, "Validation Failed", ""),
])
def test_client_errors_are_not_retried(
    forge: GitHubForge, github_api: GitHubStandIn, sleeps: list[float], status: int, message: str, hint: str
) -> None:
    github_api.fail("PATCH", r"/pulls/\d+$", status, body={"message": message, "errors": [
        {"resource": "PullRequest", "field": "title", "code": "invalid"}]})
    with pytest.raises(ForgeError) as error:
        forge.update_pr(3, title="x")
    assert error.value.status == status and error.value.exit_code == 1
    assert message in str(error.value) and hint in str(error.value)
    assert sleeps == [] and len(github_api.requests) == 1


def test_bad_token_is_a_clear_error_without_the_token(github_api: GitHubStandIn, sleeps: list[float]) -> None:
    token = "ghp_wrongTOKEN_must_not_leak"
    client = GitHubForge(api_url=github_api.url, repo_slug=DEFAULT_REPO, token=token, sleep=sleeps.append)
    with pytest.raises(ForgeError) as error:
        client.comment(1, "x")
    assert error.value.status == 401
    assert "Bad credentials" in str(error.value) and "forge token" in str(error.value)
    assert token not in str(error.value)
    assert sleeps == []


def test_unreachable_api_is_transient(sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = GitHubForge(api_url=f"http://127.0.0.1:{port}", repo_slug=DEFAULT_REPO, token="t", sleep=sleeps.append)
    with pytest.raises(TransientError, match="ConnectError"):
        client.find_open_pr(BRANCH)
    assert len(sleeps) == github.RETRY_ATTEMPTS - 1


def test_enterprise_server_api_prefix(make_github_api: Callable[..., GitHubStandIn]) -> None:
    api = make_github_api(prefix="/api/v3")
    with open_forge("github", api_url=api.url + "/", repo_slug=DEFAULT_REPO, token=api.token) as client:
        assert client.create_pr(branch=BRANCH, base="main", title="t", body="b").number == 1
    assert api.requests[0].path == "/repos/acme/ml-gitops/pulls"


def test_long_bodies_are_capped(forge: GitHubForge, github_api: GitHubStandIn) -> None:
    forge.create_pr(branch=BRANCH, base="main", title="t" * 400, body="b" * 70_000)
    stored = github_api.pulls()[0]
    assert len(stored["title"]) == github.MAX_TITLE_CHARS and len(stored["body"]) == github.MAX_BODY_CHARS


@pytest.mark.parametrize(("kind", "slug", "url", "message"), [
    ("bitbucket", "acme/x", "https://api.github.com", "unknown forge"),
    ("github", "acme", "https://api.github.com", "owner/name"),
    ("github", "acme/x/y", "https://api.github.com", "owner/name"),
    ("github", "acme/x", "ftp://api.github.com", "http"),
])
def test_open_forge_validates(kind: str, slug: str, url: str, message: str) -> None:
    with pytest.raises(StepError, match=message):
        open_forge(kind, api_url=url, repo_slug=slug, token="t")
