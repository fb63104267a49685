"""Step `promotion-context`: collect what the agent needs to know about a promoted model version, as one JSON.

From MLflow: the version (source, run or LoggedModel, tags, aliases), its metrics and params, and the artifact
URI KServe should load. From the GitOps repository: the model's InferenceService and the version it serves
now, whose metrics give the deltas a reviewer wants to see. The deployment tags are validated here, so a bad
tag stops the workflow before anything is edited.

Two kinds of model version exist in MLflow 3: run-based ones (``run_id`` set; metrics and params on the run)
and LoggedModel ones (``run_id`` null, ``source: models:/m-...``; metrics and params on the LoggedModel). When
a version has both, the LoggedModel's own metrics win over the run's: they describe that model specifically.

Failures: an unknown model or version, a missing InferenceService or a bad tag is a StepError (exit 1); MLflow
unreachable after a few quick retries (MLflow's own HTTP retries are turned down so a dead server fails in
seconds, not minutes) is a TransientError (exit 75), which Argo retries with backoff.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any, TypeVar

from hera_flows.steps.common import StepError, TransientError, log
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.mlflow_registry import Registry, clone_repository, logged_model_id, mlflow_http_settings, redact
from hera_flows.steps.promotion import serving_manifest
from hera_flows.steps.promotion.deployment_tags import DEPLOYMENT_TAGS, parse_deployment_tags
from hera_flows.steps.promotion.serving_manifest import VERSION_ANNOTATION, find_serving_manifest, k8s_name

T = TypeVar("T")



CONTRACT = Step(
    name="promotion-context",
    entry="hera_flows.steps.promotion.context:main",
    summary="collect what the agent needs to know about a promoted model version, as one JSON",
    flags=(
        Flag("tracking-uri", "MLflow tracking server URL"),
        Flag("repo-url", "GitOps repository to read the InferenceService from"),
        Flag("base-branch", "its branch"),
        Flag("inference-dir", "folder of InferenceServices in the repository"),
        Flag("deadline-seconds", "give up (exit 75) when MLflow or git is still failing after this long", kind=float),
        Flag("forge", "forge kind (github or gitlab), for the git username", choices=("github", "gitlab")),
        Flag("model-cards-dir", "folder of the model cards (the fairness audit's latest record is read there)"),
        Flag("evaluation", "evaluation-set settings: dataset, columns, calibration bins (JSON)", form="json"),
        Flag("rollout-steps", "canary traffic steps in percent (empty: promote at once)", form="csv"),
        Flag("kserve-default-mode", "deployment mode of an InferenceService without the mode annotation"),
    ),
    inputs=("model-name", "version", "alias", "rollout-step"),
    outputs=("context", "manifest-path", "current-version", "version", "also-accept"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    model = CONTRACT.param("model-name", required=True).strip()
    version = CONTRACT.param("version").strip()
    alias = CONTRACT.param("alias").strip()
    if version and not re.fullmatch(r"[1-9][0-9]{0,9}", version):
        raise StepError(f"version {version!r} is not a model version number (expected 1, 2, 3, ...)")
    if not version and not alias:
        raise StepError("neither a version nor an alias was given: one of them names the model version")

    deadline = time.monotonic() + args.deadline_seconds
    with mlflow_http_settings() as owned:
        registry = Registry(args.tracking_uri, deadline, bound_timeout="MLFLOW_HTTP_REQUEST_TIMEOUT" in owned)
        context = build_context(registry, args, model, version, alias, deadline)

    serving = context["serving"]
    CONTRACT.write(
        args.outputs,
        context=json.dumps(context, indent=2, ensure_ascii=False, allow_nan=False),
        manifest_path=serving["manifest_path"],
        current_version=serving["current_version"] or "",
        version=context["version"],
        # a canary step's staging may answer with either version
        also_accept=(serving["current_version"] or "") if (context["rollout"] or {}).get("step", 100) < 100 else "",
    )
    log(f"context: {model} v{context['version']} -> {serving['manifest_path']} "
        f"(serving now: {serving['current_version'] or 'unknown'})")
    return 0


def build_context(
    registry: Registry, args: argparse.Namespace, model: str, version: str, alias: str, deadline: float
) -> dict[str, Any]:
    from hera_flows.steps.promotion import evaluation

    settings = evaluation.EvaluationSettings.parse(args.evaluation)
    mv = registry.model_version(model, version) if version else registry.version_by_alias(model, alias)
    metrics, params = registry.metrics_and_params(mv)
    deployment, sources = deployment_settings(registry, mv)
    storage_uri = registry.storage_uri(mv)

    with tempfile.TemporaryDirectory(prefix="hf-context-") as scratch:
        repo = clone_repository(args.repo_url, args.base_branch, Path(scratch), deadline, forge=args.forge)
        found = find_serving_manifest(repo, model, args.inference_dir)
        if found is None:
            raise StepError(
                f"no InferenceService or Seldon Model for model {model!r} in folder '{args.inference_dir}/' of "
                f"{redact(args.repo_url)} (branch {args.base_branch}): expected a manifest annotated "
                f"'hera-flows.io/mlflow-model: {model}' or named '{k8s_name(model)}'"
            )
        card_text = read_card(repo, args.model_cards_dir, model)
        metadata = found.document.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}  # a match by name always has a metadata mapping
        if found.matched_by == "name":
            check_name_match(registry, model, str(metadata.get("name")), found.relative)
        annotations = metadata.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        current_storage_uri = serving_manifest.storage_uri(found.document)
        serving_mv, current_metrics = serving_version(
            registry, model, annotations.get(VERSION_ANNOTATION), current_storage_uri
        )
        current_version = serving_mv if isinstance(serving_mv, str) else (
            str(serving_mv.version) if serving_mv is not None else None)
        evaluated: dict[str, Any] | None = None
        if settings.enabled:
            work = Path(scratch) / "evaluation"
            new = evaluation.evaluate(mv, settings, registry.uri, work)
            old = evaluation.serving_evaluation(None if isinstance(serving_mv, str) else serving_mv, settings,
                                                registry.uri, work, card_text)
            evaluated = {"new": new, "serving": old, "deltas": evaluation.deltas(new, old)}

    return {
        "pattern": "promotion",
        "model": mv.name,
        "version": str(mv.version),
        "alias": alias or None,
        "model_version": {
            "name": mv.name,
            "version": str(mv.version),
            "source": mv.source,
            "run_id": mv.run_id or None,
            "model_id": logged_model_id(mv),
            "storage_uri": storage_uri,
            "tags": dict(sorted((mv.tags or {}).items())),
            "aliases": sorted(mv.aliases or []),
            "description": mv.description or None,
            "creation_timestamp": mv.creation_timestamp,
        },
        "metrics": metrics,
        "params": params,
        "deployment": deployment,
        "deployment_sources": sources,
        "serving": {
            "target": found.target,
            "manifest_path": found.relative,
            "current_version": current_version,
            "current_storage_uri": current_storage_uri,
            "metrics": current_metrics,
        },
        "deltas": deltas(metrics, current_metrics),
        "evaluation": evaluated,
        "rollout": rollout_of(args, found),
    }


def rollout_of(args: argparse.Namespace, found: Any) -> dict[str, Any] | None:
    """The canary step this run writes (hera_flows/steps/promotion/canary.py), or None when rollouts are off."""
    from hera_flows.steps.promotion import canary

    steps = [int(s) for s in args.rollout_steps]
    if not steps:
        return None
    raw = CONTRACT.param("rollout-step").strip()
    step = int(raw) if raw.isdigit() else steps[0]
    if step not in steps:
        raise StepError(f"rollout step {raw[:10]!r} is not one of the configured steps {steps}")
    return {"step": step, "steps": steps, "mode": canary.mode_of(found, args.kserve_default_mode)}


def deployment_settings(registry: Registry, mv: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The deployment tags, typed, from the model version's tags over its run's (training pipelines tag runs with
    ``gpu_type``/``replica_*``; a tag set on the version is the deliberate choice and wins), and where each set
    value came from: ``model version`` or ``run <id>``."""
    version_tags = {k: v for k, v in (mv.tags or {}).items() if k in DEPLOYMENT_TAGS and str(v).strip()}
    run_tags = {k: v for k, v in registry.run_tags(mv).items() if k in DEPLOYMENT_TAGS and str(v).strip()}
    merged = {**run_tags, **version_tags}
    sources = {name: ("model version" if name in version_tags else f"run {mv.run_id}") for name in sorted(merged)}
    try:
        deployment = parse_deployment_tags(merged)
    except StepError as exc:
        named = next((n for n in sorted(merged, key=len, reverse=True) if f"tag {n}=" in str(exc)
                      or f"tags {n}=" in str(exc)), None)
        where = f" (from the {sources[named]}'s tags)" if named else ""
        raise StepError(f"{exc}{where}") from None
    return deployment, sources


def read_card(repo: Path, cards_dir: str, model: str) -> str | None:
    """The model's card on the base branch (the fairness audit's latest record is in it), or None."""
    from hera_flows.steps.model_cards import card_path

    try:
        path = card_path(repo, cards_dir, model)
    except StepError as exc:
        log(f"context: not reading the model card: {exc}")
        return None
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        log(f"context: the model card {path.name} is unreadable: {exc}")
        return None


def check_name_match(registry: Registry, model: str, manifest_name: str, relative: str) -> None:
    """A manifest found by its name only (no annotation) must not belong to another registered model: when a
    model is registered under exactly that name, ``model`` is a look-alike (``Fraud_Detector`` for
    ``fraud-detector``) and the promotion is refused instead of repointing the other model's service."""
    if manifest_name == model or not registry.model_exists(manifest_name):
        return
    raise StepError(
        f"{relative} is named {manifest_name!r} and carries no '{serving_manifest.MODEL_ANNOTATION}' annotation; "
        f"the registry has a model named exactly {manifest_name!r}, so it may serve that model rather than "
        f"{model!r}. Annotate the manifest that serves {model!r} with "
        f"'{serving_manifest.MODEL_ANNOTATION}: {model}'")


def serving_version(
    registry: Registry, model: str, annotated: Any, storage_uri: str | None
) -> tuple[Any, dict[str, float] | None]:
    """The version the manifest serves now (its version annotation, else the version whose artifacts are at
    the manifest's storageUri) and that version's metrics. The version is the MLflow model version, or only its
    number when MLflow no longer has it; (None, None) when neither tells."""
    version = str(annotated).strip() if annotated is not None else ""
    if version:
        if not re.fullmatch(r"[1-9][0-9]{0,9}", version):
            log(f"context: ignoring annotation {VERSION_ANNOTATION}={version!r}: not a version number")
        else:
            mv = registry.find_version(model, version)
            if mv is None:
                log(f"context: the manifest names version {version}, which MLflow no longer has; no deltas")
                return version, None
            return mv, _serving_metrics(registry, mv)
    if storage_uri:
        mv = registry.version_with_storage_uri(model, storage_uri)
        if mv is not None:
            return mv, _serving_metrics(registry, mv)
    return None, None


def _serving_metrics(registry: Registry, mv: Any) -> dict[str, float] | None:
    """The serving version's metrics; None (no deltas, not a failure) when its run or model is gone."""
    try:
        return registry.metrics_and_params(mv)[0]
    except StepError as exc:
        if isinstance(exc, TransientError):
            raise
        log(f"context: no metrics for the serving version {mv.version}: {exc}")
        return None


def deltas(new: dict[str, float], old: dict[str, float] | None) -> dict[str, dict[str, float | None]]:
    result: dict[str, dict[str, float | None]] = {}
    for name, value in new.items():
        previous = (old or {}).get(name)
        delta = round(value - previous, 10) if previous is not None else None
        result[name] = {"new": value, "old": previous, "delta": delta}
    return result


