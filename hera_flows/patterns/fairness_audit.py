"""Pattern 4 — weekly fairness audit: every production model in MLflow is audited on its evaluation set, and the
model cards whose fairness metrics moved past the repository's policy are refreshed in one pull request.

Trigger: a ``calendar`` EventSource (cron schedule and time zone from the config) and a Sensor with a rate
limit that submits ``fairness-audit``. The DAG has the project's shape, guard -> context -> agent -> PR -> smoke:

    guard ──▶ list-models ──▶ audit (withParam: one pod per model, `parallelism` at a time) ──▶ collect
          ──▶ agent ──▶ review ──▶ smoke (when a PR exists) ──▶ report

``guard`` (``guard-fairness``) validates the calendar tick (or a ``manual=true`` run), fixes the run's date, ISO
week, branch, title and dedupe key, and claims the week race-free on a Lease, so a duplicated or redelivered tick
ends Succeeded as ``skipped-duplicate`` instead of auditing twice. ``list-models`` pages through the registry (one request per 1000 models), ``audit`` never fails on bad data (it
reports the problem as its result, so one broken model does not stop the others), ``collect`` receives every
result as Argo's aggregated JSON list and builds the agent's context, and the shared agent block (builtin
editor ``fairness``) rewrites only the cards that moved; publish and review are the shared ones, so the branch
(one per ISO week), the allow-list and the idempotent PR work exactly as for promotions. ``smoke``
(``smoke-fairness``) re-reads the changed cards and the shared ``report`` step comments the result on the PR.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG
from hera.workflows import models as m

from hera_flows.blocks import claims, events, security
from hera_flows.blocks.agent import agent_output, agent_template
from hera_flows.blocks.guard import GUARD_TASK, guard_output, guard_template, proceeds
from hera_flows.blocks.review import outcome_outputs, report_template, review_smoke_report, review_template
from hera_flows.blocks.step import resources, step_template
from hera_flows.blocks.workflow import Param, dag_output, pattern_workflow_template, task_output
from hera_flows.config import Config
from hera_flows.patterns import PatternManifests

PATTERN = "fairness"
TEMPLATE_NAME = "fairness-audit"
EVENT_SOURCE_NAME = "fairness-schedule"
EVENT_NAME = "weekly"
SENSOR_NAME = "fairness-audit"
LIST_TASK = "list-models"
AUDIT_TASK = "audit"
COLLECT_TASK = "collect"
SMOKE_TASK = "smoke"
GUARD_PATTERN = "fairness_audit"  # the guard-decision metric's pattern label (the config key, as triage does)

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


def workflow_template(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.fairness_audit
    ev = p.evaluation
    repo = cfg.repository_for("fairness_audit")
    mlflow_secrets = [cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else []

    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern="fairness-audit",
        title="Weekly fairness audit",
        description="Production models -> disaggregated fairness metrics -> one model-card refresh PR",
        params=PARAMS,
        active_deadline_seconds=p.active_deadline_seconds,
    ) as wt:
        guard = guard_template(
            cfg,
            GUARD_PATTERN,
            step="guard-fairness",
            flags=[f"--branch-prefix={p.branch_prefix}", f"--timezone={p.timezone}"],
            inputs=PARAM_NAMES,
            outputs=["date", "week", "title"],
            claim_seconds=p.active_deadline_seconds,
        )
        list_models = step_template(
            cfg,
            name=LIST_TASK,
            step="fairness-list-models",
            flags=[
                f"--tracking-uri={cfg.mlflow.tracking_uri}",
                f"--aliases={','.join(p.aliases)}",
                f"--stages={','.join(p.stages)}",
                f"--max-models={p.max_models}",
            ],
            outputs=["models", "count"],
            env_from_secrets=mlflow_secrets,
            network=True,
        )
        audit = step_template(
            cfg,
            name=AUDIT_TASK,
            step="fairness-audit",
            flags=[
                f"--tracking-uri={cfg.mlflow.tracking_uri}",
                f"--dataset={ev.dataset}",
                f"--label-column={ev.label_column}",
                f"--prediction-column={ev.prediction_column}",
                f"--positive-label={ev.positive_label}",
                f"--threshold={ev.threshold}",
                f"--sensitive-attributes={','.join(ev.sensitive_attributes)}",
                f"--intersections={';'.join(','.join(pair) for pair in ev.intersections)}",
                f"--min-group-count={ev.min_group_count}",
            ],
            inputs=["model"],
            outputs=["result"],
            env_from_secrets=mlflow_secrets,
            network=True,
        )
        audit.resources = resources(p.audit_resources)
        collect = step_template(
            cfg,
            name=COLLECT_TASK,
            step="fairness-collect",
            inputs=["models", "results", "date", "week"],
            outputs=["context"],
        )
        agent = agent_template(
            cfg,
            PATTERN,
            repo=repo,
            allowed_paths=list(p.allowed_paths),
            builtin_flags=[f"--model-cards-dir={p.model_cards_dir}", f"--policy-file={p.policy_file}"],
        )
        review = review_template(cfg, PATTERN, repo)
        smoke = step_template(
            cfg,
            name=SMOKE_TASK,
            step="smoke-fairness",
            flags=[f"--model-cards-dir={p.model_cards_dir}", f"--policy-file={p.policy_file}"],
            inputs=["files", "summary", "context"],
            outputs=["result", "report"],
            network=True,  # no network, but the shared retry policy (exit 75 only) keeps smoke tasks alike
        )
        report = report_template(cfg, repo)
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)

        with DAG(
            name="main",
            outputs=[*outcome_outputs(smoke_task=SMOKE_TASK), dag_output("models", LIST_TASK, "count")],
        ):
            guard(arguments={name: f"{{{{workflow.parameters.{name}}}}}" for name in PARAM_NAMES}
                  | {"workflow-name": "{{workflow.name}}", "workflow-uid": "{{workflow.uid}}"})
            # A skipped guard (the week is already audited) ends the run here, Succeeded.
            list_models(depends=f"{GUARD_TASK}.Succeeded", when=proceeds())
            audit(
                depends=f"{LIST_TASK}.Succeeded",
                when=f"'{task_output(LIST_TASK, 'count')}' != '0'",
                with_param=task_output(LIST_TASK, "models"),
                arguments={"model": "{{item}}"},
            )
            # A model whose audit pod failed for good (MLflow unreachable after retries) is reported as missing by
            # collect; data problems never fail the audit pod.
            collect(
                depends=f"{AUDIT_TASK}.Succeeded || {AUDIT_TASK}.Failed",
                arguments={
                    "models": task_output(LIST_TASK, "models"),
                    "results": task_output(AUDIT_TASK, "result"),
                    "date": guard_output("date"),
                    "week": guard_output("week"),
                },
            )
            agent(
                depends=f"{COLLECT_TASK}.Succeeded",
                arguments={
                    "context": task_output(COLLECT_TASK, "context"),
                    "branch": guard_output("branch"),
                    "title": guard_output("title"),
                },
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
    # One audit at a time: a manual run during the scheduled one waits instead of racing for the same branch.
    wt.synchronization = m.Synchronization(mutexes=[m.Mutex(name=TEMPLATE_NAME)])
    return wt.to_dict()


def event_source(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.fairness_audit
    return events.calendar_event_source(
        EVENT_SOURCE_NAME, cfg.namespace, EVENT_NAME, schedule=p.schedule, timezone=p.timezone,
        event_bus=cfg.event_bus, metadata={"pattern": "fairness-audit"},
    )


def sensor(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.fairness_audit
    dependency = events.Dependency(name="weekly-tick", event_source=EVENT_SOURCE_NAME, event_name=EVENT_NAME)
    labels = {"hera-flows.io/pattern": "fairness-audit"}
    trigger = events.WorkflowSubmitTrigger(
        name="audit-every-production-model",
        dependency=dependency.name,
        template=TEMPLATE_NAME,
        parameters={"event-time": events.FromEvent("eventTime")},
        rate_limit=p.rate_limit,
        labels=labels,
    )
    return events.sensor(SENSOR_NAME, cfg.namespace, [dependency], [trigger], event_bus=cfg.event_bus, labels=labels)
