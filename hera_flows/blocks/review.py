"""The review block: open or update the pull request (or issue) for the pushed branch, and comment on it.

These are the only templates besides publish that hold the forge token.
"""

from __future__ import annotations

from hera.workflows import Container

from hera_flows.blocks import metrics
from hera_flows.blocks.agent import forge_token
from hera_flows.blocks.step import step_template
from hera_flows.config import Config, RepositoryConfig

REVIEW_TASK = "review"
REPORT_TASK = "report"


def _forge_flags(cfg: Config, repo: RepositoryConfig) -> list[str]:
    return [f"--forge={cfg.forge.kind}", f"--api-url={cfg.forge.api_url}", f"--repo-slug={repo.slug}"]


def review_template(cfg: Config, pattern: str, repo: RepositoryConfig) -> Container:
    return step_template(
        cfg,
        name=REVIEW_TASK,
        step="review",
        flags=[f"--pattern={pattern}", *_forge_flags(cfg, repo), f"--base-branch={repo.base_branch}"],
        inputs=["branch", "changed", "context", "summary", "refused", "dedupe-key", "issue"],
        outputs=["pr-url", "pr-number", "issue-url", "issue-number", "action"],
        secrets=[forge_token(cfg)],
        network=True,
        metrics=metrics.review_metrics(pattern),
    )


def report_template(cfg: Config, repo: RepositoryConfig) -> Container:
    """Comment a step's report (e.g. the smoke test) on the PR; fail afterwards when its ``result`` is failed."""
    return step_template(
        cfg,
        name=REPORT_TASK,
        step="report",
        flags=_forge_flags(cfg, repo),
        inputs=["pr-number", "body", "result"],
        secrets=[forge_token(cfg)],
        network=True,
    )
