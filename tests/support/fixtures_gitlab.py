"""pytest fixtures for the GitLab REST stand-in (the stand-in itself: hera_flows/local/standins/gitlab.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hera_flows.local.standins.base import ApiError, RecordedRequest  # noqa: F401 - re-exported for tests
from hera_flows.local.standins.gitlab import (  # noqa: F401 - re-exported for tests
    DEFAULT_PROJECT,
    PREFIX,
    TOKEN,
    WEB,
    GitLabStandIn,
    ProjectState,
)


@pytest.fixture()
def make_gitlab_api() -> Iterator[Callable[..., GitLabStandIn]]:
    """Factory: ``make_gitlab_api(token=..., projects=(...))``; by default with the project acme/ml/gitops."""
    started: list[GitLabStandIn] = []

    def make(*, token: str = TOKEN, projects: tuple[str, ...] = (DEFAULT_PROJECT,)) -> GitLabStandIn:
        api = GitLabStandIn(token=token).start()
        for path in projects:
            api.add_project(path)
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()


@pytest.fixture()
def gitlab_api(make_gitlab_api: Callable[..., GitLabStandIn]) -> GitLabStandIn:
    """A running stand-in at ``gitlab_api.url`` (token ``gitlab_api.token``) holding acme/ml/gitops."""
    return make_gitlab_api()
