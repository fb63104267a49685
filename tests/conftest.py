"""Shared test setup. Fixture modules live in tests/support/ (one per real or stand-in component) and are
loaded here as pytest plugins, so any test can ask for e.g. the `mlflow_server` fixture by name."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

pytest_plugins = sorted(
    f"tests.support.{path.stem}" for path in (Path(__file__).parent / "support").glob("fixtures_*.py")
)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read the official schemas and fixtures from ../shared")
    return SHARED


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures"


@pytest.fixture(autouse=True, scope="session")
def _git_identity() -> None:
    """Test fixtures commit to scratch repositories; a fresh CI machine has no global git identity."""
    import os

    for var, value in {
        "GIT_AUTHOR_NAME": "hera-flows tests",
        "GIT_AUTHOR_EMAIL": "tests@hera-flows.invalid",
        "GIT_COMMITTER_NAME": "hera-flows tests",
        "GIT_COMMITTER_EMAIL": "tests@hera-flows.invalid",
    }.items():
        os.environ.setdefault(var, value)
