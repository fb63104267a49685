"""The review block: open or update the pull request (or issue) for the pushed branch, and comment on it.

These are the only templates besides publish that hold the forge token.
"""

from __future__ import annotations

from hera.workflows import Container, Parameter

from hera_flows.blocks import artifacts, claims, metrics
from hera_flows.blocks.agent import AGENT_TASK, agent_output, forge_token
from hera_flows.blocks.smoke import SMOKE_TASK
from hera_flows.blocks.step import step_template
from hera_flows.blocks.workflow import dag_output, task_output
from hera_flows.catalog import Pattern
from hera_flows.config import Config, RepositoryConfig

REVIEW_TASK = "review"
REPORT_TASK = "report"


def _forge_flags(cfg: Config, repo: RepositoryConfig) -> dict[str, str | None]:
    return {"forge": cfg.forge.kind, "api_url": cfg.forge.api_url, "repo_slug": repo.slug}


def review_template(cfg: Config, pattern: Pattern, repo: RepositoryConfig, *, context_artifact: bool = False
                    ) -> Container:
    """``context_artifact``: the pattern's context arrives as an artifact (hera_flows/blocks/artifacts.py)."""
    return step_template(
        cfg,
        name=REVIEW_TASK,
        step="review",
        flags={"pattern": pattern.id, **_forge_flags(cfg, repo), "base_branch": repo.base_branch},
        secrets=[forge_token(cfg)],
        network=True,
        metrics=metrics.review_metrics(pattern.label),
        artifact_inputs=[artifacts.input_file("context")] if context_artifact else (),
    )


def report_template(cfg: Config, repo: RepositoryConfig) -> Container:
    """Comment a step's report (e.g. the smoke test) on the PR; fail afterwards when its ``result`` is failed."""
    return step_template(
        cfg,
        name=REPORT_TASK,
        step="report",
        flags=_forge_flags(cfg, repo),
        secrets=[forge_token(cfg)],
        network=True,
    )


def outcome_outputs(*, decision_task: str = "guard", smoke_task: str = SMOKE_TASK) -> list[Parameter]:
    """The DAG outputs every pattern reports: the guard's decision and reason, the PR or issue, the smoke result."""
    return [
        dag_output("decision", decision_task),
        dag_output("reason", decision_task),
        dag_output("pr-url", REVIEW_TASK),
        dag_output("issue-url", REVIEW_TASK),
        dag_output("smoke-result", smoke_task, "result"),
    ]


def review_smoke_report(
    review: Container,
    smoke: Container,
    report: Container,
    *,
    context: str,
    dedupe_key: str,
    smoke_arguments: dict[str, str] | None = None,
    confirm: Container | None = None,
    confirm_claims: str = "",
) -> None:
    """Add the shared tail to the open DAG: review (PR or issue) after the agent, the claims confirmed once review
    succeeded, the smoke test only when a PR exists (it receives the published ``files``), and the report of the
    smoke test on that PR. ``confirm_claims``: which of the run's claims this review confirms (a reference to
    a parameter holding Lease names; empty: all of them)."""
    smoke_task = smoke.name
    if smoke_task is None:
        raise ValueError("the smoke template has no name")
    review(
        depends=f"{AGENT_TASK}.Succeeded",
        arguments=artifacts.arguments(review, {
            "branch": agent_output("branch"),
            "changed": agent_output("changed"),
            "context": context,
            "summary": agent_output("summary"),
            "refused": agent_output("refused"),
            "dedupe-key": dedupe_key,
            "issue": agent_output("issue"),
            "changes": agent_output("changes"),
            "blocked": agent_output("blocked"),
            "update": agent_output("update"),
            "agent": agent_output("agent"),
        }),
    )
    if confirm is not None:
        confirm(depends=f"{REVIEW_TASK}.Succeeded", arguments=claims.confirm_arguments(confirm_claims))
    smoke(
        depends=f"{REVIEW_TASK}.Succeeded",
        when=f"'{task_output(REVIEW_TASK, 'pr-number')}' != ''",
        arguments=artifacts.arguments(smoke, {**(smoke_arguments or {}), "files": agent_output("files")}),
    )
    report(
        depends=f"{smoke_task}.Succeeded",
        arguments={
            "pr-number": task_output(REVIEW_TASK, "pr-number"),
            "body": task_output(smoke_task, "report"),
            "result": task_output(smoke_task, "result"),
        },
    )
