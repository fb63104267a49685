"""The HTTP side every forge client shares: one httpx client, retries with backoff, clear errors, paging.

A forge module (github.py, gitlab.py) supplies only what differs between forges: its headers, how its rate
limit responses say when to come back (``rate_limit_delay``), how its error bodies read (``error_text``) and a
hint per status. Failures are sorted the same way for every forge:

- connection errors and 5xx: retried with exponential backoff and jitter;
- rate limits (whatever ``rate_limit_delay`` recognises): retried after the delay the forge asks for; a wait
  longer than ``max_single_wait`` is not sat out here: the step exits as transient (75) and Argo's retry
  backoff takes over;
- any other 4xx: a ForgeError (exit 1) with the forge's own message. The token never appears in a message.

The backoff is this module's own and not ``common.retry`` because the server dictates some of the delays here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hera_flows.steps.common import TransientError, log
from hera_flows.steps.forge.base import ForgeError


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 1.0  # seconds; doubled per attempt, with jitter
    max_single_wait: float = 60.0  # the longest single server-requested wait this step sits out
    max_total_wait: float = 150.0


def backoff(attempt: int, base_delay: float) -> float:
    """Exponential backoff with jitter: about ``base_delay * 2**(attempt-1)``, capped at 30 s."""
    return min(30.0, base_delay * 2.0 ** (attempt - 1)) * (0.5 + random.random() / 2)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header in seconds (the delta-seconds form both forges send), or None."""
    value = headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


_TRAILING_MARKER = re.compile(r"\n*<!-- hera-flows:[^\n]*-->\s*\Z")


def cap(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters (an ellipsis marks the cut), so the forge does not reject it.
    A trailing hera-flows marker line survives the cut: it is how the next run finds this issue again."""
    if len(text) <= limit:
        return text
    marker = _TRAILING_MARKER.search(text)
    tail = marker.group(0) if marker and len(marker.group(0)) < limit // 2 else ""
    return text[: limit - 1 - len(tail)] + "…" + tail


class RestClient:
    """JSON requests to one forge API with the retry and error rules above; ``service`` names it in messages."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        token: str,
        headers: dict[str, str],
        timeout: float,
        sleep: Callable[[float], None],
        policy: RetryPolicy,
        rate_limit_delay: Callable[[Any, int], float | None],
        error_text: Callable[[Any], str],
        hints: Mapping[int, str],
    ) -> None:
        import httpx

        self._httpx = httpx
        self.service = service
        self._token = token
        self._sleep = sleep
        self._policy = policy
        self._rate_limit_delay = rate_limit_delay
        self._error_text = error_text
        self._hints = hints
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": "hera-flows", **headers},
            timeout=timeout,
            # A renamed repository answers 301; httpx drops the Authorization header when redirected to another
            # host (which is why no forge client here sends its token in a custom header such as PRIVATE-TOKEN).
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """The decoded JSON body of a successful response (None when it has no body)."""
        what = f"{self.service} API {method} {path}"
        return self._json(self.send(method, path, params=params, json=json), what)

    def pages(
        self, path: str, params: dict[str, Any], *, per_page: int = 100, max_pages: int = 10
    ) -> Iterator[list[Any]]:
        """GET ``path`` page by page (``page``/``per_page``): follows ``X-Next-Page`` when the forge sends it
        (GitLab), otherwise stops at the first short page (GitHub); never more than ``max_pages`` requests."""
        page = 1
        for _ in range(max_pages):
            response = self.send("GET", path, params={**params, "per_page": per_page, "page": page})
            items = self._json(response, f"{self.service} API GET {path}") or []
            if not isinstance(items, list):
                raise ForgeError(f"{self.service} API GET {path} returned no list", status=response.status_code)
            yield items
            following = response.headers.get("x-next-page")
            if following is not None:
                if not following.strip().isdigit():
                    return  # present and empty: this was the last page
                page = int(following)
            elif len(items) < per_page:
                return
            else:
                page += 1

    def send(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """The successful ``httpx.Response``, after retries; ForgeError or TransientError otherwise."""
        httpx = self._httpx
        policy = self._policy
        waited = 0.0
        what = f"{self.service} API {method} {path}"
        for attempt in range(1, policy.attempts + 1):
            try:
                response = self._client.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                problem, delay = f"{type(exc).__name__}: {self.clean(str(exc))}", backoff(attempt, policy.base_delay)
            else:
                if response.status_code < 400:
                    return response
                retry_delay = self._retry_delay(response, attempt, what)
                if retry_delay is None:
                    raise self._error(what, response)
                delay = retry_delay
                problem = f"HTTP {response.status_code}"
            if attempt == policy.attempts or waited + delay > policy.max_total_wait:
                raise TransientError(f"{what} failed after {attempt} attempts: {problem}")
            log(f"{what}: attempt {attempt} failed ({problem}); retrying in {delay:.1f}s")
            self._sleep(delay)
            waited += delay
        raise AssertionError("unreachable")  # pragma: no cover

    def clean(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _retry_delay(self, response: Any, attempt: int, what: str) -> float | None:
        """Seconds to wait before retrying ``response``, or None when retrying cannot help."""
        if response.status_code >= 500:
            return backoff(attempt, self._policy.base_delay)
        wait = self._rate_limit_delay(response, attempt)
        if wait is not None and wait > self._policy.max_single_wait:
            raise TransientError(f"{what}: {self.service} rate limit, retry allowed only in {wait:.0f}s")
        return wait

    def _error(self, what: str, response: Any) -> ForgeError:
        status = response.status_code
        detail = self.clean(self._error_text(response))
        hint = self._hints.get(status, "")
        return ForgeError(f"{what} failed with HTTP {status}: {detail}{hint}", status=status, detail=detail)

    def _json(self, response: Any, what: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            # A proxy's HTML page instead of the forge's JSON: not something a retry of this step can fix soon.
            raise ForgeError(f"{what} returned HTTP {response.status_code} without a JSON body",
                             status=response.status_code) from None
