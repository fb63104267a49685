"""Pattern 5 — post-promotion rollback (opt-in): a production SLI alert that fires for a model within a window after
its promotion merged becomes a PR reverting that promotion, linked to it, with the alert as evidence.

- EventSource ``rollback``: a bearer-authenticated Alertmanager webhook (``/rollback/alertmanager``).
- Sensor ``model-rollback``: firing deliveries whose first alert names a model (the name's charset checked), with
  ``rateLimit`` and ``atLeastOnce``; the body travels in an annotation, the model in a parameter (the mutex key).
- WorkflowTemplate ``model-rollback``: a per-model mutex around guard (the alert, the promotion from the GitOps
  history, the window, one rollback per promotion, a per-model cooldown) -> context (the promotion PR from the
  registry) -> agent (``git revert`` of the promotion commit) -> review (the revert PR) -> smoke (the reverted
  manifest against its CRD, staging answers) -> report, and the registry learns ``rollback-proposed``.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG

from hera_flows import catalog
from hera_flows.blocks import claims, events, security
from hera_flows.blocks.agent import agent_template, forge_token
from hera_flows.blocks.guard import guard_arguments, guard_output, guard_template, proceeds
from hera_flows.blocks.review import (
    REVIEW_TASK,
    outcome_outputs,
    report_template,
    review_smoke_report,
    review_template,
)
from hera_flows.blocks.smoke import SMOKE_TASK, smoke_template
from hera_flows.blocks.step import step_template
from hera_flows.blocks.workflow import PATTERN_LABEL, Param, pattern_workflow_template, task_output
from hera_flows.config import Config
from hera_flows.patterns import PatternManifests
from hera_flows.steps import event_data
from hera_flows.steps.drift.normalise import NAME

PATTERN = catalog.pattern("rollback")
TEMPLATE_NAME = "model-rollback"
EVENT_SOURCE_NAME = "rollback"
SENSOR_NAME = "model-rollback"
SOURCE = "alertmanager"
CONTEXT_TASK = "context"
MODEL_PATH = "body.alerts.0.labels.model"
MUTEX = "rollback-{{workflow.parameters.model}}"

PARAMS = [
    Param("event-source", "Who sent the alert (set by the Sensor).", SOURCE, (SOURCE,)),
    Param("model", "The model the alert is about: the per-model mutex key (set by the Sensor; checked by the guard)."),
    Param("manual", "'true' for a hand-submitted rollback of the model's current promotion: model-name is required. "
          "The Sensor never sets it.", "false", ("false", "true")),
    Param("model-name", "The registered model (manual runs only)."),
]


def build(cfg: Config) -> PatternManifests:
    return PatternManifests(workflow_templates=[workflow_template(cfg)], event_sources=[event_source(cfg)],
                            sensors=[sensor(cfg)])


def editor_settings(cfg: Config) -> dict[str, Any]:
    """The rollback editor's settings (hera_flows/steps/rollback/editor.py ``SETTINGS``): the promotion's layout."""
    p = cfg.patterns.promotion
    return {"inference_dir": p.inference_dir, "model_cards_dir": p.model_cards_dir}


def workflow_template(cfg: Config) -> dict[str, Any]:
    r, p = cfg.patterns.rollback, cfg.patterns.promotion
    repo = cfg.repository_for("rollback")
    mlflow_flags = {"tracking_uri": cfg.mlflow.tracking_uri,
                    "deadline_seconds": min(300, r.active_deadline_seconds // 6)}
    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern=PATTERN.label,
        title=PATTERN.title,
        description="SLI alert within the window after a promotion merged -> revert PR of that promotion",
        params=PARAMS,
        active_deadline_seconds=r.active_deadline_seconds,
    ) as wt:
        guard = guard_template(
            cfg,
            PATTERN,
            flags={"severities": list(r.severities), "window_seconds": r.window_seconds,
                   "cooldown_seconds": r.cooldown_seconds, "repo_url": repo.url, "base_branch": repo.base_branch,
                   "inference_dir": p.inference_dir, "forge": cfg.forge.kind},
            secrets=[forge_token(cfg, optional=True, read_only=True)],
            claim_seconds=r.active_deadline_seconds,
        )
        context = step_template(
            cfg,
            name=CONTEXT_TASK,
            step=PATTERN.step_name("context"),
            flags=mlflow_flags,
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
        )
        agent = agent_template(cfg, PATTERN, repo=repo, allowed_paths=list(r.allowed_paths),
                               settings=editor_settings(cfg))
        review = review_template(cfg, PATTERN, repo)
        smoke = smoke_template(cfg, p.smoke)
        report = report_template(cfg, repo)
        record = step_template(
            cfg,
            name="record",
            step="promotion-record",
            flags=mlflow_flags,
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
        )
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)

        with DAG(name="main", outputs=outcome_outputs()):
            guard(arguments=guard_arguments([p.name for p in PARAMS]))
            context(depends="guard.Succeeded", when=proceeds(), arguments={
                name: guard_output(name) for name in ("model", "version", "previous-version", "commit", "merged-at",
                                                      "manifest", "paths", "alert")})
            agent(depends=f"{CONTEXT_TASK}.Succeeded", arguments={
                "context": task_output(CONTEXT_TASK, "context"),
                "branch": guard_output("branch"),
                "title": guard_output("title"),
            })
            review_smoke_report(
                review, smoke, report,
                context=task_output(CONTEXT_TASK, "context"),
                dedupe_key=guard_output("dedupe-key"),
                # staging should serve the version the rollback restores
                smoke_arguments={"model-name": guard_output("model"), "version": guard_output("previous-version"),
                                 "also-accept": ""},
                confirm=confirm,
            )
            # The registry learns that this version is being rolled back (the reconciler tags it rolled-back once
            # the repository serves the previous version again).
            record(depends=f"{REVIEW_TASK}.Succeeded && {SMOKE_TASK}.Succeeded", arguments={
                "model-name": guard_output("model"), "version": guard_output("version"),
                "pr-url": "", "smoke-result": task_output(SMOKE_TASK, "result"), "rollout-step": "",
                "rollback-pr-url": task_output(REVIEW_TASK, "pr-url")})
        wt.on_exit = on_exit
    template: dict[str, Any] = wt.to_dict()
    # ``mutexes`` (a list): the form both Argo 3.6+ and 4.x accept. One rollback per model at a time.
    template["spec"]["synchronization"] = {"mutexes": [{"name": MUTEX}]}
    return template


def event_source(cfg: Config) -> dict[str, Any]:
    hook = cfg.patterns.rollback.webhook
    return events.webhook_event_source(
        EVENT_SOURCE_NAME, cfg.namespace,
        [events.WebhookEndpoint(SOURCE, hook.port, hook.endpoint, auth_secret=hook.auth_secret,
                                max_payload_size=events.ALERT_PAYLOAD_LIMIT)],
        event_bus=cfg.event_bus,
    )


def sensor(cfg: Config) -> dict[str, Any]:
    r = cfg.patterns.rollback
    labels = {PATTERN_LABEL: PATTERN.label}
    dependency = events.Dependency(
        name="sli-alert", event_source=EVENT_SOURCE_NAME, event_name=SOURCE,
        filters=(events.DataFilter("body.status", ("firing",)), events.RegexFilter(MODEL_PATH, NAME.pattern)),
    )
    trigger = events.WorkflowSubmitTrigger(
        name="rollback-from-alertmanager",
        dependency=dependency.name,
        template=TEMPLATE_NAME,
        parameters={"event-source": events.Constant(SOURCE), "model": events.FromEvent(MODEL_PATH)},
        annotations={event_data.annotation_key("event-body"): events.FromEvent("body")},
        rate_limit=r.rate_limit,
        labels=labels,
    )
    return events.sensor(SENSOR_NAME, cfg.namespace, [dependency], [trigger], event_bus=cfg.event_bus, labels=labels)
