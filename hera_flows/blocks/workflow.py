"""The WorkflowTemplate frame every pattern shares: identities, pod security, deadline, TTL and pod GC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hera.workflows import Parameter, WorkflowTemplate
from hera.workflows import models as m

from hera_flows.blocks import artifacts, metrics, security
from hera_flows.config import Config

PATTERN_LABEL = "hera-flows.io/pattern"


@dataclass(frozen=True)
class Param:
    """A workflow parameter as the Argo UI shows it: a default, a description and allowed values."""

    name: str
    description: str
    default: str = ""
    enum: tuple[str, ...] = ()

    def build(self) -> Parameter:
        return Parameter(
            name=self.name, value=self.default, description=self.description, enum=list(self.enum) or None
        )


def pattern_workflow_template(
    cfg: Config,
    *,
    name: str,
    pattern: str,
    title: str,
    description: str,
    params: list[Param],
    active_deadline_seconds: int,
) -> WorkflowTemplate:
    """Open a WorkflowTemplate context; the caller adds templates and the ``main`` DAG inside it."""
    labels = {**security.MANAGED_BY, PATTERN_LABEL: pattern}
    return WorkflowTemplate(
        name=name,
        namespace=cfg.namespace,
        labels=labels,
        annotations={"workflows.argoproj.io/title": title, "workflows.argoproj.io/description": description},
        entrypoint="main",
        arguments=[p.build() for p in params],
        service_account_name=security.WORKFLOW_SA,
        automount_service_account_token=False,
        # A private registry: every pod of the workflow (CronWorkflows reuse this spec) pulls with these.
        image_pull_secrets=list(cfg.image_pull_secrets) or None,
        executor=m.ExecutorConfig(service_account_name=security.WORKFLOW_SA),
        security_context=security.pod_security_context(),
        active_deadline_seconds=active_deadline_seconds,
        ttl_strategy=m.TTLStrategy(
            seconds_after_success=cfg.workflow.ttl_seconds_after_success,
            seconds_after_failure=cfg.workflow.ttl_seconds_after_failure,
        ),
        # Keep failed pods (and their logs) for debugging until the TTL removes the workflow.
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        # With an artifact repository: the run's objects go when the TTL deletes the workflow (blocks/artifacts.py).
        artifact_gc=artifacts.artifact_gc(cfg),
        metrics=metrics.workflow_metrics(pattern),
        workflow_metadata=m.WorkflowMetadata(
            labels=labels,
            annotations={"workflows.argoproj.io/title": title, "workflows.argoproj.io/description": description},
        ),
    )


def task_output(task: str, name: str) -> str:
    """``{{tasks.TASK.outputs.parameters.NAME}}``: how a later task (or the DAG's outputs) reads an output."""
    return f"{{{{tasks.{task}.outputs.parameters.{name}}}}}"


def dag_output(name: str, task: str, parameter: str | None = None) -> Parameter:
    """A DAG output that reads a task's output and is empty when that task did not run (skipped runs)."""
    return Parameter(name=name, value_from=m.ValueFrom(parameter=task_output(task, parameter or name), default=""))


def cron_workflow(template: WorkflowTemplate, schedules: list[str]) -> dict[str, Any]:
    """A CronWorkflow running ``template``'s spec on ``schedules``: never two runs at once, missed runs skipped."""
    spec = template.to_dict()
    metadata = spec["metadata"]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {key: metadata[key] for key in ("name", "namespace", "labels", "annotations")},
        "spec": {
            # ``schedules`` (a list): Argo 4.x removed the singular ``schedule``; 3.6+ reads both.
            "schedules": list(schedules),
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "workflowSpec": spec["spec"],
        },
    }
