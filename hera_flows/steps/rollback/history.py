"""Which commit promoted the version a model serves, read from the GitOps repository's history.

The promotion PR's merge (a merge commit, or the squashed commit) is the newest first-parent commit of the base
branch in which the serving manifest's ``hera-flows.io/mlflow-version`` became the served version; its committer
time is when the promotion merged (a forge's merge button sets it), and its first parent holds the manifest as it
was before. Reading the repository, not the forge, keeps this forge-agnostic and true to what is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hera_flows.steps.common import StepError
from hera_flows.steps.gitrepo import run_git
from hera_flows.steps.promotion.serving_manifest import MODEL_ANNOTATION, VERSION_ANNOTATION, target_of

MAX_COMMITS = 200


@dataclass(frozen=True)
class Promotion:
    commit: str
    parents: tuple[str, ...]
    merged_at: float  # epoch seconds (committer time)
    subject: str
    version: str  # the version it promoted
    previous: str | None  # the version the manifest named before it

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


def _version_at(repo: Path, commit: str, path: str, model: str) -> str | None:
    shown = run_git(["show", f"{commit}:{path}"], cwd=repo, check=False)
    if shown.returncode != 0:
        return None
    try:
        documents = list(yaml.safe_load_all(shown.stdout))
    except yaml.YAMLError:
        return None
    for doc in documents:
        if target_of(doc) is None:
            continue
        annotations: Any = (doc.get("metadata") or {}).get("annotations") or {}
        if annotations.get(MODEL_ANNOTATION) in (model, None) and annotations.get(VERSION_ANNOTATION) is not None:
            return str(annotations[VERSION_ANNOTATION])
    return None


def find_promotion(repo: Path, path: str, model: str, version: str, *, ref: str = "HEAD") -> Promotion | None:
    """The commit of ``ref``'s first-parent history that made ``path`` serve ``version`` (None: not in the last
    MAX_COMMITS commits that touched it, or never)."""
    log = run_git(["log", "--first-parent", f"-{MAX_COMMITS}", "--format=%H %ct %P%x09%s", ref, "--", path],
                  cwd=repo).stdout
    for line in log.splitlines():
        head, _, subject = line.partition("\t")
        fields = head.split()
        if len(fields) < 2:
            continue
        commit, stamp, parents = fields[0], fields[1], tuple(fields[2:])
        if _version_at(repo, commit, path, model) != version:
            continue
        before = _version_at(repo, parents[0], path, model) if parents else None
        if before == version:
            continue  # the version was already served before this commit: look further back
        return Promotion(commit, parents, float(stamp), subject, version, before)
    return None


def touched_paths(repo: Path, promotion: Promotion) -> list[str]:
    """The files the promotion changed (against its first parent)."""
    if not promotion.parents:
        raise StepError(f"commit {promotion.commit[:12]} has no parent: there is nothing to revert to")
    out = run_git(["diff", "--name-only", "--no-renames", "-z", promotion.parents[0], promotion.commit],
                  cwd=repo).stdout
    return sorted(p for p in out.split("\0") if p)
