"""What the review and report steps need from a git forge, independent of GitHub or GitLab.

Steps talk to this small interface only, so a second forge is one more module and one line in ``FORGES``.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hera_flows.steps.common import StepError

# forge kind -> "module:class"; imported lazily (httpx only loads when a forge is used).
FORGES: dict[str, str] = {
    "github": "hera_flows.steps.forge.github:GitHubForge",
    "gitlab": "hera_flows.steps.forge.gitlab:GitLabForge",
}
_SLUG = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


# What a number given to comment()/add_labels() refers to. GitHub numbers pull requests and issues in one
# sequence, GitLab numbers merge requests and issues separately (!3 and #3 are different things).
ItemKind = Literal["pr", "issue"]


class ForgeError(StepError):
    """The forge answered a request with an error it will repeat (4xx); ``status`` lets callers branch on it."""

    def __init__(self, message: str, *, status: int, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail  # the forge's own error text, for matching (e.g. "already exists")


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str  # the web page a person opens
    state: str
    head: str
    title: str


@dataclass(frozen=True)
class Issue:
    number: int
    url: str
    state: str
    title: str


class Forge(ABC):
    """Pull requests and issues of one repository; use it as a context manager so connections are closed."""

    def close(self) -> None:  # noqa: B027 - optional for implementations without resources
        """Release network resources."""

    def __enter__(self) -> Forge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def blob_url(self, branch: str, path: str) -> str | None:
        """The web page of ``path`` on ``branch`` (a file the PR adds, linked from its description); None when the
        forge has none."""
        return None

    @abstractmethod
    def find_open_pr(self, branch: str) -> PullRequest | None:
        """The open pull request whose head is ``branch`` of this repository, if any."""

    @abstractmethod
    def list_open_prs(self, head_prefix: str) -> list[PullRequest]:
        """The open pull requests of this repository whose head branch starts with ``head_prefix`` (e.g.
        ``drift/``), from this repository only (not forks); used for a pattern's ceiling of open PRs. An
        implementation may stop after a bounded number of pages (at least 1,000 PRs)."""

    @abstractmethod
    def create_pr(self, *, branch: str, base: str, title: str, body: str) -> PullRequest: ...

    @abstractmethod
    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None) -> PullRequest: ...

    @abstractmethod
    def comment(self, number: int, body: str, *, kind: ItemKind = "pr") -> str:
        """Comment on pull request (``kind="pr"``) or issue (``kind="issue"``) ``number``; returns the comment's
        web URL."""

    @abstractmethod
    def add_labels(self, number: int, labels: Sequence[str], *, kind: ItemKind = "pr") -> None:
        """Add labels to a pull request or issue (labels it already has stay; missing labels are created)."""

    @abstractmethod
    def find_open_issue(self, marker: str, *, labels: Sequence[str] = ()) -> Issue | None:
        """The open issue whose body ends with ``marker`` (:func:`marker_matches`), optionally among ``labels``."""

    @abstractmethod
    def create_issue(self, *, title: str, body: str, labels: Sequence[str] = ()) -> Issue: ...

    @abstractmethod
    def update_issue(self, number: int, *, title: str | None = None, body: str | None = None) -> Issue: ...


def marker_matches(body: str | None, marker: str) -> bool:
    """An issue belongs to a dedupe key only when its body *ends* with that key's marker (hera-flows writes it
    as the last line); a marker quoted anywhere else, e.g. planted in an agent's text, never redirects."""
    if not body:
        return False
    return body.rstrip().endswith(marker)


class RedactingForge(Forge):
    """Every title, body and comment passes :func:`hera_flows.steps.redact.redact` on its way out, with this
    step's own tokens as exact values: whatever a log tail or an agent wrote, no credential reaches the forge."""

    def __init__(self, inner: Forge) -> None:
        from hera_flows.steps.redact import own_secret_values

        self._inner = inner
        self._values = own_secret_values()

    @property
    def inner(self) -> Forge:
        """The forge client every request goes to."""
        return self._inner

    def _clean(self, text: str | None) -> str | None:
        from hera_flows.steps.redact import redact

        return None if text is None else redact(text, values=self._values)

    def close(self) -> None:
        self._inner.close()

    def blob_url(self, branch: str, path: str) -> str | None:
        return self._inner.blob_url(branch, path)

    def find_open_pr(self, branch: str) -> PullRequest | None:
        return self._inner.find_open_pr(branch)

    def list_open_prs(self, head_prefix: str) -> list[PullRequest]:
        return self._inner.list_open_prs(head_prefix)

    def create_pr(self, *, branch: str, base: str, title: str, body: str) -> PullRequest:
        return self._inner.create_pr(branch=branch, base=base, title=self._clean(title) or "",
                                     body=self._clean(body) or "")

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None) -> PullRequest:
        return self._inner.update_pr(number, title=self._clean(title), body=self._clean(body))

    def comment(self, number: int, body: str, *, kind: ItemKind = "pr") -> str:
        return self._inner.comment(number, self._clean(body) or "", kind=kind)

    def add_labels(self, number: int, labels: Sequence[str], *, kind: ItemKind = "pr") -> None:
        self._inner.add_labels(number, labels, kind=kind)

    def find_open_issue(self, marker: str, *, labels: Sequence[str] = ()) -> Issue | None:
        return self._inner.find_open_issue(marker, labels=labels)

    def create_issue(self, *, title: str, body: str, labels: Sequence[str] = ()) -> Issue:
        return self._inner.create_issue(title=self._clean(title) or "", body=self._clean(body) or "", labels=labels)

    def update_issue(self, number: int, *, title: str | None = None, body: str | None = None) -> Issue:
        return self._inner.update_issue(number, title=self._clean(title), body=self._clean(body))


def open_forge(kind: str, *, api_url: str, repo_slug: str, token: str) -> Forge:
    """The forge client for ``kind`` (``github``, ``gitlab``) on repository ``repo_slug`` (``owner/name``; a
    forge class may accept other shapes through its ``SLUG`` = (pattern, description), e.g. GitLab subgroups)."""
    if kind not in FORGES:
        raise StepError(f"unknown forge {kind!r} (supported: {', '.join(sorted(FORGES))})")
    module_name, class_name = FORGES[kind].split(":")
    forge_class = getattr(importlib.import_module(module_name), class_name)
    slug_pattern, slug_shape = getattr(forge_class, "SLUG", (_SLUG, "owner/name"))
    if not slug_pattern.match(repo_slug):
        raise StepError(f"--repo-slug must look like {slug_shape}, got {repo_slug!r}")
    if not re.match(r"^https?://", api_url):
        raise StepError(f"--api-url must be an http(s) URL, got {api_url!r}")
    return RedactingForge(forge_class(api_url=api_url, repo_slug=repo_slug, token=token))
