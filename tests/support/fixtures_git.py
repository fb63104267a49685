"""``bare_remote``: a minimal GitOps repository as a real bare git repository, for the workspace and publish steps.

Deliberately small and stable (four files with short, fixed content) so publish tests can assert exact trees;
it is built with the same helpers as the richer ``gitops_remote`` (tests/support/fixtures_gitops.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported lazily below: pytest loads fixtures_gitops as a plugin after this module
    from tests.support.fixtures_gitops import GitopsRemote

BARE_REMOTE_FILES: dict[str, str] = {
    "README.md": "# ml-serving\n\nChanges arrive as pull requests.\n",
    ".github/workflows/ci.yml": "name: ci\non: [pull_request]\njobs: {}\n",
    "inference/fraud-detector.yaml": (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n"
        "  name: fraud-detector\n"
        "spec:\n"
        "  predictor:\n"
        "    model:\n"
        "      modelFormat:\n"
        "        name: mlflow\n"
        "      storageUri: s3://models/fraud-detector/6\n"
    ),
    "model-cards/fraud-detector.md": "# Model card: fraud-detector\n\n- Version: 6\n",
}


@pytest.fixture()
def bare_remote(tmp_path: Path) -> GitopsRemote:
    """A bare repository (``.url`` is a local path) whose ``main`` holds ``BARE_REMOTE_FILES`` in one commit."""
    from tests.support.fixtures_gitops import create_gitops_remote

    return create_gitops_remote(tmp_path / "bare-remote", dict(BARE_REMOTE_FILES))
