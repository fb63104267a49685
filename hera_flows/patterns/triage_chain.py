"""What every failure-triage template runs after its guard and context steps: classify -> agent -> review -> smoke ->
report. The Argo/Kubeflow template (failure_triage.py) and the Flyte one (failure_triage_flyte.py) differ only
in how they find the failure; from the context on they are one chain, built here once.

With an artifact repository (``artifacts``) the context (the failed pods' log tails, statuses and Events) and the
classified context travel as objects under ``<key_prefix>/<workflow name>/`` (``context/context.json``,
``classify/context.json``), as do the published files (``agent/files.json``): classify, the agent pod, review and
smoke read them as files, and the context's log bounds are the artifact path's (config.py ``TriageLogs.bounds``).
Without one they are parameters, the context capped at 96 KiB.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from hera.workflows import Container, ContainerSet, Parameter
from hera.workflows import models as m

from hera_flows.blocks import artifacts
from hera_flows.blocks.agent import AGENT_TASK, AgentArtifacts, agent_template
from hera_flows.blocks.guard import GUARD_TASK
from hera_flows.blocks.review import outcome_outputs, report_template, review_smoke_report, review_template
from hera_flows.blocks.step import OUTPUTS_DIR, step_template
from hera_flows.blocks.workflow import dag_output, task_output
from hera_flows.catalog import Pattern
from hera_flows.config import Config

CONTEXT_TASK = "context"
CLASSIFY_TASK = "classify"
SMOKE_TASK = "smoke-schema"


def context_outputs(cfg: Config) -> list[m.Artifact]:
    """The context step's ``context`` as an artifact (with a repository), for its ``artifact_outputs``."""
    if not artifacts.enabled(cfg):
        return []
    return [artifacts.output("context", f"{OUTPUTS_DIR}/context", artifacts.key(cfg, CONTEXT_TASK, "context.json"))]


@dataclass(frozen=True)
class Chain:
    classify: Container
    agent: ContainerSet
    review: Container
    smoke: Container
    report: Container


def templates(cfg: Config, pattern: Pattern, *, editor_settings: dict[str, Any]) -> Chain:
    """The chain's templates (create them after the context step's, inside the open WorkflowTemplate)."""
    from hera_flows.blocks import metrics

    p = cfg.patterns.failure_triage
    repo = cfg.repository_for(pattern.config_key)
    large = artifacts.enabled(cfg)
    key = functools.partial(artifacts.key, cfg)
    return Chain(
        classify=step_template(
            cfg, name=CLASSIFY_TASK, step=pattern.step_name("classify"), metrics=metrics.triage_metrics("category"),
            artifact_inputs=[artifacts.input_file("context")] if large else (),
            artifact_outputs=[artifacts.output("context", f"{OUTPUTS_DIR}/context", key(CLASSIFY_TASK, "context.json"))]
            if large else (),
        ),
        agent=agent_template(cfg, pattern, repo=repo, allowed_paths=list(p.allowed_paths), settings=editor_settings,
                             large=AgentArtifacts(files_key=key(AGENT_TASK, "files.json")) if large else None),
        review=review_template(cfg, pattern, repo, context_artifact=large),
        smoke=step_template(cfg, name=SMOKE_TASK, step=pattern.step_name("smoke"),
                            artifact_inputs=[artifacts.input_file("files")] if large else ()),
        report=report_template(cfg, repo),
    )


def tasks(chain: Chain, *, confirm: Container) -> None:
    """Add the chain's tasks to the open DAG, after its ``context`` task."""
    classified = task_output(CLASSIFY_TASK, "context")
    chain.classify(depends=f"{CONTEXT_TASK}.Succeeded",
                   arguments=artifacts.arguments(chain.classify, {"context": task_output(CONTEXT_TASK, "context")}))
    chain.agent(depends=f"{CLASSIFY_TASK}.Succeeded", arguments=artifacts.arguments(chain.agent, {
        "context": classified,
        "branch": task_output(CLASSIFY_TASK, "branch"),
        "title": task_output(CLASSIFY_TASK, "title"),
    }))
    review_smoke_report(chain.review, chain.smoke, chain.report, context=classified,
                        dedupe_key=task_output(CLASSIFY_TASK, "dedupe-key"), confirm=confirm)


def outputs() -> list[Parameter]:
    """The DAG outputs of a triage run: the shared outcome and the classifier's category."""
    return [*outcome_outputs(decision_task=GUARD_TASK, smoke_task=SMOKE_TASK), dag_output("category", CLASSIFY_TASK)]
