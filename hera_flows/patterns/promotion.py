"""Pattern 1 — model promotion: an MLflow registry promotion becomes a PR that updates the model's KServe
InferenceService and model card, followed by a staging smoke test reported on the PR.

Triggers: OSS MLflow 3.x ``model_version_alias.created`` (signed with HMAC, verified in the guard because
MLflow cannot send an Authorization header), and the legacy/Databricks ``MODEL_VERSION_TRANSITIONED_STAGE``
(bearer token checked by the EventSource, optional signature checked in the guard).
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
from hera_flows.blocks.step import SecretEnv, step_template
from hera_flows.blocks.workflow import Param, cron_workflow, dag_output, pattern_workflow_template, task_output
from hera_flows.config import Config
from hera_flows.patterns import PatternManifests
from hera_flows.steps import event_data

PATTERN = catalog.pattern("promotion")
TEMPLATE_NAME = "mlflow-promotion"
RECONCILE_NAME = "promotion-reconcile"
RECONCILER_SA = "hera-flows-promotion-reconciler"
RECORD_TASK = "record"
# The reconciler starts promotions by creating Workflows that reference the promotion template; nothing else.
RECONCILER_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
]
EVENT_SOURCE_NAME = "mlflow"
SENSOR_NAME = "mlflow-promotion"
MLFLOW_EVENT = "mlflow"
DATABRICKS_EVENT = "databricks"
CONTEXT_TASK = "context"

# The webhook body and its signature headers are untrusted: the Sensor puts them into annotations of the Workflow
# (hera_flows/steps/event_data.py), never into these parameters, which Argo would substitute again.
PARAMS = [
    Param("event-source", "Who sent the event: an OSS MLflow webhook, a legacy/Databricks registry webhook, or the "
          "promotion-reconcile CronWorkflow (a promotion whose webhook was lost).",
          "mlflow", ("mlflow", "databricks", "reconciler")),
    Param("received-at", "When the EventSource received the delivery (RFC 3339, set by the Sensor from the event "
          "context): a signed timestamp is checked against it, so time spent waiting on the rate limit never makes a "
          "genuine delivery stale."),
    Param("manual", "'true' for a hand-submitted run: no signature, model-name and version are required. "
          "The Sensor never sets it.", "false", ("false", "true")),
    Param("model-name", "Registered model name (manual runs; event runs take it from the verified body)."),
    Param("version", "Model version number (manual runs)."),
    Param("alias", "Alias or stage being promoted to (manual runs; informational).", "manual"),
]
EVENT_PARAM_NAMES = [p.name for p in PARAMS]


def build(cfg: Config) -> PatternManifests:
    reconcile = cfg.patterns.promotion.reconcile.enabled
    return PatternManifests(
        workflow_templates=[workflow_template(cfg)],
        event_sources=[event_source(cfg)],
        sensors=[sensor(cfg)],
        cron_workflows=[reconcile_cron_workflow(cfg)] if reconcile else [],
        rbac=reconciler_rbac(cfg.namespace) if reconcile else [],
        network_policies=network_policies(cfg),
    )


def reconciler_rbac(namespace: str) -> list[dict[str, Any]]:
    return [
        security.service_account_document(RECONCILER_SA, namespace, automount=True),
        *security.role_documents(RECONCILER_SA, namespace, list(security.EXECUTOR_RULES) + RECONCILER_RULES,
                                 service_account=RECONCILER_SA, service_account_namespace=namespace),
    ]


def reconcile_cron_workflow(cfg: Config) -> dict[str, Any]:
    """The scheduled comparison of the registry's aliases with what the GitOps repository serves."""
    p = cfg.patterns.promotion
    repo = cfg.repository_for("promotion")
    with pattern_workflow_template(
        cfg,
        name=RECONCILE_NAME,
        pattern=PATTERN.label,
        title="Promotion reconcile",
        description="Registry aliases vs the GitOps repository: lost promotions started, merged / rolled back "
                    "written to the version tags",
        params=[],
        active_deadline_seconds=p.reconcile.active_deadline_seconds,
    ) as wt:
        reconcile = step_template(
            cfg,
            name="reconcile",
            step=PATTERN.step_name("reconcile"),
            flags={"tracking_uri": cfg.mlflow.tracking_uri, "repo_url": repo.url, "base_branch": repo.base_branch,
                   "inference_dir": p.inference_dir, "aliases": list(p.aliases), "forge": cfg.forge.kind,
                   "api_url": cfg.forge.api_url, "repo_slug": repo.slug, "namespace": cfg.namespace,
                   "template": TEMPLATE_NAME, "max_submissions": p.reconcile.max_submissions,
                   "rollout_steps": rollout_steps(cfg), "dwell_seconds": p.rollout.dwell_seconds,
                   "prometheus_url": p.rollout.prometheus_url,
                   "health": [sli.model_dump() for sli in p.rollout.health],
                   "deadline_seconds": max(60, p.reconcile.active_deadline_seconds - 120)},
            secrets=[forge_token(cfg, optional=True, read_only=True)],
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
            service_account=RECONCILER_SA,
        )
        with DAG(name="main", outputs=[dag_output("actions", "reconcile"), dag_output("started", "reconcile")]):
            reconcile()
    return cron_workflow(wt, list(p.reconcile.schedules))


def network_policies(cfg: Config) -> list[dict[str, Any]]:
    """Only the configured senders (the MLflow server) may connect to the /mlflow port: OSS MLflow cannot send a
    bearer token, so without this anyone who reaches the Service can make the guard spend a pod on a forgery.
    The legacy endpoint is bearer-authenticated by the EventSource and stays reachable."""
    p = cfg.patterns.promotion
    if not p.webhook_sources:
        return []
    return [events.event_source_network_policy(
        EVENT_SOURCE_NAME, cfg.namespace, restricted={p.webhook.port: list(p.webhook_sources)},
        open_ports=[p.legacy_webhook.port])]


def editor_settings(cfg: Config) -> dict[str, Any]:
    """The promotion editor's settings (hera_flows/steps/promotion/editor.py ``SETTINGS``) as configured."""
    p = cfg.patterns.promotion
    return {"inference_dir": p.inference_dir, "model_cards_dir": p.model_cards_dir,
            "gpu_node_selector_key": p.gpu_node_selector_key}


def rollout_steps(cfg: Config) -> list[int]:
    """The canary steps, or [] when promotions are rolled out at once."""
    rollout = cfg.patterns.promotion.rollout
    return list(rollout.steps) if rollout.enabled else []


def evaluation_settings(cfg: Config) -> dict[str, Any]:
    """The context step's ``--evaluation``: the fairness audit's evaluation set, the promotion's calibration."""
    card, ev = cfg.patterns.promotion.model_card, cfg.patterns.fairness_audit.evaluation
    return {"enabled": card.evaluate, "dataset": ev.dataset, "label_column": ev.label_column,
            "prediction_column": ev.prediction_column, "positive_label": ev.positive_label,
            "threshold": ev.threshold, "sensitive_attributes": list(ev.sensitive_attributes),
            "min_group_count": ev.min_group_count, "score_column": card.score_column,
            "calibration_bins": card.calibration_bins}


def workflow_template(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.promotion
    repo = cfg.repository_for("promotion")
    secrets = [SecretEnv("HF_WEBHOOK_SECRET", p.webhook_secret)]
    if p.legacy_signing_secret is not None:
        secrets.append(SecretEnv("HF_DATABRICKS_SECRET", p.legacy_signing_secret))

    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern=PATTERN.label,
        title=PATTERN.title,
        description="Registry promotion -> InferenceService + model card PR -> staging smoke test",
        params=PARAMS,
        active_deadline_seconds=p.active_deadline_seconds,
    ) as wt:
        guard = guard_template(
            cfg,
            PATTERN,
            flags={"aliases": p.aliases, "stages": p.stages, "tolerance_seconds": p.signature_tolerance_seconds,
                   "rollout_steps": rollout_steps(cfg)},
            secrets=secrets,
            claim_seconds=p.active_deadline_seconds,
        )
        context = step_template(
            cfg,
            name=CONTEXT_TASK,
            step=PATTERN.step_name("context"),
            flags={"tracking_uri": cfg.mlflow.tracking_uri, "repo_url": repo.url, "base_branch": repo.base_branch,
                   "inference_dir": p.inference_dir, "deadline_seconds": min(600, p.active_deadline_seconds // 3),
                   "forge": cfg.forge.kind, "model_cards_dir": p.model_cards_dir,
                   "evaluation": evaluation_settings(cfg), "rollout_steps": rollout_steps(cfg),
                   "kserve_default_mode": p.rollout.kserve_default_mode},
            secrets=[forge_token(cfg, optional=True, read_only=True)],
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
        )
        agent = agent_template(cfg, PATTERN, repo=repo, allowed_paths=list(p.allowed_paths),
                               settings=editor_settings(cfg))
        review = review_template(cfg, PATTERN, repo)
        smoke = smoke_template(cfg, p.smoke)
        report = report_template(cfg, repo)
        record = step_template(
            cfg,
            name=RECORD_TASK,
            step=PATTERN.step_name("record"),
            flags={"tracking_uri": cfg.mlflow.tracking_uri,
                   "deadline_seconds": min(300, p.active_deadline_seconds // 6)},
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
        )
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)

        with DAG(name="main", outputs=outcome_outputs()):
            guard(arguments=guard_arguments(EVENT_PARAM_NAMES))
            context(
                depends="guard.Succeeded",
                when=proceeds(),
                arguments={
                    "model-name": guard_output("model"),
                    "version": guard_output("version"),
                    "alias": guard_output("alias"),
                    "rollout-step": guard_output("rollout-step"),
                },
            )
            agent(
                depends=f"{CONTEXT_TASK}.Succeeded",
                arguments={
                    "context": task_output(CONTEXT_TASK, "context"),
                    "branch": guard_output("branch"),
                    "title": guard_output("title"),
                },
            )
            review_smoke_report(
                review, smoke, report,
                context=task_output(CONTEXT_TASK, "context"),
                dedupe_key=guard_output("dedupe-key"),
                smoke_arguments={"model-name": guard_output("model"), "version": task_output(CONTEXT_TASK, "version"),
                                 "also-accept": task_output(CONTEXT_TASK, "also-accept")},
                confirm=confirm,
            )
            # The registry learns the PR and how staging took it (MLflow shows the version's tags).
            record(depends=f"{SMOKE_TASK}.Succeeded", arguments={
                "model-name": guard_output("model"), "version": task_output(CONTEXT_TASK, "version"),
                "pr-url": task_output(REVIEW_TASK, "pr-url"), "smoke-result": task_output(SMOKE_TASK, "result"),
                "rollout-step": guard_output("rollout-step"), "rollback-pr-url": ""})
        wt.on_exit = on_exit
    manifest: dict[str, Any] = wt.to_dict()  # hera types to_dict() as Any
    return manifest


def event_source(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.promotion
    return events.webhook_event_source(
        EVENT_SOURCE_NAME,
        cfg.namespace,
        [
            # OSS MLflow cannot send an Authorization header: its HMAC signature is verified by the guard. Registry
            # events are a few hundred bytes; the body travels in an annotation (256 KiB for all of them).
            events.WebhookEndpoint(MLFLOW_EVENT, p.webhook.port, p.webhook.endpoint,
                                   max_payload_size=events.REGISTRY_PAYLOAD_LIMIT),
            events.WebhookEndpoint(
                DATABRICKS_EVENT, p.legacy_webhook.port, p.legacy_webhook.endpoint, auth_secret=p.legacy_webhook_token,
                max_payload_size=events.REGISTRY_PAYLOAD_LIMIT,
            ),
        ],
        event_bus=cfg.event_bus,
    )


def sensor(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.promotion
    mlflow_dep = events.Dependency(
        name="mlflow-alias-created",
        event_source=EVENT_SOURCE_NAME,
        event_name=MLFLOW_EVENT,
        filters=(
            events.DataFilter("body.entity", ("model_version_alias",)),
            events.DataFilter("body.action", ("created",)),
            events.DataFilter("body.data.alias", tuple(p.aliases)),
            # The cheapest rejection first: a delivery without MLflow's signature headers in their exact shape never
            # becomes a Workflow (the guard still verifies the HMAC of every one that does).
            events.RegexFilter(events.header_key("X-MLflow-Signature"), r"^v1,[A-Za-z0-9+/]{43}=$"),
            events.RegexFilter(events.header_key("X-MLflow-Delivery-Id"), r"^[A-Za-z0-9-]{1,100}$"),
            events.RegexFilter(events.header_key("X-MLflow-Timestamp"), r"^[0-9]{9,11}$"),
        ),
    )
    databricks_dep = events.Dependency(
        name="databricks-stage-transition",
        event_source=EVENT_SOURCE_NAME,
        event_name=DATABRICKS_EVENT,
        filters=(
            events.DataFilter("body.event", ("MODEL_VERSION_TRANSITIONED_STAGE",)),
            events.DataFilter("body.to_stage", tuple(p.stages)),
        ),
    )
    labels = {"hera-flows.io/pattern": PATTERN.label}
    mlflow_trigger = events.WorkflowSubmitTrigger(
        name="promote-from-mlflow",
        dependency=mlflow_dep.name,
        template=TEMPLATE_NAME,
        parameters={
            "event-source": events.Constant("mlflow"),
            "received-at": events.FromContext("time"),
        },
        annotations={
            event_data.annotation_key("event-body"): events.FromEvent("body"),
            event_data.annotation_key("signature"): events.FromEvent(events.header_key("X-MLflow-Signature")),
            event_data.annotation_key("delivery-id"): events.FromEvent(events.header_key("X-MLflow-Delivery-Id")),
            event_data.annotation_key("timestamp"): events.FromEvent(events.header_key("X-MLflow-Timestamp")),
        },
        rate_limit=p.rate_limit,
        labels=labels,
    )
    databricks_trigger = events.WorkflowSubmitTrigger(
        name="promote-from-databricks",
        dependency=databricks_dep.name,
        template=TEMPLATE_NAME,
        parameters={
            "event-source": events.Constant("databricks"),
            "received-at": events.FromContext("time"),
        },
        annotations={
            event_data.annotation_key("event-body"): events.FromEvent("body"),
            event_data.annotation_key("databricks-signature"):
                events.FromEvent(events.header_key("X-Databricks-Signature")),
        },
        rate_limit=p.rate_limit,
        labels=labels,
    )
    return events.sensor(
        SENSOR_NAME,
        cfg.namespace,
        [mlflow_dep, databricks_dep],
        [mlflow_trigger, databricks_trigger],
        event_bus=cfg.event_bus,
        labels=labels,
    )
