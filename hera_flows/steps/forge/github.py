"""GitHub's REST API (api.github.com or GitHub Enterprise Server's /api/v3) behind the Forge interface.

Requests carry ``Authorization: Bearer``, ``Accept: application/vnd.github+json`` and the pinned
``X-GitHub-Api-Version: 2022-11-28``. Failures are sorted the way GitHub documents them:

- connection errors and 5xx: retried with exponential backoff;
- 403/429 rate limits: retried after ``Retry-After``, or at ``x-ratelimit-reset`` when ``x-ratelimit-remaining``
  is 0, or after a minute for a secondary limit without either header; a wait longer than ``MAX_RETRY_WAIT`` is
  not sat out here: the step exits as transient and Argo's retry backoff takes over;
- any other 4xx: a ForgeError (exit 1) with GitHub's own message. The token never appears in a message.

The backoff is this module's own and not ``common.retry`` because the server dictates the delays here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from hera_flows.steps.common import TransientError, log
from hera_flows.steps.forge.base import Forge, ForgeError, Issue, PullRequest

API_VERSION = "2022-11-28"
RETRY_ATTEMPTS = 5
RETRY_BASE_DELAY = 1.0  # seconds; doubled per attempt, with jitter
MAX_RETRY_WAIT = 60.0  # the longest single wait this step sits out (GitHub's "wait at least one minute")
MAX_TOTAL_WAIT = 150.0
SECONDARY_LIMIT_WAIT = 60.0
MAX_BODY_CHARS = 65_000  # GitHub rejects bodies over 65,536 characters
MAX_TITLE_CHARS = 256
MAX_ISSUE_PAGES = 10
TIMEOUT_SECONDS = 30.0


class GitHubForge(Forge):
    def __init__(
        self,
        *,
        api_url: str,
        repo_slug: str,
        token: str,
        timeout: float = TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        self._httpx = httpx
        self.owner, self.name = repo_slug.split("/", 1)
        self._repo = f"/repos/{self.owner}/{self.name}"
        self._token = token
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "hera-flows",
            },
            timeout=timeout,
            follow_redirects=True,  # a renamed repository answers 301; httpx drops the token on a foreign host
        )

    def close(self) -> None:
        self._client.close()

    # --- pull requests -------------------------------------------------------------------------------------

    def find_open_pr(self, branch: str) -> PullRequest | None:
        pulls = self._request(
            "GET", f"{self._repo}/pulls", params={"head": f"{self.owner}:{branch}", "state": "open", "per_page": 100}
        )
        for item in pulls or []:
            if (item.get("head") or {}).get("ref") == branch and item.get("state") == "open":
                return _pull(item)
        return None

    def create_pr(self, *, branch: str, base: str, title: str, body: str) -> PullRequest:
        payload = {"title": _cap(title, MAX_TITLE_CHARS), "head": branch, "base": base, "body": _cap(body, MAX_BODY_CHARS)}
        return _pull(self._request("POST", f"{self._repo}/pulls", json=payload))

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None) -> PullRequest:
        return _pull(self._request("PATCH", f"{self._repo}/pulls/{int(number)}", json=_edits(title, body)))

    # --- shared by pull requests and issues ----------------------------------------------------------------

    def comment(self, number: int, body: str) -> str:
        created = self._request(
            "POST", f"{self._repo}/issues/{int(number)}/comments", json={"body": _cap(body, MAX_BODY_CHARS)}
        )
        return str(created.get("html_url", ""))

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        if labels:
            self._request("POST", f"{self._repo}/issues/{int(number)}/labels", json={"labels": list(labels)})

    # --- issues --------------------------------------------------------------------------------------------

    def find_open_issue(self, marker: str, *, labels: Sequence[str] = ()) -> Issue | None:
        params: dict[str, Any] = {"state": "open", "per_page": 100}
        if labels:
            params["labels"] = ",".join(labels)
        for page in range(1, MAX_ISSUE_PAGES + 1):
            items = self._request("GET", f"{self._repo}/issues", params={**params, "page": page}) or []
            for item in items:
                # The issues list includes pull requests (they carry a "pull_request" key); skip them.
                if "pull_request" not in item and marker in (item.get("body") or ""):
                    return _issue(item)
            if len(items) < params["per_page"]:
                break
        return None

    def create_issue(self, *, title: str, body: str, labels: Sequence[str] = ()) -> Issue:
        payload: dict[str, Any] = {"title": _cap(title, MAX_TITLE_CHARS), "body": _cap(body, MAX_BODY_CHARS)}
        if labels:
            payload["labels"] = list(labels)
        return _issue(self._request("POST", f"{self._repo}/issues", json=payload))

    def update_issue(self, number: int, *, title: str | None = None, body: str | None = None) -> Issue:
        return _issue(self._request("PATCH", f"{self._repo}/issues/{int(number)}", json=_edits(title, body)))

    # --- transport -----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        httpx = self._httpx
        waited = 0.0
        what = f"GitHub API {method} {path}"
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                response = self._client.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                problem, delay = f"{type(exc).__name__}: {self._clean(str(exc))}", _backoff(attempt)
            else:
                if response.status_code < 400:
                    return _json(response, what)
                delay = self._retry_delay(response, attempt, what)
                if delay is None:
                    raise self._error(what, response)
                problem = f"HTTP {response.status_code}"
            if attempt == RETRY_ATTEMPTS or waited + delay > MAX_TOTAL_WAIT:
                raise TransientError(f"{what} failed after {attempt} attempts: {problem}")
            log(f"{what}: attempt {attempt} failed ({problem}); retrying in {delay:.1f}s")
            self._sleep(delay)
            waited += delay
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, response: Any, attempt: int, what: str) -> float | None:
        """Seconds to wait before retrying ``response``, or None when retrying cannot help."""
        status = response.status_code
        if status >= 500:
            return _backoff(attempt)
        if status not in (403, 429):
            return None
        headers = response.headers
        wait: float | None = None
        retry_after = headers.get("retry-after", "")
        if retry_after.strip().isdigit():
            wait = float(retry_after.strip())
        elif headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
            wait = max(0.0, float(headers["x-ratelimit-reset"]) - time.time()) + 1.0
        elif status == 429 or "rate limit" in _message(response).lower():
            wait = SECONDARY_LIMIT_WAIT * attempt
        if wait is None:
            return None  # a plain 403: the token lacks a permission; retrying will not grant it
        if wait > MAX_RETRY_WAIT:
            raise TransientError(f"{what}: GitHub rate limit, retry allowed only in {wait:.0f}s")
        return wait

    def _error(self, what: str, response: Any) -> ForgeError:
        status = response.status_code
        detail = self._clean(_message(response))
        hint = {
            401: " (check the forge token in the Secret)",
            403: " (the token lacks a permission on this repository)",
            404: " (check --repo-slug and that the token can see the repository)",
        }.get(status, "")
        return ForgeError(f"{what} failed with HTTP {status}: {detail}{hint}", status=status, detail=detail)

    def _clean(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


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
            parts.append(str(error.get("message") or " ".join(str(error.get(k, "")) for k in ("resource", "field", "code"))))
        else:
            parts.append(str(error))
    return ": ".join(p for p in parts if p)[:500]


def _json(response: Any, what: str) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        # A proxy's HTML page instead of GitHub's JSON: not something a retry of this step can fix soon.
        raise ForgeError(f"{what} returned HTTP {response.status_code} without a JSON body", status=response.status_code) from None


def _backoff(attempt: int) -> float:
    return min(30.0, RETRY_BASE_DELAY * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _edits(title: str | None, body: str | None) -> dict[str, str]:
    edits: dict[str, str] = {}
    if title is not None:
        edits["title"] = _cap(title, MAX_TITLE_CHARS)
    if body is not None:
        edits["body"] = _cap(body, MAX_BODY_CHARS)
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
