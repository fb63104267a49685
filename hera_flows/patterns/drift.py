"""Pattern 2 — drift remediation: a drift alert from any monitoring tool becomes a retraining PR, or an issue
labelled ``data-quality`` when the context points at an upstream data bug; and a flapping detector can never
start a runaway of retrains or PRs.

- EventSource ``drift``: one bearer-authenticated webhook endpoint per webhook source (``/drift/alertmanager``,
  ``/drift/evidently``, ...), so the guard knows the payload's shape from the endpoint instead of guessing;
  EventSource ``drift-kafka``: one consumer per Kafka source (topic, brokers, TLS/SASL Secrets, consumer group).
- Sensor ``drift-remediation``: per source a dependency and a trigger with ``rateLimit`` and ``atLeastOnce`` that
  submits ``drift-remediation`` (or ``drift-retrain``) with the event in the Workflow's annotations. It drops
  nothing but resolved Alertmanager groups: every other decision (no model, a low severity, a bad name) is the
  guard's, made in a run that ends with its reason and is counted by decision.
- WorkflowTemplate ``drift-remediation``: guard (map the event through the source's mapping, severity, per-key
  cooldown, open-PR ceilings across the delivery) -> for every key that proceeds, under a per-model mutex:
  context -> agent -> review (PR or issue) -> smoke (the changed pipeline config parses and validates) -> report.
- With an artifact repository (``artifacts``) each key's context and published files travel as objects under
  ``<key_prefix>/<workflow name>/context/<branch>/`` and ``agent/<branch>/`` (docs/artifacts.md); without one,
  parameters, the context bounded to 96 KiB (hera_flows/steps/drift/context.py).
- ``mode: retrain``: WorkflowTemplate ``drift-retrain`` = the same guard, then for every key the team's own
  training template through ``templateRef``.
- CronWorkflow ``drift-monitor``: an Evidently DataDriftPreset report posting one event per drifted column.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG, Container, Parameter, Task
from hera.workflows import models as m

from hera_flows import catalog
from hera_flows.blocks import artifacts, claims, events, security
from hera_flows.blocks.agent import AGENT_TASK, AgentArtifacts, agent_template, forge_token
from hera_flows.blocks.guard import guard_arguments, guard_output, guard_template, proceeds
from hera_flows.blocks.review import REVIEW_TASK, report_template, review_smoke_report, review_template
from hera_flows.blocks.step import OUTPUTS_DIR, SecretEnv, step_template
from hera_flows.blocks.workflow import (
    PATTERN_LABEL,
    Param,
    cron_workflow,
    dag_output,
    pattern_workflow_template,
    task_output,
)
from hera_flows.config import ARTIFACT_CONTEXT_BYTES, Config, DriftSource
from hera_flows.patterns import PatternManifests
from hera_flows.steps import event_data
from hera_flows.steps.drift.guard import signature_env

PATTERN = catalog.pattern("drift")
TEMPLATE_NAME = "drift-remediation"
RETRAIN_TEMPLATE_NAME = "drift-retrain"
MONITOR_NAME = "drift-monitor"
EVENT_SOURCE_NAME = "drift"
KAFKA_EVENT_SOURCE_NAME = "drift-kafka"
SENSOR_NAME = "drift-remediation"
CONTEXT_TASK = "context"
SMOKE_TASK = "smoke"
RETRAIN_TASK = "retrain"
REMEDIATE_TASK = "remediate"  # the fan-out over the guard's remediations (one item per key)
REMEDIATE_TEMPLATE = "remediate"
# One remediation per model at a time, across runs: a template-level mutex on the per-key chain, named after the
# key's model as the guard checked it (never a value the Sensor copied from the event).
MUTEX = "drift-{{inputs.parameters.model}}"
# What every per-key chain receives: the guard's remediation items (hera_flows/steps/drift/guard.py Remediation).
ITEM_FIELDS = ("model", "feature", "dedupe-key", "branch", "title", "severity", "metric", "metric-value",
               "threshold", "source", "id", "event", "claims")


def _params(cfg: Config) -> list[Param]:
    sources = tuple(s.name for s in cfg.patterns.drift.all_sources())
    return [
        Param("event-source", "Which drift source sent the event (set by the Sensor); picks its mapping.",
              sources[0], sources),
        Param("model", "Manual runs only: the model to remediate (the Sensor never sets it: the guard reads the "
              "model from the event through the source's mapping)."),
        Param("manual", "'true' for a hand-submitted run: model and severity are required, feature is optional "
              "(empty: the whole model). The Sensor never sets it.", "false", ("false", "true")),
        Param("feature", "The drifted feature (manual runs only; empty: a model-level remediation)."),
        Param("severity", "Severity of a manual run.", "critical", ("critical", "high", "medium", "warning", "low",
                                                                     "info")),
    ]


def build(cfg: Config) -> PatternManifests:
    d = cfg.patterns.drift
    templates = [retrain_template(cfg)] if d.mode == "retrain" else [workflow_template(cfg)]
    return PatternManifests(
        workflow_templates=templates,
        event_sources=event_sources(cfg),
        sensors=[sensor(cfg)],
        cron_workflows=[monitor_cron_workflow(cfg)] if d.monitor.enabled else [],
    )


def source_specs(cfg: Config) -> dict[str, dict[str, Any]]:
    """What the guard knows of each source (its ``--sources`` flag): kind, shape, the effective mapping (the shape's
    default with the configured mapping over it), severity words and the signature scheme (never the secret)."""
    specs: dict[str, dict[str, Any]] = {}
    for source in cfg.patterns.drift.all_sources():
        spec: dict[str, Any] = {"kind": source.kind, "shape": source.effective_shape,
                                "mapping": source.effective_mapping()}
        if source.severities:
            spec["severities"] = {k.lower(): v for k, v in sorted(source.severities.items())}
        if source.signature is not None:
            spec["signature"] = source.signature.model_dump(exclude={"secret"}, exclude_none=True)
        specs[source.name] = spec
    return specs


def _guard(cfg: Config, *, ceiling: bool) -> Container:
    d = cfg.patterns.drift
    repo = cfg.repository_for("drift")
    signatures = [SecretEnv(signature_env(s.name), s.signature.secret)
                  for s in d.all_sources() if s.signature is not None]
    return guard_template(
        cfg,
        PATTERN,
        flags={
            "sources": source_specs(cfg),
            "severities": d.severities,
            "cooldown_seconds": d.cooldown_seconds,
            "max_open_prs": d.max_open_prs if ceiling else 0,
            "max_open_prs_per_model": d.max_open_prs_per_model if ceiling else 0,
            "max_keys_per_run": d.max_keys_per_run,
            "reservation_seconds": d.active_deadline_seconds,
            "branch_prefix": d.branch_prefix,
            "forge": cfg.forge.kind,
            "api_url": cfg.forge.api_url,
            "repo_slug": repo.slug,
        },
        secrets=[forge_token(cfg, optional=not ceiling, read_only=True), *signatures],
        claim_seconds=d.active_deadline_seconds,
    )


def _guard_arguments(cfg: Config) -> dict[str, str]:
    return guard_arguments([p.name for p in _params(cfg)])


def editor_settings(cfg: Config) -> dict[str, Any]:
    """The drift editor's settings (hera_flows/steps/drift/editor.py ``SETTINGS``) as configured; the smoke test
    checks the same pipeline layout and training-window floor."""
    d = cfg.patterns.drift
    return {"pipelines_dir": d.pipelines_dir, "params_file": d.params_file, "min_window_days": d.min_window_days}


def _item(name: str) -> str:
    return f"{{{{inputs.parameters.{name}}}}}"


def _per_key(name: str, fields: tuple[str, ...] = ITEM_FIELDS, outputs: list[Parameter] | None = None) -> DAG:
    """The DAG one key runs (its inputs are the guard's remediation item), under the per-model mutex."""
    return DAG(name=name, inputs=[Parameter(name=f) for f in fields], outputs=outputs,
               synchronization=m.Synchronization(mutexes=[m.Mutex(name=MUTEX)]))


def _fan_out(dag: DAG, fields: tuple[str, ...] = ITEM_FIELDS) -> None:
    """Call ``dag`` once per remediation the guard decided, when it decided to proceed."""
    dag(name=REMEDIATE_TASK if dag.name == REMEDIATE_TEMPLATE else RETRAIN_TASK, depends="guard.Succeeded",
        when=proceeds(), with_param=guard_output("remediations"),
        arguments={f: f"{{{{item.{f}}}}}" for f in fields})


def workflow_template(cfg: Config) -> dict[str, Any]:
    d = cfg.patterns.drift
    repo = cfg.repository_for("drift")
    # With an artifact repository each key's context and published files are objects under
    # <prefix>/<workflow name>/<task>/<the key's branch>/ (the branch is unique per key and a safe path: naming.py).
    large = artifacts.enabled(cfg)

    def per_key(task: str, name: str) -> str:
        return artifacts.key(cfg, task, _item("branch"), name)

    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern=PATTERN.label,
        title=PATTERN.title,
        description="Drift alert -> every key of it: retraining proposal PR (or data-quality issue) -> pipeline "
                    "config check",
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
                # the step's own bound (96 KiB) is the parameter path's; an artifact carries more
                "max_context_bytes": ARTIFACT_CONTEXT_BYTES if large else None,
            },
            secrets=[forge_token(cfg, optional=True, read_only=True)],
            env_from_secrets=[cfg.mlflow.credentials_secret] if cfg.mlflow.credentials_secret else [],
            network=True,
            artifact_outputs=[artifacts.output("context", f"{OUTPUTS_DIR}/context",
                                               per_key(CONTEXT_TASK, "context.json"))] if large else (),
        )
        agent = agent_template(cfg, PATTERN, repo=repo, allowed_paths=list(d.allowed_paths),
                               settings=editor_settings(cfg),
                               large=AgentArtifacts(files_key=per_key(AGENT_TASK, "files.json")) if large else None)
        review = review_template(cfg, PATTERN, repo, context_artifact=large)
        smoke = step_template(
            cfg,
            name=SMOKE_TASK,
            step=PATTERN.step_name("smoke"),
            flags=editor_settings(cfg),
            network=True,  # no network, but the shared retry policy (exit 75 only) keeps smoke tasks alike
            artifact_inputs=[artifacts.input_file("files")] if large else (),
        )
        report = report_template(cfg, repo)
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)

        with _per_key(REMEDIATE_TEMPLATE, outputs=[
            Parameter(
                name="dedupe-key", value_from=m.ValueFrom(parameter=_item("dedupe-key"), default="")),
            dag_output("pr-url", REVIEW_TASK), dag_output("issue-url", REVIEW_TASK),
            dag_output("action", REVIEW_TASK), dag_output("smoke-result", SMOKE_TASK, "result"),
        ]) as remediate:
            context(arguments={"event": _item("event"), "dedupe-key": _item("dedupe-key"),
                               "branch": _item("branch")})
            agent(depends=f"{CONTEXT_TASK}.Succeeded", arguments=artifacts.arguments(agent, {
                "context": task_output(CONTEXT_TASK, "context"),
                "branch": _item("branch"),
                "title": _item("title"),
            }))
            review_smoke_report(
                review, smoke, report,
                context=task_output(CONTEXT_TASK, "context"),
                dedupe_key=_item("dedupe-key"),
                smoke_arguments={"model-name": _item("model")},
                confirm=confirm,
                confirm_claims=_item("claims"),
            )

        with DAG(name="main", outputs=[
            dag_output("decision", "guard"), dag_output("reason", "guard"), dag_output("count", "guard"),
            dag_output("considered", "guard"),
            dag_output("dedupe-keys", REMEDIATE_TASK, "dedupe-key"),
            dag_output("pr-urls", REMEDIATE_TASK, "pr-url"), dag_output("issue-urls", REMEDIATE_TASK, "issue-url"),
            dag_output("actions", REMEDIATE_TASK, "action"),
            dag_output("smoke-results", REMEDIATE_TASK, "smoke-result"),
        ]):
            guard(arguments=_guard_arguments(cfg))
            _fan_out(remediate)
        wt.on_exit = on_exit
        wt.parallelism = d.parallelism
    wt.artifact_repository_ref = artifacts.repository_ref(cfg)
    document: dict[str, Any] = wt.to_dict()
    return document


def retrain_template(cfg: Config) -> dict[str, Any]:
    """``mode: retrain``: the drift guard (same cooldown, no PR ceiling), then for every key the team's training
    template.

    ``templateRef`` runs one template of the team's WorkflowTemplate inside this workflow (its pods get this
    workflow's ServiceAccount and security context); its inputs receive the drift event fields named in
    ``retrain.parameters``. Each key's training confirms that key's cooldown.
    """
    d = cfg.patterns.drift
    with pattern_workflow_template(
        cfg,
        name=RETRAIN_TEMPLATE_NAME,
        pattern=PATTERN.label,
        title="Drift retrain",
        description=f"Drift alert -> guard -> {d.retrain.workflow_template}/{d.retrain.template} per key",
        params=_params(cfg),
        active_deadline_seconds=d.active_deadline_seconds,
    ) as wt:
        guard = _guard(cfg, ceiling=False)
        confirm = claims.confirm_template(cfg, security.GUARD_SA)
        on_exit = claims.exit_handler(cfg, security.GUARD_SA)
        with _per_key("retrain-key") as per_key:
            Task(
                name="train",
                template_ref=m.TemplateRef(name=d.retrain.workflow_template, template=d.retrain.template),
                arguments=[Parameter(name=name, value=_item(field))
                           for name, field in sorted(d.retrain.parameters.items())],
            )
            # The team's training ran: this key's cooldown holds for the whole window.
            confirm(depends="train.Succeeded", arguments=claims.confirm_arguments(_item("claims")))
        with DAG(name="main", outputs=[dag_output("decision", "guard"), dag_output("reason", "guard"),
                                       dag_output("count", "guard"), dag_output("considered", "guard")]):
            guard(arguments=_guard_arguments(cfg))
            _fan_out(per_key)
        wt.on_exit = on_exit
        wt.parallelism = d.parallelism
    document: dict[str, Any] = wt.to_dict()
    return document


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


def event_sources(cfg: Config) -> list[dict[str, Any]]:
    """The webhook EventSource (when any source is a webhook) and the Kafka one (when any is Kafka)."""
    sources = cfg.patterns.drift.all_sources()
    out = []
    if any(s.kind == "webhook" for s in sources):
        out.append(event_source(cfg))
    kafka = [s for s in sources if s.kind == "kafka"]
    if kafka:
        out.append(events.kafka_event_source(KAFKA_EVENT_SOURCE_NAME, cfg.namespace, [_kafka_topic(s) for s in kafka],
                                             event_bus=cfg.event_bus))
    return out


def _kafka_topic(source: DriftSource) -> events.KafkaTopic:
    assert source.topic is not None  # validated: kind kafka has a topic and brokers
    return events.KafkaTopic(
        event_name=source.name, brokers=tuple(source.brokers), topic=source.topic,
        consumer_group=source.consumer_group, start_from_oldest=source.start_from_oldest,
        ca_cert=source.tls.ca_cert if source.tls else None,
        client_cert=source.tls.client_cert if source.tls else None,
        client_key=source.tls.client_key if source.tls else None,
        sasl_mechanism=source.sasl.mechanism if source.sasl else None,
        sasl_user=source.sasl.user if source.sasl else None,
        sasl_password=source.sasl.password if source.sasl else None,
        version=source.kafka_version,
    )


def event_source(cfg: Config) -> dict[str, Any]:
    hook = cfg.patterns.drift.webhook
    return events.webhook_event_source(
        EVENT_SOURCE_NAME,
        cfg.namespace,
        [events.WebhookEndpoint(source.name, hook.port, f"{hook.endpoint_prefix}/{source.name}",
                                auth_secret=hook.auth_secret, max_payload_size=events.ALERT_PAYLOAD_LIMIT)
         for source in cfg.patterns.drift.all_sources() if source.kind == "webhook"],
        event_bus=cfg.event_bus,
    )


def _annotations(source: DriftSource) -> dict[str, events.FromEvent | events.FromContext]:
    """The event into the Workflow's annotations (never parameters: alert annotations may hold unrendered
    `{{ $value }}` templates): the body, the transport's headers and fields, and the event's id."""
    fields: dict[str, events.FromEvent | events.FromContext] = {
        event_data.annotation_key("event-body"): events.FromEvent("body"),
        event_data.annotation_key("event-id"): events.FromContext("id"),
    }
    if source.kind == "kafka":
        fields[event_data.annotation_key("event-headers")] = events.FromEvent("headers")
        fields[event_data.annotation_key("event-topic")] = events.FromEvent("topic")
        fields[event_data.annotation_key("event-key")] = events.FromEvent("key")
    else:
        fields[event_data.annotation_key("event-headers")] = events.FromEvent("header")
    return fields


def sensor(cfg: Config) -> dict[str, Any]:
    d = cfg.patterns.drift
    template = RETRAIN_TEMPLATE_NAME if d.mode == "retrain" else TEMPLATE_NAME
    labels = {PATTERN_LABEL: PATTERN.label}
    dependencies, triggers = [], []
    for source in d.all_sources():
        filters: list[Any] = []
        if source.kind == "webhook" and source.effective_shape == "alertmanager":
            # A group whose alerts all resolved is not a drift event (Alertmanager sends it when send_resolved is
            # on); the guard also skips every resolved alert of a firing group.
            filters.append(events.DataFilter("body.status", ("firing",)))
        event_source_name = KAFKA_EVENT_SOURCE_NAME if source.kind == "kafka" else EVENT_SOURCE_NAME
        dependency = events.Dependency(name=f"{source.name}-drift", event_source=event_source_name,
                                       event_name=source.name, filters=tuple(filters))
        dependencies.append(dependency)
        triggers.append(events.WorkflowSubmitTrigger(
            name=f"remediate-from-{source.name}",
            dependency=dependency.name,
            template=template,
            parameters={"event-source": events.Constant(source.name)},
            annotations=_annotations(source),
            rate_limit=d.rate_limit,
            labels=labels,
        ))
    return events.sensor(SENSOR_NAME, cfg.namespace, dependencies, triggers, event_bus=cfg.event_bus, labels=labels)
