"""The builtin rollback editor: ``git revert`` of the promotion commit in the checkout, nothing else.

The revert restores what the promotion changed — the serving manifest and the model card entry — to the state
before it, with git's three-way merge, so later unrelated changes to the same files survive. A merge commit is
reverted against its first parent (``-m 1``: the base branch before the PR). A revert that conflicts (someone
changed the same lines since) changes nothing and fails with the files named: a person must resolve it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.contract import Flag
from hera_flows.steps.markdown import inline_code

SETTINGS = (
    Flag("inference-dir", "folder of the serving manifests"),
    Flag("model-cards-dir", "folder of the model cards"),
)


def _commit(context: dict[str, Any]) -> str:
    commit = str(context.get("commit") or "")
    if not commit.isalnum() or len(commit) < 7:
        raise StepError("the context has no promotion commit to revert")
    return commit


def writable_paths(repo: Path, context: dict[str, Any], settings: argparse.Namespace) -> list[str]:
    """A rollback may change exactly the files its promotion changed (the guard read them from the history; publish's
    own checkout is shallow), inside the allowed paths."""
    raw = context.get("paths")
    paths: list[Any] = raw if isinstance(raw, list) else []
    return [p for p in paths if isinstance(p, str) and p and not p.startswith("/") and ".." not in p.split("/")]


def _parents(repo: Path, commit: str) -> tuple[str, ...]:
    from hera_flows.steps.gitrepo import run_git

    shown = run_git(["rev-list", "--parents", "-n", "1", commit], cwd=repo, check=False)
    return tuple(shown.stdout.split()[1:]) if shown.returncode == 0 else ()


def builtin_edit(repo: Path, context: dict[str, Any], settings: argparse.Namespace) -> str:
    from hera_flows.steps.gitrepo import run_git

    commit = _commit(context)
    parents = _parents(repo, commit)
    if not parents:
        raise StepError(f"commit {commit[:12]} is not in the checkout's history (raise agent.clone_depth) or has "
                        "no parent")
    args = ["revert", "--no-commit", *(["-m", "1"] if len(parents) > 1 else []), commit]
    result = run_git(args, cwd=repo, check=False)
    if result.returncode != 0:
        conflicts = run_git(["diff", "--name-only", "--diff-filter=U"], cwd=repo, check=False).stdout.split()
        run_git(["revert", "--abort"], cwd=repo, check=False)
        why = f" (conflicts in {', '.join(conflicts)})" if conflicts else f": {result.stderr.strip()[:300]}"
        raise StepError(f"the revert of {commit[:12]} does not apply cleanly{why}; resolve it by hand")
    changed = run_git(["diff", "--cached", "--name-only"], cwd=repo).stdout.split()
    return render_summary(context, commit, len(parents) > 1, changed)


def render_summary(context: dict[str, Any], commit: str, merge: bool, changed: list[str]) -> str:
    code = inline_code
    model, version, previous = context.get("model"), context.get("version"), context.get("previous_version")
    lines = [
        f"# Roll back {code(str(model))} v{version} to v{previous}",
        "",
        f"`git revert{' -m 1' if merge else ''} {commit[:12]}`: the commit that promoted version {code(str(version))}"
        f" is undone, so the serving manifest and the model card are back to version {code(str(previous))}. "
        "Written by the builtin hera-flows agent (deterministic, no LLM).",
        "",
        "## Changes",
        "",
        *(f"- {code(path)}: restored to its state before the promotion." for path in changed),
    ]
    return "\n".join(lines) + "\n"
