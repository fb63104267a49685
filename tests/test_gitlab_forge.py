"""The GitLab forge client against the REST stand-in (hera_flows/local/standins/gitlab.py): requests, retries,
errors."""

from __future__ import annotations

import re
import socket
import time

import pytest

from hera_flows.steps.common import StepError, TransientError
from hera_flows.steps.forge import gitlab
from hera_flows.steps.forge.base import ForgeError, RedactingForge, open_forge
from hera_flows.steps.forge.gitlab import GitLabForge
from tests.support.fixtures_gitlab import DEFAULT_PROJECT, WEB, GitLabStandIn

BRANCH = "model-promotion/fraud-detector-v7"
PROJECT = "/projects/acme%2Fml%2Fgitops"
MR_WEB = f"{WEB}/{DEFAULT_PROJECT}/-/merge_requests"


@pytest.fixture()
def sleeps() -> list[float]:
    return []


@pytest.fixture()
def forge(gitlab_api: GitLabStandIn, sleeps: list[float]) -> GitLabForge:
    # The stand-in answers with web URLs on gitlab.example.com; the client derives comment URLs from --api-url.
    client = GitLabForge(api_url=gitlab_api.url, repo_slug=DEFAULT_PROJECT, token=gitlab_api.token, sleep=sleeps.append)
    client._web = f"{WEB}/{DEFAULT_PROJECT}/-"
    yield client
    client.close()


def test_requests_carry_the_token_and_the_encoded_project_path(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    assert forge.find_open_pr(BRANCH) is None
    [request] = gitlab_api.requests
    assert request.method == "GET" and request.path == f"{PROJECT}/merge_requests"
    assert request.query == {"source_branch": [BRANCH], "state": ["opened"], "per_page": ["100"]}
    assert request.headers["authorization"] == f"Bearer {gitlab_api.token}"
    assert "private-token" not in request.headers  # a custom header would follow a redirect to another host


def test_merge_request_lifecycle(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    mr = forge.create_pr(branch=BRANCH, base="main", title="Promote", body="body")
    assert mr.number == 1 and mr.url == f"{MR_WEB}/1" and mr.head == BRANCH and mr.state == "open"
    assert gitlab_api.requests_to("POST", r"/merge_requests$")[0].body == {
        "source_branch": BRANCH, "target_branch": "main", "title": "Promote", "description": "body"
    }
    assert forge.find_open_pr(BRANCH) == mr
    assert forge.find_open_pr("model-promotion/other") is None

    updated = forge.update_pr(mr.number, title="Promote again", body="new body")
    assert updated.title == "Promote again" and gitlab_api.merge_requests()[0]["description"] == "new body"
    assert gitlab_api.requests_to("PUT", r"/merge_requests/1$")[0].body == {"title": "Promote again",
                                                                            "description": "new body"}
    url = forge.comment(mr.number, "hello")
    assert re.fullmatch(rf"{re.escape(MR_WEB)}/1#note_\d+", url)
    forge.add_labels(mr.number, ["hera-flows", "model-promotion"])
    forge.add_labels(mr.number, ["hera-flows"])
    assert gitlab_api.requests_to("PUT", r"/merge_requests/1$")[1].body == {"add_labels": "hera-flows,model-promotion"}
    assert gitlab_api.labels("merge_requests", 1) == ["hera-flows", "model-promotion"]
    assert [n["body"] for n in gitlab_api.notes("merge_requests", 1)] == ["hello"]

    with pytest.raises(ForgeError) as duplicate:
        forge.create_pr(branch=BRANCH, base="main", title="again", body="")
    assert duplicate.value.status == 409
    assert "Another open merge request already exists for this source branch: !1" in duplicate.value.detail
    assert len(gitlab_api.merge_requests()) == 1


def test_merge_requests_from_forks_are_not_ours(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    gitlab_api.add_merge_request(BRANCH, from_fork=True)
    assert forge.find_open_pr(BRANCH) is None
    assert forge.list_open_prs("model-promotion/") == []


def test_list_open_merge_requests_by_branch_prefix(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    for i in range(120):
        gitlab_api.add_merge_request(f"drift/model-{i}")
    gitlab_api.add_merge_request("model-promotion/x")
    closed = forge.create_pr(branch="drift/closed", base="main", title="t", body="")
    forge._api.request("PUT", f"{PROJECT}/merge_requests/{closed.number}", json={"state_event": "close"})
    found = forge.list_open_prs("drift/")
    assert len(found) == 120 and {pr.head for pr in found} == {f"drift/model-{i}" for i in range(120)}
    pages = [r.query["page"] for r in gitlab_api.requests_to("GET", r"/merge_requests$")]
    assert pages == [["1"], ["2"]]  # followed X-Next-Page, stopped when it was empty


def test_merge_requests_and_issues_have_separate_numbers(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    mr = forge.create_pr(branch=BRANCH, base="main", title="MR", body="")
    issue = forge.create_issue(title="Issue", body="")
    assert mr.number == issue.number == 1
    forge.comment(1, "on the issue", kind="issue")
    forge.add_labels(1, ["data-quality"], kind="issue")
    forge.comment(1, "on the MR")
    assert [n["body"] for n in gitlab_api.notes("issues", 1)] == ["on the issue"]
    assert [n["body"] for n in gitlab_api.notes("merge_requests", 1)] == ["on the MR"]
    assert gitlab_api.labels("issues", 1) == ["data-quality"] and gitlab_api.labels("merge_requests", 1) == []


def test_issues_found_by_hidden_marker(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    marker = "<!-- hera-flows:dedupe-key=fraud-detector@drift -->"
    forge.create_pr(branch=BRANCH, base="main", title="an MR with the marker", body=marker)  # MRs are not issues
    assert forge.find_open_issue(marker) is None
    issue = forge.create_issue(title="Drift on fraud-detector", body=f"text\n{marker}", labels=["hera-flows"])
    assert issue.number == 1 and issue.url == f"{WEB}/{DEFAULT_PROJECT}/-/issues/1" and issue.state == "open"
    assert gitlab_api.requests_to("POST", r"/issues$")[0].body["labels"] == "hera-flows"
    gitlab_api.requests.clear()
    assert forge.find_open_issue(marker, labels=["hera-flows"]) == issue
    [search] = gitlab_api.requests  # found by GitLab's search in one request
    assert search.query["search"] == [marker] and search.query["in"] == ["description"]
    assert search.query["state"] == ["opened"] and search.query["labels"] == ["hera-flows"]
    assert forge.find_open_issue(marker, labels=["other"]) is None
    assert forge.find_open_issue("<!-- hera-flows:dedupe-key=fraud-detector@drif -->") is None  # a prefix is not it
    assert forge.update_issue(issue.number, body=f"newer\n{marker}").number == 1
    assert gitlab_api.issues()[0]["description"].startswith("newer")
    assert gitlab_api.requests_to("PUT", r"/issues/1$")[-1].body == {"description": f"newer\n{marker}"}


def test_finds_issues_beyond_the_first_page_when_search_misses(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    marker = "<!-- hera-flows:dedupe-key=old -->"
    forge.create_issue(title="the old one", body=marker)
    for i in range(105):
        forge.create_issue(title=f"noise {i}", body="")
    gitlab_api.fail("GET", r"/issues$", 200, body=[], headers={"X-Next-Page": ""})  # an instance whose search differs
    assert forge.find_open_issue(marker).title == "the old one"
    listed = gitlab_api.requests_to("GET", r"/issues$")
    assert "search" in listed[0].query and all("search" not in r.query for r in listed[1:])
    assert [r.query["page"] for r in listed[1:]] == [["1"], ["2"]]


def test_closed_issues_do_not_count(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    marker = "<!-- hera-flows:dedupe-key=k -->"
    issue = forge.create_issue(title="t", body=marker)
    forge._api.request("PUT", f"{PROJECT}/issues/{issue.number}", json={"state_event": "close"})
    assert forge.find_open_issue(marker) is None


def test_server_errors_are_retried(forge: GitLabForge, gitlab_api: GitLabStandIn, sleeps: list[float]) -> None:
    gitlab_api.fail("POST", r"/merge_requests$", 502, times=2)
    assert forge.create_pr(branch=BRANCH, base="main", title="t", body="b").number == 1
    assert len(gitlab_api.requests_to("POST", r"/merge_requests$")) == 3
    assert len(sleeps) == 2 and sleeps[0] <= sleeps[1] * 1.01 + 1


def test_server_errors_give_up_as_transient(forge: GitLabForge, gitlab_api: GitLabStandIn, sleeps: list[float]) -> None:
    gitlab_api.fail("GET", r"/merge_requests$", 503, times=99)
    with pytest.raises(TransientError, match="GitLab API GET .* failed after 5 attempts: HTTP 503"):
        forge.find_open_pr(BRANCH)
    assert len(gitlab_api.requests) == gitlab.RETRY_ATTEMPTS and len(sleeps) == gitlab.RETRY_ATTEMPTS - 1


def test_rate_limits_follow_gitlabs_headers(forge: GitLabForge, gitlab_api: GitLabStandIn, sleeps: list[float]) -> None:
    gitlab_api.fail("GET", r"/merge_requests$", 429, body="Retry later\n")
    gitlab_api.fail("GET", r"/merge_requests$", 429, headers={"Retry-After": "7"},
                    body={"message": "Retry later"})
    gitlab_api.fail("GET", r"/merge_requests$", 429, headers={"RateLimit-Reset": str(int(time.time()) + 3)},
                    body={"message": "Retry later"})
    assert forge.find_open_pr(BRANCH) is None
    assert sleeps[0] == gitlab.RATE_LIMIT_WAIT  # no header: GitLab's limits are per minute
    assert sleeps[1] == 7.0
    assert 1.0 <= sleeps[2] <= 5.0
    assert len(gitlab_api.requests) == 4
    # A limit that persists without headers: the waits grow, and past MAX_RETRY_WAIT the step hands over to Argo.
    gitlab_api.fail("GET", r"/merge_requests$", 429, times=5)
    with pytest.raises(TransientError, match="rate limit"):
        forge.find_open_pr(BRANCH)
    assert sleeps[3:] == [gitlab.RATE_LIMIT_WAIT] and len(gitlab_api.requests) == 6


def test_403_is_never_a_rate_limit(forge: GitLabForge, gitlab_api: GitLabStandIn, sleeps: list[float]) -> None:
    gitlab_api.fail("GET", r"/merge_requests$", 403, headers={"Retry-After": "1"}, body={"message": "403 Forbidden"})
    with pytest.raises(ForgeError, match="Developer role"):
        forge.find_open_pr(BRANCH)
    assert sleeps == []


def test_a_long_rate_limit_is_left_to_argo(forge: GitLabForge, gitlab_api: GitLabStandIn, sleeps: list[float]) -> None:
    gitlab_api.fail("GET", r"/merge_requests$", 429, headers={"Retry-After": "3600"})
    with pytest.raises(TransientError, match="GitLab rate limit, retry allowed only in 3600s"):
        forge.find_open_pr(BRANCH)
    assert sleeps == [] and len(gitlab_api.requests) == 1


@pytest.mark.parametrize(("status", "body", "text", "hint"), [
    (403, {"message": "403 Forbidden"}, "403 Forbidden", "Developer role"),
    (404, {"message": "404 Project Not Found"}, "404 Project Not Found", "--repo-slug"),
    (400, {"message": {"title": ["can't be blank", "is too long"]}}, "title can't be blank is too long", ""),
    (400, {"error": "title is missing"}, "title is missing", ""),
    (422, {"message": ["Validation failed"]}, "Validation failed", ""),
])
def test_client_errors_are_not_retried(forge: GitLabForge, gitlab_api: GitLabStandIn, sleeps: list[float],
                                       status: int, body: dict, text: str, hint: str) -> None:
    gitlab_api.fail("PUT", r"/merge_requests/\d+$", status, body=body)
    with pytest.raises(ForgeError) as error:
        forge.update_pr(3, title="x")
    assert error.value.status == status and error.value.exit_code == 1
    assert text in str(error.value) and hint in str(error.value)
    assert sleeps == [] and len(gitlab_api.requests) == 1


def test_unknown_project_and_item(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    with pytest.raises(ForgeError, match="404 Not found"):
        forge.comment(9, "x", kind="issue")
    other = GitLabForge(api_url=gitlab_api.url, repo_slug="acme/missing", token=gitlab_api.token)
    with pytest.raises(ForgeError, match="404 Project Not Found.*--repo-slug"):
        other.find_open_pr(BRANCH)
    other.close()


def test_bad_token_is_a_clear_error_without_the_token(gitlab_api: GitLabStandIn, sleeps: list[float]) -> None:
    token = "glpat-wrongTOKEN-must-not-leak"
    client = GitLabForge(api_url=gitlab_api.url, repo_slug=DEFAULT_PROJECT, token=token, sleep=sleeps.append)
    with pytest.raises(ForgeError) as error:
        client.comment(1, "x")
    assert error.value.status == 401
    assert "401 Unauthorized" in str(error.value) and "forge token" in str(error.value)
    assert token not in str(error.value)
    assert sleeps == []


def test_unreachable_api_is_transient(sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = GitLabForge(api_url=f"http://127.0.0.1:{port}/api/v4", repo_slug=DEFAULT_PROJECT, token="t",
                         sleep=sleeps.append)
    with pytest.raises(TransientError, match="ConnectError"):
        client.find_open_pr(BRANCH)
    assert len(sleeps) == gitlab.RETRY_ATTEMPTS - 1


def test_open_forge_and_comment_urls(gitlab_api: GitLabStandIn) -> None:
    token = gitlab_api.token
    with open_forge("gitlab", api_url=gitlab_api.url + "/", repo_slug=DEFAULT_PROJECT, token=token) as client:
        assert isinstance(client, RedactingForge) and isinstance(client.inner, GitLabForge)
        assert client.inner._project == PROJECT
        assert client.create_pr(branch=BRANCH, base="main", title="t", body="b").number == 1
        url = client.comment(1, "hi")
    # The web root is the API URL without /api/v4.
    assert url.startswith(gitlab_api.url.removesuffix("/api/v4") + f"/{DEFAULT_PROJECT}/-/merge_requests/1#note_")
    assert gitlab_api.requests[0].path == f"{PROJECT}/merge_requests"


def test_long_titles_and_labels_with_commas(forge: GitLabForge, gitlab_api: GitLabStandIn) -> None:
    forge.create_pr(branch=BRANCH, base="main", title="t" * 400, body="b" * (gitlab.MAX_BODY_CHARS + 10))
    stored = gitlab_api.merge_requests()[0]
    assert len(stored["title"]) == gitlab.MAX_TITLE_CHARS and len(stored["description"]) == gitlab.MAX_BODY_CHARS
    forge.add_labels(1, ["a,b", "ok"])
    assert gitlab_api.labels("merge_requests", 1) == ["ok"]


@pytest.mark.parametrize(("slug", "url", "message"), [
    ("acme", "https://gitlab.com/api/v4", "group/name"),
    ("acme/x/", "https://gitlab.com/api/v4", "group/name"),
    ("acme/../x", "https://gitlab.com/api/v4", "group/name"),
    ("acme/-x", "https://gitlab.com/api/v4", "group/name"),
    ("acme/x", "gitlab.com/api/v4", "http"),
])
def test_open_forge_validates(slug: str, url: str, message: str) -> None:
    with pytest.raises(StepError, match=message):
        open_forge("gitlab", api_url=url, repo_slug=slug, token="t")

