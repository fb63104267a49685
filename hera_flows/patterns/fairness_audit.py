"""Pattern 4 — weekly fairness audit: every production model in MLflow is audited on its evaluation set, and the
model cards whose fairness metrics moved past the repository's policy are refreshed in one pull request.

Trigger: a ``calendar`` EventSource (cron schedule and time zone from the config) and a Sensor with a rate
limit that submits ``fairness-audit``. The DAG has the project's shape, guard -> context -> agent -> PR -> smoke:

    guard ──▶ list-models ──▶ audit (withParam: one pod per model, `parallelism` at a time) ──▶ collect
          ──▶ agent ──▶ review ──▶ smoke (when a PR exists) ──▶ report

``guard`` (``fairness-guard``) validates the calendar tick (or a ``manual=true`` run), fixes the run's date, ISO
week, branch, title and dedupe key, and claims the week race-free on a Lease, so a duplicated or redelivered tick
ends Succeeded as ``skipped-duplicate`` instead of auditing twice. ``list-models`` pages through the registry
(one request per 1000 models), ``audit`` never fails on bad data (it
reports the problem as its result, so one broken model does not stop the others), ``collect`` receives every
result as Argo's aggregated JSON list and builds the agent's context, and the shared agent block (builtin
editor ``fairness``) rewrites only the cards that moved; publish and review are the shared ones, so the branch
(one per ISO week), the allow-list and the idempotent PR work exactly as for promotions. ``smoke``
(``fairness-smoke``) re-reads the changed cards and the shared ``report`` step comments the result on the PR.
"""

from __future__ import annotations

import functools
from typing import Any

from hera.workflows import DAG
from hera.workflows import models as m

from hera_flows import catalog
from hera_flows.blocks import artifacts, claims, events, security
from hera_flows.blocks.agent import AGENT_TASK, AgentArtifacts, agent_output, agent_template
from hera_flows.blocks.guard import GUARD_TASK, guard_arguments, guard_output, guard_template, proceeds
from hera_flows.blocks.review import outcome_outputs, report_template, review_smoke_report, review_template
from hera_flows.blocks.step import OUTPUTS_DIR, resources, step_template
from hera_flows.blocks.workflow import Param, dag_output, pattern_workflow_template, task_output
from hera_flows.config import Config
from hera_flows.patterns import PatternManifests

PATTERN = catalog.pattern("fairness")
TEMPLATE_NAME = "fairness-audit"
EVENT_SOURCE_NAME = "fairness-schedule"
EVENT_NAME = "weekly"
SENSOR_NAME = "fairness-audit"
LIST_TASK = "list-models"
AUDIT_TASK = "audit"
COLLECT_TASK = "collect"
SMOKE_TASK = "smoke"
SHARD = "{{inputs.parameters.shard}}"

PARAMS = [
    Param("event-time", "The calendar tick (Argo Events' eventTime, set by the Sensor); its date names the PR."),
    Param("manual", "'true' for a hand-submitted run: no event time needed, the weekly claim is not checked. "
          "The Sensor never sets it.", "false", ("false", "true")),
    Param("date", "Manual runs: the report date (YYYY-MM-DD); empty: the event's date, or today in the "
          "schedule's time zone."),
]
PARAM_NAMES = [p.name for p in PARAMS]


def build(cfg: Config) -> PatternManifests:
    return PatternManifests(
        workflow_templates=[workflow_template(cfg)],
        event_sources=[event_source(cfg)],
        sensors=[sensor(cfg)],
    )


def editor_settings(cfg: Config) -> dict[str, Any]:
    """The fairness editor's settings (hera_flows/steps/fairness/editor.py ``SETTINGS``) as configured; the smoke
    test re-reads the same cards against the same policy."""
    p = cfg.patterns.fairness_audit
    return {"model_cards_dir": p.model_cards_dir, "policy_file": p.policy_file}


def workflow_template(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.fairness_audit
    ev = p.evaluation
    repo = cfg.repository_for(PATTERN.config_key)
    mlflow_secrets = [cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else []
    # With an artifact repository the registry is audited in shards (one pod per `models_per_pod` models) and every
    # result, the context and the published cards travel as objects under <prefix>/<workflow name>/; without one,
    # one pod per model and parameters throughout (docs/patterns/fairness-audit.md, "Limits").
    large = artifacts.enabled(cfg)
    key = functools.partial(artifacts.key, cfg) if large else None

    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern=PATTERN.label,
        title=PATTERN.title,
        description="Production models -> disaggregated fairness metrics -> one model-card refresh PR",
        params=PARAMS,
        active_deadline_seconds=p.active_deadline_seconds,
    ) as wt:
        guard = guard_template(
            cfg,
            PATTERN,
            flags={"branch_prefix": p.branch_prefix, "timezone": p.timezone},
            claim_seconds=p.active_deadline_seconds,
        )
        list_models = step_template(
            cfg,
            name=LIST_TASK,
            step=PATTERN.step_name("list_models"),
            flags={
                "tracking_uri": cfg.mlflow.tracking_uri,
                "aliases": p.aliases,
                "stages": p.stages,
                "max_models": p.model_limit(large),
                # the registry listing is a few requests: a tenth of the run, at most 5 minutes
                "deadline_seconds": min(300, p.active_deadline_seconds // 10),
                "models_per_pod": p.models_per_pod if large else None,
            },
            env_from_secrets=mlflow_secrets,
            network=True,
            artifact_outputs=[
                artifacts.output("models", f"{OUTPUTS_DIR}/models", key(LIST_TASK, "models.json")),
                artifacts.output("shards", f"{OUTPUTS_DIR}/shards", key(LIST_TASK, "shards"), folder=True),
            ] if key else (),
            omit=() if key else ("shard-ids",),
        )
        audit = step_template(
            cfg,
            name=AUDIT_TASK,
            step=PATTERN.step_name("audit"),
            flags={
                "tracking_uri": cfg.mlflow.tracking_uri,
                "dataset": ev.dataset,
                "label_column": ev.label_column,
                "prediction_column": ev.prediction_column,
                "positive_label": ev.positive_label,
                "threshold": ev.threshold,
                "sensitive_attributes": ev.sensitive_attributes,
                "intersections": [list(pair) for pair in ev.intersections],
                "min_group_count": ev.min_group_count,
                # one model's audit: a quarter of the run, at most 30 minutes, retried by Argo after that
                "deadline_seconds": min(1800, p.active_deadline_seconds // 4),
            },
            env_from_secrets=mlflow_secrets,
            network=True,
            # a shard's models from list-models' shards folder; its results under the run's audit/ prefix
            artifact_inputs=[artifacts.input_file("batch", object_key=key(LIST_TASK, "shards", f"{SHARD}.json"))]
            if key else (),
            artifact_outputs=[artifacts.output("result", f"{OUTPUTS_DIR}/result", key(AUDIT_TASK, f"{SHARD}.json"))]
            if key else (),
            omit=("model",) if key else ("shard", "batch"),
        )
        audit.resources = resources(p.audit_resources)
        collect = step_template(
            cfg,
            name=COLLECT_TASK,
            step=PATTERN.step_name("collect"),
            # the fan-in: every object under the run's audit/ prefix arrives as one folder (optional: a run whose
            # audit pods all failed still reports every model as not audited)
            artifact_inputs=[artifacts.input_file("models"),
                             artifacts.input_file("results", object_key=key(AUDIT_TASK), optional=True)]
            if key else (),
            artifact_outputs=[artifacts.output("context", f"{OUTPUTS_DIR}/context", key(COLLECT_TASK, "context.json"))]
            if key else (),
        )
        agent = agent_template(cfg, PATTERN, repo=repo, allowed_paths=list(p.allowed_paths),
                               settings=editor_settings(cfg),
                               large=AgentArtifacts(files_key=key(AGENT_TASK, "files.json")) if key else None)
        review = review_template(cfg, PATTERN, repo, context_artifact=large)
        smoke = step_template(
            cfg,
            name=SMOKE_TASK,
            step=PATTERN.step_name("smoke"),
            flags=editor_settings(cfg),
            network=True,  # no network, but the shared retry policy (exit 75 only) keeps smoke tasks alike
            artifact_inputs=[artifacts.input_file("files"), artifacts.input_file("context")] if large else (),
        )
        report = report_template(cfg, repo)
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)

        with DAG(
            name="main",
            outputs=[*outcome_outputs(smoke_task=SMOKE_TASK), dag_output("models", LIST_TASK, "count")],
        ):
            guard(arguments=guard_arguments(PARAM_NAMES))
            # A skipped guard (the week is already audited) ends the run here, Succeeded.
            list_models(depends=f"{GUARD_TASK}.Succeeded", when=proceeds())
            audit(
                depends=f"{LIST_TASK}.Succeeded",
                when=f"'{task_output(LIST_TASK, 'count')}' != '0'",
                with_param=task_output(LIST_TASK, "shard-ids" if large else "models"),
                arguments={"shard": "{{item}}"} if large else {"model": "{{item}}"},
            )
            # A model whose audit pod failed for good (MLflow unreachable after retries) is reported as missing by
            # collect; data problems never fail the audit pod.
            collect(
                depends=f"{AUDIT_TASK}.Succeeded || {AUDIT_TASK}.Failed",
                arguments=artifacts.arguments(collect, {
                    "models": task_output(LIST_TASK, "models"),
                    **({} if large else {"results": task_output(AUDIT_TASK, "result")}),
                    "date": guard_output("date"),
                    "week": guard_output("week"),
                }),
            )
            agent(
                depends=f"{COLLECT_TASK}.Succeeded",
                arguments=artifacts.arguments(agent, {
                    "context": task_output(COLLECT_TASK, "context"),
                    "branch": guard_output("branch"),
                    "title": guard_output("title"),
                }),
            )
            review_smoke_report(
                review, smoke, report,
                context=task_output(COLLECT_TASK, "context"),
                dedupe_key=guard_output("dedupe-key"),
                smoke_arguments={"summary": agent_output("summary"), "context": task_output(COLLECT_TASK, "context")},
                confirm=confirm,
            )
        wt.on_exit = on_exit
    wt.parallelism = p.parallelism
    if large:
        wt.artifact_repository_ref = artifacts.repository_ref(cfg)
    # One audit at a time: a manual run during the scheduled one waits instead of racing for the same branch.
    wt.synchronization = m.Synchronization(mutexes=[m.Mutex(name=TEMPLATE_NAME)])
    manifest: dict[str, Any] = wt.to_dict()  # hera types to_dict() as Any
    return manifest


def event_source(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.fairness_audit
    return events.calendar_event_source(
        EVENT_SOURCE_NAME, cfg.namespace, EVENT_NAME, schedule=p.schedule, timezone=p.timezone,
        event_bus=cfg.event_bus, metadata={"pattern": PATTERN.label},
    )


def sensor(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.fairness_audit
    dependency = events.Dependency(name="weekly-tick", event_source=EVENT_SOURCE_NAME, event_name=EVENT_NAME)
    labels = {"hera-flows.io/pattern": PATTERN.label}
    trigger = events.WorkflowSubmitTrigger(
        name="audit-every-production-model",
        dependency=dependency.name,
        template=TEMPLATE_NAME,
        parameters={"event-time": events.FromEvent("eventTime")},
        rate_limit=p.rate_limit,
        labels=labels,
    )
    return events.sensor(SENSOR_NAME, cfg.namespace, [dependency], [trigger], event_bus=cfg.event_bus, labels=labels)
