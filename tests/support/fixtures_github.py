"""pytest fixtures for the GitHub REST stand-in (the stand-in itself: hera_flows/local/standins/github.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hera_flows.local.standins.base import ApiError, RecordedRequest  # noqa: F401 - re-exported for tests
from hera_flows.local.standins.github import (  # noqa: F401 - re-exported for tests
    DEFAULT_REPO,
    TOKEN,
    GitHubStandIn,
    RepoState,
)


@pytest.fixture()
def make_github_api() -> Iterator[Callable[..., GitHubStandIn]]:
    """Factory: ``make_github_api(prefix="/api/v3", token=...)``; each has the repository acme/ml-gitops."""
    started: list[GitHubStandIn] = []

    def make(*, prefix: str = "", token: str = TOKEN, repos: tuple[str, ...] = (DEFAULT_REPO,)) -> GitHubStandIn:
        api = GitHubStandIn(token=token, prefix=prefix).start()
        for slug in repos:
            api.add_repo(slug)
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()


@pytest.fixture()
def github_api(make_github_api: Callable[..., GitHubStandIn]) -> GitHubStandIn:
    """A running stand-in at ``github_api.url`` (token ``github_api.token``) holding acme/ml-gitops."""
    return make_github_api()
