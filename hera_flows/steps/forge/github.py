"""GitHub's REST API (api.github.com or GitHub Enterprise Server's /api/v3) behind the Forge interface.

Requests carry ``Authorization: Bearer``, ``Accept: application/vnd.github+json`` and the pinned
``X-GitHub-Api-Version: 2022-11-28``. Retries, backoff and error messages are shared with the other forges
(rest.py); what is GitHub's own is how its rate limits say when to come back:

- 403/429 rate limits: retried after ``Retry-After``, or at ``x-ratelimit-reset`` when ``x-ratelimit-remaining``
  is 0, or after a minute for a secondary limit without either header; a plain 403 is a missing permission;
- a pull request is an issue too: comments and labels go to the same ``/issues/{number}`` endpoints for both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from hera_flows.steps.forge.base import Forge, ForgeError, Issue, ItemKind, PullRequest, marker_matches
from hera_flows.steps.forge.rest import RestClient, RetryPolicy, cap, retry_after

API_VERSION = "2022-11-28"
RETRY_ATTEMPTS = 5
RETRY_BASE_DELAY = 1.0  # seconds; doubled per attempt, with jitter
MAX_RETRY_WAIT = 60.0  # the longest single wait this step sits out (GitHub's "wait at least one minute")
MAX_TOTAL_WAIT = 150.0
SECONDARY_LIMIT_WAIT = 60.0
MAX_BODY_CHARS = 65_000  # GitHub rejects bodies over 65,536 characters
MAX_TITLE_CHARS = 256
MAX_ISSUE_PAGES = 10
MAX_PULL_PAGES = 10  # list_open_prs reads at most 1,000 open pull requests
TIMEOUT_SECONDS = 30.0
HINTS = {
    401: " (check the forge token in the Secret)",
    403: " (the token lacks a permission on this repository)",
    404: " (check --repo-slug and that the token can see the repository)",
}


class GitHubForge(Forge):
    def blob_url(self, branch: str, path: str) -> str | None:
        from urllib.parse import quote

        return f"{self._web}/{self.owner}/{self.name}/blob/{quote(branch)}/{quote(path)}"

    def __init__(
        self,
        *,
        api_url: str,
        repo_slug: str,
        token: str,
        timeout: float = TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.owner, self.name = repo_slug.split("/", 1)
        self._repo = f"/repos/{self.owner}/{self.name}"
        # the web root: https://api.github.com -> https://github.com; GHES https://HOST/api/v3 -> https://HOST
        root = api_url.rstrip("/")
        self._web = "https://github.com" if root == "https://api.github.com" else re.sub(r"/api/v3$", "", root)
        self._api = RestClient(
            service="GitHub",
            base_url=api_url,
            token=token,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            timeout=timeout,
            sleep=sleep,
            policy=RetryPolicy(attempts=RETRY_ATTEMPTS, base_delay=RETRY_BASE_DELAY, max_single_wait=MAX_RETRY_WAIT,
                               max_total_wait=MAX_TOTAL_WAIT),
            rate_limit_delay=_rate_limit_delay,
            error_text=_message,
            hints=HINTS,
        )
        self._request = self._api.request

    def close(self) -> None:
        self._api.close()

    # --- pull requests -------------------------------------------------------------------------------------

    def find_open_pr(self, branch: str) -> PullRequest | None:
        pulls = self._request(
            "GET", f"{self._repo}/pulls", params={"head": f"{self.owner}:{branch}", "state": "open", "per_page": 100}
        )
        for item in pulls or []:
            if (item.get("head") or {}).get("ref") == branch and item.get("state") == "open":
                return _pull(item)
        return None

    def list_open_prs(self, head_prefix: str) -> list[PullRequest]:
        found: list[PullRequest] = []
        for page in range(1, MAX_PULL_PAGES + 1):
            items = self._request("GET", f"{self._repo}/pulls",
                                  params={"state": "open", "per_page": 100, "page": page}) or []
            for item in items:
                head = item.get("head") or {}
                same_repo = ((head.get("repo") or {}).get("full_name") or f"{self.owner}/{self.name}") \
                    == f"{self.owner}/{self.name}"
                if same_repo and str(head.get("ref", "")).startswith(head_prefix) and item.get("state") == "open":
                    found.append(_pull(item))
            if len(items) < 100:
                break
        return found

    def create_pr(self, *, branch: str, base: str, title: str, body: str) -> PullRequest:
        payload = {"title": cap(title, MAX_TITLE_CHARS), "head": branch, "base": base,
                   "body": cap(body, MAX_BODY_CHARS)}
        return _pull(self._request("POST", f"{self._repo}/pulls", json=payload))

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None) -> PullRequest:
        return _pull(self._request("PATCH", f"{self._repo}/pulls/{int(number)}", json=_edits(title, body)))

    # --- shared by pull requests and issues (one number sequence on GitHub: ``kind`` changes nothing) -----

    def comment(self, number: int, body: str, *, kind: ItemKind = "pr") -> str:
        created = self._request(
            "POST", f"{self._repo}/issues/{int(number)}/comments", json={"body": cap(body, MAX_BODY_CHARS)}
        )
        return str(created.get("html_url", ""))

    def add_labels(self, number: int, labels: Sequence[str], *, kind: ItemKind = "pr") -> None:
        if labels:
            self._request("POST", f"{self._repo}/issues/{int(number)}/labels", json={"labels": list(labels)})

    # --- issues --------------------------------------------------------------------------------------------

    def find_open_issue(self, marker: str, *, labels: Sequence[str] = ()) -> Issue | None:
        params: dict[str, Any] = {"state": "open"}
        if labels:
            params["labels"] = ",".join(labels)
        for items in self._api.pages(f"{self._repo}/issues", params, per_page=100, max_pages=MAX_ISSUE_PAGES):
            for item in items:
                # The issues list includes pull requests (they carry a "pull_request" key); skip them.
                if isinstance(item, dict) and "pull_request" not in item and marker_matches(item.get("body"), marker):
                    return _issue(item)
        return None

    def create_issue(self, *, title: str, body: str, labels: Sequence[str] = ()) -> Issue:
        payload: dict[str, Any] = {"title": cap(title, MAX_TITLE_CHARS), "body": cap(body, MAX_BODY_CHARS)}
        if labels:
            payload["labels"] = list(labels)
        return _issue(self._request("POST", f"{self._repo}/issues", json=payload))

    def update_issue(self, number: int, *, title: str | None = None, body: str | None = None) -> Issue:
        return _issue(self._request("PATCH", f"{self._repo}/issues/{int(number)}", json=_edits(title, body)))


def _rate_limit_delay(response: Any, attempt: int) -> float | None:
    """Seconds GitHub asks us to wait on a 403/429 rate limit, or None when it is no rate limit."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    wait = retry_after(headers)
    if wait is not None:
        return wait
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
        return max(0.0, float(headers["x-ratelimit-reset"]) - time.time()) + 1.0
    if response.status_code == 429 or "rate limit" in _message(response).lower():
        return SECONDARY_LIMIT_WAIT * attempt
    return None  # a plain 403: the token lacks a permission; retrying will not grant it


def _message(response: Any) -> str:
    """GitHub's error text: ``message`` plus each validation error's message or code."""
    try:
        data = response.json()
    except ValueError:
        return (response.text or response.reason_phrase or "")[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    parts = [str(data.get("message", ""))]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            fields = " ".join(str(error.get(k, "")) for k in ("resource", "field", "code"))
            parts.append(str(error.get("message") or fields))
        else:
            parts.append(str(error))
    return ": ".join(p for p in parts if p)[:500]


def _edits(title: str | None, body: str | None) -> dict[str, str]:
    edits: dict[str, str] = {}
    if title is not None:
        edits["title"] = cap(title, MAX_TITLE_CHARS)
    if body is not None:
        edits["body"] = cap(body, MAX_BODY_CHARS)
    return edits


def _check(item: Any, kind: str) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("number"), int):
        raise ForgeError(f"GitHub returned an unexpected {kind} object", status=200)
    return item


def _pull(item: dict[str, Any]) -> PullRequest:
    item = _check(item, "pull request")
    return PullRequest(
        number=int(item["number"]),
        url=str(item.get("html_url", "")),
        state=str(item.get("state", "")),
        head=str((item.get("head") or {}).get("ref", "")),
        title=str(item.get("title", "")),
    )


def _issue(item: dict[str, Any]) -> Issue:
    item = _check(item, "issue")
    return Issue(
        number=int(item["number"]),
        url=str(item.get("html_url", "")),
        state=str(item.get("state", "")),
        title=str(item.get("title", "")),
    )
