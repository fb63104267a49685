"""A prepared agent workspace against a real bare git remote: prepare-workspace and publish as the promotion's agent
pod calls them (the generated flags, tests/support/settings.py), for the workspace, publish and safety tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hera_flows.cli import run_step
from hera_flows.steps import publish
from tests.support.fixtures_git import BARE_REMOTE_FILES
from tests.support.fixtures_gitops import GitopsRemote
from tests.support.settings import generated_flags

# publish's own flags as generated, without --pattern: the allowed paths alone decide (the pattern's narrowing to
# the run's own files is tested in test_publish_safety.py).
PUBLISH_FLAGS = [f for f in generated_flags("publish", template="mlflow-promotion")
                 if f.split("=", 1)[0][2:] in {flag.name for flag in publish.CONTRACT.flags} - {"pattern"}]

BRANCH = "model-promotion/fraud-detector-v7"
TITLE = "Promote fraud-detector v7 to champion"
ALLOWED = "inference/**,model-cards/**"
NEW_MANIFEST = BARE_REMOTE_FILES["inference/fraud-detector.yaml"].replace(
    "s3://models/fraud-detector/6", "s3://models/fraud-detector/7"
)
NEW_CARD = "# Model card: fraud-detector\n\n- Version: 7\n"


def make_context(**overrides: Any) -> dict[str, Any]:
    context = {
        "pattern": "promotion",
        "model": "fraud-detector",
        "version": "7",
        "alias": "champion",
        "model_version": {
            "name": "fraud-detector", "version": "7", "source": "models:/m-7b2e", "run_id": "4f1c0a9e2b7d",
            "model_id": "m-7b2e", "storage_uri": "s3://models/fraud-detector/7", "tags": {},
            "aliases": ["champion"], "description": "retrained", "creation_timestamp": 1760000000000,
        },
        "metrics": {"roc_auc": 0.9412, "accuracy": 0.9123},
        "params": {},
        "deployment": {"runtime_version": None, "gpu_type": None, "gpu_count": None, "replica_min": None,
                       "replica_max": None, "cpu": None, "memory": None},
        "serving": {"manifest_path": "inference/fraud-detector.yaml", "current_version": "6",
                    "current_storage_uri": "s3://models/fraud-detector/6", "metrics": {"roc_auc": 0.93}},
        "deltas": {"roc_auc": {"new": 0.9412, "old": 0.93, "delta": 0.0112}},
    }
    context.update(overrides)
    return context


@pytest.fixture()
def step_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_PARAM_CONTEXT", json.dumps(make_context()))
    monkeypatch.setenv("HF_PARAM_BRANCH", BRANCH)
    monkeypatch.setenv("HF_PARAM_TITLE", TITLE)
    monkeypatch.delenv("HF_FORGE_TOKEN", raising=False)


@pytest.fixture()
def workspace(tmp_path: Path, bare_remote: GitopsRemote, step_env: None) -> Path:
    """A prepared workspace (the prepare step already ran)."""
    ws = tmp_path / "workspace"
    assert run_prepare(bare_remote, ws) == 0
    return ws


def run_prepare(remote: GitopsRemote, ws: Path, allowed: str = ALLOWED) -> int:
    return run_step([
        "prepare-workspace", *generated_flags("prepare-workspace", template="mlflow-promotion"),
        f"--repo-url={remote.url}", "--base-branch=main", f"--workspace={ws}", f"--allowed-paths={allowed}",
    ])


def run_publish(remote: GitopsRemote, ws: Path, allowed: str = ALLOWED) -> tuple[int, dict[str, str]]:
    code = run_step([
        "publish", *PUBLISH_FLAGS,
        f"--repo-url={remote.url}", "--base-branch=main", f"--workspace={ws}",
        f"--allowed-paths={allowed}", "--author-name=hera-flows bot", "--author-email=bot@hera-flows.invalid",
        f"--outputs={ws / 'out'}",
    ])
    out = ws / "out"
    outputs = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir() if p.is_file()} if out.is_dir() else {}
    return code, outputs


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def tree(remote: GitopsRemote, ref: str) -> dict[str, str]:
    """The text files on ``ref`` (binary files are checked separately)."""
    return {path: remote.read(path, ref) for path in remote.files(ref) if not path.endswith(".png")}


def commit_count(remote: GitopsRemote, ref: str) -> int:
    return int(remote.git("rev-list", "--count", ref).strip())
