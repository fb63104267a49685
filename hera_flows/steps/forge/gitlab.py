"""GitLab's REST API v4 (gitlab.com or a self-managed instance's ``/api/v4``) behind the Forge interface.

The repository is a GitLab project addressed by its path (``group/subgroup/name``), URL-encoded as the project
id (``/projects/group%2Fsubgroup%2Fname``). Merge requests play the part of pull requests.

Differences from GitHub that shape this module:

- merge requests and issues are separate resources with separate numbers (iids: ``!3`` and ``#3`` are two
  things), so ``comment``/``add_labels`` use ``kind`` to pick ``/merge_requests/:iid`` or ``/issues/:iid``;
- the token goes in ``Authorization: Bearer`` (GitLab accepts personal, project and group access tokens and OAuth
  tokens there). Not ``PRIVATE-TOKEN``: httpx drops ``Authorization`` on a redirect to another host, a custom
  header it would forward;
- a second open merge request for a source branch is refused with 409 "Another open merge request already exists
  for this source branch" (GitHub: 422 "A pull request already exists"); the review step handles both;
- labels are added with ``add_labels`` on the PUT of the item; GitLab creates missing labels itself;
- rate limits answer 429 with ``Retry-After`` (and ``RateLimit-Reset``); a 403 is always a missing permission;
- list endpoints page with ``page``/``per_page`` and say what comes next in ``X-Next-Page`` (rest.py follows it).

Retries, backoff and error handling are shared with GitHub (rest.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from hera_flows.steps.common import log
from hera_flows.steps.forge.base import Forge, ForgeError, Issue, ItemKind, PullRequest, marker_matches
from hera_flows.steps.forge.rest import RestClient, RetryPolicy, cap, retry_after

RETRY_ATTEMPTS = 5
RETRY_BASE_DELAY = 1.0  # seconds; doubled per attempt, with jitter
MAX_RETRY_WAIT = 60.0  # GitLab's rate limits are per minute: a longer wait is left to Argo's retry backoff
MAX_TOTAL_WAIT = 150.0
RATE_LIMIT_WAIT = 60.0  # a 429 without Retry-After or RateLimit-Reset
MAX_TITLE_CHARS = 255  # GitLab rejects longer titles
MAX_BODY_CHARS = 1_000_000  # descriptions (1,048,576) and notes (1,000,000)
MAX_ISSUE_PAGES = 10
MAX_PULL_PAGES = 10  # list_open_prs reads at most 1,000 open merge requests
TIMEOUT_SECONDS = 30.0
HINTS = {
    401: " (check the forge token in the Secret)",
    403: " (the token lacks a permission on this project: it needs the api scope and the Developer role)",
    404: " (check --repo-slug, the project path group/name, and that the token can see the project)",
}

_RESOURCE: dict[str, str] = {"pr": "merge_requests", "issue": "issues"}


class GitLabForge(Forge):
    # Project paths may have subgroups (group/subgroup/name); a segment starts with a letter, digit or "_"
    # as GitLab requires, so "." and ".." never reach the URL.
    SLUG = (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+$"),
            "group/name or group/subgroup/name")

    def blob_url(self, branch: str, path: str) -> str | None:
        from urllib.parse import quote

        return f"{self._web}/blob/{quote(branch)}/{quote(path)}"

    def __init__(
        self,
        *,
        api_url: str,
        repo_slug: str,
        token: str,
        timeout: float = TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.slug = repo_slug.strip("/")
        self._project = f"/projects/{quote(self.slug, safe='')}"
        # The web pages of comments: the instance root is the API URL without /api/v4 (relative URL roots kept).
        root = re.sub(r"/api/v4/?$", "", api_url.rstrip("/"))
        self._web = f"{root}/{self.slug}/-"
        self._api = RestClient(
            service="GitLab",
            base_url=api_url,
            token=token,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            sleep=sleep,
            policy=RetryPolicy(attempts=RETRY_ATTEMPTS, base_delay=RETRY_BASE_DELAY, max_single_wait=MAX_RETRY_WAIT,
                               max_total_wait=MAX_TOTAL_WAIT),
            rate_limit_delay=_rate_limit_delay,
            error_text=_message,
            hints=HINTS,
        )

    def close(self) -> None:
        self._api.close()

    # --- merge requests ------------------------------------------------------------------------------------

    def find_open_pr(self, branch: str) -> PullRequest | None:
        items = self._api.request(
            "GET", f"{self._project}/merge_requests",
            params={"source_branch": branch, "state": "opened", "per_page": 100},
        )
        for item in items or []:
            # The list also holds merge requests from forks into this project; ours come from the project itself.
            if (
                isinstance(item, dict)
                and item.get("source_branch") == branch
                and item.get("state") == "opened"
                and item.get("source_project_id") == item.get("target_project_id")
            ):
                return _merge_request(item)
        return None

    def list_open_prs(self, head_prefix: str) -> list[PullRequest]:
        """Open merge requests from this project whose source branch starts with ``head_prefix`` (GitLab has no
        prefix filter: the open list is read page by page, at most ``MAX_PULL_PAGES`` pages of 100)."""
        found: list[PullRequest] = []
        params = {"state": "opened", "order_by": "created_at", "sort": "desc"}
        for items in self._api.pages(f"{self._project}/merge_requests", params, per_page=100, max_pages=MAX_PULL_PAGES):
            for item in items:
                if (
                    isinstance(item, dict)
                    and str(item.get("source_branch", "")).startswith(head_prefix)
                    and item.get("state") == "opened"
                    and item.get("source_project_id") == item.get("target_project_id")
                ):
                    found.append(_merge_request(item))
        return found

    def create_pr(self, *, branch: str, base: str, title: str, body: str) -> PullRequest:
        payload = {
            "source_branch": branch,
            "target_branch": base,
            "title": cap(title, MAX_TITLE_CHARS),
            "description": cap(body, MAX_BODY_CHARS),
        }
        return _merge_request(self._api.request("POST", f"{self._project}/merge_requests", json=payload))

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None) -> PullRequest:
        return _merge_request(
            self._api.request("PUT", f"{self._project}/merge_requests/{int(number)}", json=_edits(title, body))
        )

    # --- notes and labels: on a merge request or an issue, told apart by ``kind`` ----------------------------

    def comment(self, number: int, body: str, *, kind: ItemKind = "pr") -> str:
        resource = _RESOURCE[kind]
        note = self._api.request(
            "POST", f"{self._project}/{resource}/{int(number)}/notes", json={"body": cap(body, MAX_BODY_CHARS)}
        )
        note_id = note.get("id") if isinstance(note, dict) else None
        return f"{self._web}/{resource}/{int(number)}" + (f"#note_{note_id}" if note_id is not None else "")

    def add_labels(self, number: int, labels: Sequence[str], *, kind: ItemKind = "pr") -> None:
        names = _label_list(labels)
        if names:
            self._api.request("PUT", f"{self._project}/{_RESOURCE[kind]}/{int(number)}", json={"add_labels": names})

    # --- issues --------------------------------------------------------------------------------------------

    def find_open_issue(self, marker: str, *, labels: Sequence[str] = ()) -> Issue | None:
        """GitLab's ``search`` (substring match on the description) finds the marker among any number of open
        issues in one request; when it finds nothing, a scan of the newest open issues double-checks, in case an
        instance's search treats the marker's punctuation differently."""
        params: dict[str, Any] = {"state": "opened", "order_by": "updated_at", "sort": "desc"}
        if labels:
            params["labels"] = _label_list(labels)
        for query in ({**params, "search": marker, "in": "description"}, params):
            for items in self._api.pages(f"{self._project}/issues", query, per_page=100, max_pages=MAX_ISSUE_PAGES):
                for item in items:
                    if (isinstance(item, dict) and item.get("state") == "opened"
                            and marker_matches(item.get("description"), marker)):
                        return _issue(item)
        return None

    def create_issue(self, *, title: str, body: str, labels: Sequence[str] = ()) -> Issue:
        payload: dict[str, Any] = {"title": cap(title, MAX_TITLE_CHARS), "description": cap(body, MAX_BODY_CHARS)}
        names = _label_list(labels)
        if names:
            payload["labels"] = names
        return _issue(self._api.request("POST", f"{self._project}/issues", json=payload))

    def update_issue(self, number: int, *, title: str | None = None, body: str | None = None) -> Issue:
        return _issue(self._api.request("PUT", f"{self._project}/issues/{int(number)}", json=_edits(title, body)))


def _rate_limit_delay(response: Any, attempt: int) -> float | None:
    """Seconds GitLab asks us to wait on a 429, or None for any other status."""
    if response.status_code != 429:
        return None
    wait = retry_after(response.headers)
    if wait is not None:
        return wait
    reset = response.headers.get("ratelimit-reset", "")
    if reset.isdigit():
        return max(0.0, float(reset) - time.time()) + 1.0
    return RATE_LIMIT_WAIT * attempt


def _message(response: Any) -> str:
    """GitLab's error text: ``message`` as a string, a list, or field -> [problems]; or ``error``."""
    try:
        data = response.json()
    except ValueError:
        return (response.text or response.reason_phrase or "")[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    message = data.get("message", data.get("error", ""))
    if isinstance(message, list):
        text = "; ".join(str(m) for m in message)
    elif isinstance(message, dict):
        text = "; ".join(
            f"{field} {' '.join(map(str, problems)) if isinstance(problems, list) else problems}"
            for field, problems in message.items()
        )
    else:
        text = str(message)
    if data.get("error_description"):
        text = f"{text}: {data['error_description']}"
    return text[:500]


def _label_list(labels: Sequence[str]) -> str:
    """GitLab takes labels as one comma-separated string, so a comma cannot be part of a label name here."""
    names = []
    for label in dict.fromkeys(labels):
        if "," in label or not label.strip():
            log(f"GitLab: label {label!r} skipped (GitLab separates labels with commas)")
            continue
        names.append(label.strip())
    return ",".join(names)


def _edits(title: str | None, body: str | None) -> dict[str, str]:
    edits: dict[str, str] = {}
    if title is not None:
        edits["title"] = cap(title, MAX_TITLE_CHARS)
    if body is not None:
        edits["description"] = cap(body, MAX_BODY_CHARS)
    return edits


def _check(item: Any, kind: str) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("iid"), int):
        raise ForgeError(f"GitLab returned an unexpected {kind} object", status=200)
    return item


def _state(value: Any) -> str:
    """GitLab's ``opened`` is GitHub's ``open``; callers see one vocabulary (open, closed, merged, locked)."""
    return "open" if value == "opened" else str(value or "")


def _merge_request(item: Any) -> PullRequest:
    item = _check(item, "merge request")
    return PullRequest(
        number=int(item["iid"]),
        url=str(item.get("web_url", "")),
        state=_state(item.get("state")),
        head=str(item.get("source_branch", "")),
        title=str(item.get("title", "")),
    )


def _issue(item: Any) -> Issue:
    item = _check(item, "issue")
    return Issue(
        number=int(item["iid"]),
        url=str(item.get("web_url", "")),
        state=_state(item.get("state")),
        title=str(item.get("title", "")),
    )
