"""`hera-flows step prepare-workspace`: lay out the agent contract in the shared workspace volume.

The agent (builtin or an external coding agent) gets exactly what the contract promises and nothing more:

    <workspace>/repo          a clone of the base branch, on a local branch named like the one publish pushes
    <workspace>/context.json  the event's context (pretty, sorted keys: byte-identical for a redelivered event)
    <workspace>/prompt.md     the pattern's prompt with the context in its untrusted-data section
    <workspace>/out/          where the publish step writes its outputs
    <workspace>/base-commit   the commit of the base branch the agent starts from: publish takes the agent's change
                              as a diff against it and applies that to the base branch as it is when publishing

The forge token (optional here, for private repositories) is used only by this one clone and is never written
to the checkout: git reads it from its own environment, so the agent container cannot find it on disk.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hera_flows.steps import gitrepo
from hera_flows.steps.allowlist import parse_patterns
from hera_flows.steps.common import log, parse_json, secret
from hera_flows.steps.contract import Flag, Step

BASE_COMMIT_FILE = "base-commit"

CONTRACT = Step(
    name="prepare-workspace",
    entry="hera_flows.steps.workspace:main",
    summary="clone the repository and lay out the agent contract (context, prompt) in the shared workspace",
    flags=(
        Flag("pattern", "whose prompt is rendered (and whose settings follow as flags)"),
        Flag("repo-url", "the GitOps repository to clone"),
        Flag("base-branch", "the branch the change starts from"),
        Flag("workspace", "the shared workspace volume"),
        Flag("allowed-paths", "globs the agent may change (written into the prompt)", form="csv"),
        Flag("clone-depth", "commits of history for the agent's git log; 0 = all", kind=int),
        Flag("forge", "forge kind (github or gitlab), for the git username", choices=("github", "gitlab")),
    ),
    inputs=("context", "branch"),
    outputs_flag=False,
)


def main(argv: list[str]) -> int:
    from hera_flows.steps.editors import parse_with_settings, settings_of

    args, editor = parse_with_settings(CONTRACT, argv)
    context = load_context(CONTRACT.param("context", required=True))
    allowed = parse_patterns(args.allowed_paths)
    branch = CONTRACT.param("branch").strip()
    if branch:
        gitrepo.check_branch_name(branch)
    # Before cloning: a bad context fails fast. The prompt names the settings actually configured.
    workspace = Path(args.workspace)
    prompt = render(args.pattern, context, allowed, vars(settings_of(args, editor)), workspace)

    repo = prepare(
        workspace,
        repo_url=args.repo_url,
        base_branch=args.base_branch,
        branch=branch,
        context=context,
        prompt=prompt,
        token=secret("HF_FORGE_TOKEN", required=False) or None,
        depth=max(args.clone_depth, 0) or None,
        forge=args.forge,
    )
    log(f"prepare-workspace: {args.base_branch} of the repository cloned into {repo}; context and prompt written")
    return 0


def load_context(raw: str) -> dict[str, Any]:
    """The context the agent sees, with secrets masked: it may leave the cluster (an LLM provider)."""
    from hera_flows.steps.redact import redact_data

    context: dict[str, Any] = redact_data(parse_json(raw, "the context parameter"))  # a mapping stays a dict
    return context


def render(pattern: str, context: dict[str, Any], allowed_paths: list[str], settings: dict[str, Any],
           workspace: Path) -> str:
    """The prompt with the contract's file paths in this workspace, from the user's template when the generator
    set one (``HF_PROMPT_TEMPLATE``, from ``agent.prompt_file``)."""
    # Imported here: the prompt module pulls in the pattern's constants, which only this step needs.
    import os

    from hera_flows.steps.prompts import PROMPT_TEMPLATE_ENV, render_prompt

    files = {"summary_file": str(workspace / "summary.md"), "issue_file": str(workspace / "issue.json"),
             "context_file": str(workspace / "context.json")}
    return render_prompt(pattern, context, allowed_paths, {k: str(v) for k, v in settings.items()}, files=files,
                         template=os.environ.get(PROMPT_TEMPLATE_ENV) or None)


def prepare(
    workspace: Path,
    *,
    repo_url: str,
    base_branch: str,
    branch: str,
    context: dict[str, Any],
    prompt: str,
    token: str | None,
    depth: int | None,
    forge: str = "github",
) -> Path:
    """Create the workspace layout; an existing ``repo/`` (a retried container) is replaced."""
    workspace.mkdir(parents=True, exist_ok=True)
    repo = workspace / "repo"
    if repo.is_symlink() or repo.is_file():
        repo.unlink()
    elif repo.exists():
        shutil.rmtree(repo)
    gitrepo.clone(repo_url, repo, base_branch, token=token, forge=forge, depth=depth)
    base_commit = gitrepo.run_git(["rev-parse", "--verify", "HEAD"], cwd=repo).stdout.strip()
    if branch and branch != base_branch:
        # Only cosmetic for the agent (git status shows the branch the change goes to); publish never reads it.
        gitrepo.run_git(["switch", "--quiet", "-c", branch], cwd=repo)
    (workspace / "context.json").write_text(
        json.dumps(context, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (workspace / "prompt.md").write_text(prompt, encoding="utf-8")
    (workspace / BASE_COMMIT_FILE).write_text(base_commit + "\n", encoding="utf-8")
    (workspace / "out").mkdir(exist_ok=True)
    return repo
