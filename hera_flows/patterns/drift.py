"""Pattern 2 — drift remediation: a drift alert from any monitoring tool becomes a retraining PR, or an issue
labelled ``data-quality`` when the context points at an upstream data bug; and a flapping detector can never
start a runaway of retrains or PRs.

- EventSource ``drift``: one bearer-authenticated webhook endpoint per tool (``/drift/alertmanager``,
  ``/drift/evidently``, ...), so the Sensor knows the payload shape from the endpoint instead of guessing.
- Sensor ``drift-remediation``: per endpoint a dependency (name charset check on the model field, the
  severity filter where the payload has one severity per delivery, firing-only for Alertmanager) and a trigger
  with ``rateLimit`` and ``atLeastOnce`` that submits ``drift-remediation`` (or ``drift-retrain``).
- WorkflowTemplate ``drift-remediation``: a per-model mutex (``synchronization.mutexes``) around
  guard (normalise, severity, per-key cooldown, open-PR ceiling) -> context -> agent -> review (PR or issue)
  -> smoke (the changed pipeline config parses and validates) -> report.
- ``mode: retrain``: WorkflowTemplate ``drift-retrain`` = the same guard, then the team's own training
  template through ``templateRef``.
- CronWorkflow ``drift-monitor``: an Evidently DataDriftPreset report posting one event per drifted column.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG, Container, Parameter, Task
from hera.workflows import models as m

from hera_flows import catalog
from hera_flows.blocks import claims, events, security
from hera_flows.blocks.agent import agent_template, forge_token
from hera_flows.blocks.guard import guard_arguments, guard_output, guard_template, proceeds
from hera_flows.blocks.review import outcome_outputs, report_template, review_smoke_report, review_template
from hera_flows.blocks.step import SecretEnv, step_template
from hera_flows.blocks.workflow import (
    PATTERN_LABEL,
    Param,
    cron_workflow,
    dag_output,
    pattern_workflow_template,
    task_output,
)
from hera_flows.config import Config
from hera_flows.patterns import PatternManifests
from hera_flows.steps import event_data
from hera_flows.steps.drift.normalise import NAME, SEVERITY_WORDS

PATTERN = catalog.pattern("drift")
TEMPLATE_NAME = "drift-remediation"
RETRAIN_TEMPLATE_NAME = "drift-retrain"
MONITOR_NAME = "drift-monitor"
EVENT_SOURCE_NAME = "drift"
SENSOR_NAME = "drift-remediation"
CONTEXT_TASK = "context"
SMOKE_TASK = "smoke"
RETRAIN_TASK = "retrain"
# Where the model name is in each tool's body (the Sensor passes it to the workflow for the per-model mutex).
MODEL_PATH = {
    "alertmanager": "body.alerts.0.labels.model",
    "evidently": "body.model",
    "arize": "body.model_id",
    "whylabs": "body.datasetId",
    "fiddler": "body.model_name",
    "nannyml": "body.model_name",
}
# Tools whose delivery carries one severity for everything in it: the Sensor filters on it. An Alertmanager
# group has one severity per alert (and commonLabels.severity is absent when they differ), Arize and NannyML
# make it optional: for those the guard alone filters.
SEVERITY_PATH = {"evidently": "body.severity", "fiddler": "body.severity", "whylabs": "body.severity"}
# The workflow-level mutex: one remediation per model at a time. The model reaches the name only after the
# Sensor checked its charset (the name filter below), and the guard checks it again.
MUTEX = "drift-{{workflow.parameters.model}}"


def _params(cfg: Config) -> list[Param]:
    sources = tuple(cfg.patterns.drift.webhook.sources)
    return [
        Param("event-source", "Which monitoring tool sent the event (set by the Sensor).", sources[0], sources),
        Param("model", "The model the event is about: the per-model mutex key (set by the Sensor; checked by the "
              "guard)."),
        Param("manual", "'true' for a hand-submitted run: model, feature and severity are required. The Sensor never "
              "sets it.", "false", ("false", "true")),
        Param("feature", "The drifted feature (manual runs only)."),
        Param("severity", "Severity of a manual run.", "critical", ("critical", "high", "medium", "warning", "low",
                                                                     "info")),
    ]


def build(cfg: Config) -> PatternManifests:
    d = cfg.patterns.drift
    templates = [retrain_template(cfg)] if d.mode == "retrain" else [workflow_template(cfg)]
    return PatternManifests(
        workflow_templates=templates,
        event_sources=[event_source(cfg)],
        sensors=[sensor(cfg)],
        cron_workflows=[monitor_cron_workflow(cfg)] if d.monitor.enabled else [],
    )


def _guard(cfg: Config, *, ceiling: bool) -> Container:
    d = cfg.patterns.drift
    repo = cfg.repository_for("drift")
    return guard_template(
        cfg,
        PATTERN,
        flags={
            "severities": d.severities,
            "cooldown_seconds": d.cooldown_seconds,
            "max_open_prs": d.max_open_prs if ceiling else 0,
            "max_open_prs_per_model": d.max_open_prs_per_model if ceiling else 0,
            "reservation_seconds": d.active_deadline_seconds,
            "branch_prefix": d.branch_prefix,
            "forge": cfg.forge.kind,
            "api_url": cfg.forge.api_url,
            "repo_slug": repo.slug,
        },
        secrets=[forge_token(cfg, optional=not ceiling, read_only=True)],
        claim_seconds=d.active_deadline_seconds,
    )


def _guard_arguments(cfg: Config) -> dict[str, str]:
    return guard_arguments([p.name for p in _params(cfg)])


def editor_settings(cfg: Config) -> dict[str, Any]:
    """The drift editor's settings (hera_flows/steps/drift/editor.py ``SETTINGS``) as configured; the smoke test
    checks the same pipeline layout and training-window floor."""
    d = cfg.patterns.drift
    return {"pipelines_dir": d.pipelines_dir, "params_file": d.params_file, "min_window_days": d.min_window_days}


def _with_mutex(template: dict[str, Any]) -> dict[str, Any]:
    # ``mutexes`` (a list) is the form both Argo 3.6+ and 4.x accept; 4.x removed the singular ``mutex``.
    template["spec"]["synchronization"] = {"mutexes": [{"name": MUTEX}]}
    return template


def workflow_template(cfg: Config) -> dict[str, Any]:
    d = cfg.patterns.drift
    repo = cfg.repository_for("drift")
    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern=PATTERN.label,
        title=PATTERN.title,
        description="Drift alert -> retraining proposal PR (or data-quality issue) -> pipeline config check",
        params=_params(cfg),
        active_deadline_seconds=d.active_deadline_seconds,
    ) as wt:
        guard = _guard(cfg, ceiling=True)
        context = step_template(
            cfg,
            name=CONTEXT_TASK,
            step=PATTERN.step_name("context"),
            flags={
                "tracking_uri": cfg.mlflow.tracking_uri,
                "repo_url": repo.url,
                "base_branch": repo.base_branch,
                "pipelines_dir": d.pipelines_dir,
                "params_file": d.params_file,
                "serving_alias": d.serving_alias,
                "git_log_limit": d.git_log_limit,
                "deadline_seconds": min(600, d.active_deadline_seconds // 3),
                "forge": cfg.forge.kind,
            },
            secrets=[forge_token(cfg, optional=True, read_only=True)],
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
        )
        agent = agent_template(cfg, PATTERN, repo=repo, allowed_paths=list(d.allowed_paths),
                               settings=editor_settings(cfg))
        review = review_template(cfg, PATTERN, repo)
        smoke = step_template(
            cfg,
            name=SMOKE_TASK,
            step=PATTERN.step_name("smoke"),
            flags=editor_settings(cfg),
            network=True,  # no network, but the shared retry policy (exit 75 only) keeps smoke tasks alike
        )
        report = report_template(cfg, repo)
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)

        with DAG(name="main", outputs=outcome_outputs()):
            guard(arguments=_guard_arguments(cfg))
            context(depends="guard.Succeeded", when=proceeds(), arguments={
                "event": guard_output("event"), "dedupe-key": guard_output("dedupe-key"),
                "branch": guard_output("branch")})
            agent(depends=f"{CONTEXT_TASK}.Succeeded", arguments={
                "context": task_output(CONTEXT_TASK, "context"),
                "branch": guard_output("branch"),
                "title": guard_output("title"),
            })
            review_smoke_report(
                review, smoke, report,
                context=task_output(CONTEXT_TASK, "context"),
                dedupe_key=guard_output("dedupe-key"),
                smoke_arguments={"model-name": guard_output("model")},
                confirm=confirm,
            )
        wt.on_exit = on_exit
    return _with_mutex(wt.to_dict())


def retrain_template(cfg: Config) -> dict[str, Any]:
    """``mode: retrain``: the drift guard (same cooldown, no PR ceiling), then the team's training template.

    ``templateRef`` runs one template of the team's WorkflowTemplate inside this workflow (its pods get this
    workflow's ServiceAccount and security context); its inputs receive the drift event fields named in
    ``retrain.parameters``.
    """
    d = cfg.patterns.drift
    with pattern_workflow_template(
        cfg,
        name=RETRAIN_TEMPLATE_NAME,
        pattern=PATTERN.label,
        title="Drift retrain",
        description=f"Drift alert -> guard -> {d.retrain.workflow_template}/{d.retrain.template}",
        params=_params(cfg),
        active_deadline_seconds=d.active_deadline_seconds,
    ) as wt:
        guard = _guard(cfg, ceiling=False)
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)
        with DAG(name="main", outputs=[dag_output("decision", "guard"), dag_output("reason", "guard")]):
            guard(arguments=_guard_arguments(cfg))
            Task(
                name=RETRAIN_TASK,
                template_ref=m.TemplateRef(name=d.retrain.workflow_template, template=d.retrain.template),
                depends="guard.Succeeded",
                when=proceeds(),
                arguments=[Parameter(name=name, value=guard_output(field))
                           for name, field in sorted(d.retrain.parameters.items())],
            )
            # The team's training ran: the key's cooldown holds for the whole window.
            confirm(depends=f"{RETRAIN_TASK}.Succeeded", arguments=claims.confirm_arguments())
        wt.on_exit = on_exit
    return _with_mutex(wt.to_dict())


def monitor_cron_workflow(cfg: Config) -> dict[str, Any]:
    """The scheduled Evidently report; it posts to the EventSource like any other tool (bearer token)."""
    d = cfg.patterns.drift
    mon = d.monitor
    event_url = mon.event_url or (
        f"http://{EVENT_SOURCE_NAME}-eventsource-svc.{cfg.namespace}.svc:{d.webhook.port}"
        f"{d.webhook.endpoint_prefix}/evidently")
    flags = {
        "model": mon.model,
        "reference": mon.reference,
        "current": mon.current,
        "columns": list(mon.columns) or None,
        "max_rows": mon.max_rows,
        "seed": mon.seed,
        "severity": mon.severity,
        "event_url": event_url,
        "tracking_uri": cfg.mlflow.tracking_uri,
    }
    with pattern_workflow_template(
        cfg,
        name=MONITOR_NAME,
        pattern=PATTERN.label,
        title="Drift monitor",
        description="Evidently DataDriftPreset: reference vs current window; one drift event per drifted column",
        params=[],
        active_deadline_seconds=mon.active_deadline_seconds,
    ) as wt:
        monitor = step_template(
            cfg,
            name="monitor",
            step=PATTERN.step_name("monitor"),
            flags=flags,
            secrets=[SecretEnv("HF_DRIFT_TOKEN", d.webhook.auth_secret)],
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
        )
        with DAG(name="main", outputs=[dag_output("scores", "monitor"), dag_output("drifted", "monitor")]):
            monitor()
    return cron_workflow(wt, list(mon.schedules))


def event_source(cfg: Config) -> dict[str, Any]:
    hook = cfg.patterns.drift.webhook
    return events.webhook_event_source(
        EVENT_SOURCE_NAME,
        cfg.namespace,
        [events.WebhookEndpoint(source, hook.port, f"{hook.endpoint_prefix}/{source}", auth_secret=hook.auth_secret,
                                max_payload_size=events.ALERT_PAYLOAD_LIMIT)
         for source in hook.sources],
        event_bus=cfg.event_bus,
    )


def severity_regex(source: str, severities: list[str]) -> str:
    """The raw severity values of ``source`` that normalise into ``severities`` (case-insensitive, anchored)."""
    words = sorted(w for w, level in SEVERITY_WORDS.items() if level in severities)
    if source == "whylabs":
        from hera_flows.steps.drift.normalise import WHYLABS_SEVERITY

        words += sorted(str(n) for n, level in WHYLABS_SEVERITY.items() if level in severities)
    return "(?i)^(" + "|".join(words) + ")$"


def sensor(cfg: Config) -> dict[str, Any]:
    d = cfg.patterns.drift
    template = RETRAIN_TEMPLATE_NAME if d.mode == "retrain" else TEMPLATE_NAME
    labels = {PATTERN_LABEL: PATTERN.label}
    dependencies, triggers = [], []
    for source in d.webhook.sources:
        filters: list[Any] = [events.RegexFilter(MODEL_PATH[source], NAME.pattern)]
        if source == "alertmanager":
            filters.append(events.DataFilter("body.status", ("firing",)))  # a resolved group never triggers
        if source in SEVERITY_PATH:
            filters.append(events.RegexFilter(SEVERITY_PATH[source], severity_regex(source, list(d.severities))))
        dependency = events.Dependency(name=f"{source}-drift", event_source=EVENT_SOURCE_NAME, event_name=source,
                                       filters=tuple(filters))
        dependencies.append(dependency)
        triggers.append(events.WorkflowSubmitTrigger(
            name=f"remediate-from-{source}",
            dependency=dependency.name,
            template=template,
            parameters={
                "event-source": events.Constant(source),
                "model": events.FromEvent(MODEL_PATH[source]),  # the name filter above checked its charset
            },
            # the body (alert annotations may hold unrendered `{{ $value }}` templates) never goes into a parameter
            annotations={event_data.annotation_key("event-body"): events.FromEvent("body")},
            rate_limit=d.rate_limit,
            labels=labels,
        ))
    return events.sensor(SENSOR_NAME, cfg.namespace, dependencies, triggers, event_bus=cfg.event_bus, labels=labels)
