"""`hera-flows step fairness-list-models`: the production models to audit, in as few MLflow requests as the API
allows, as the JSON list the audit task fans out over (Argo ``withParam``).

One paged ``search_registered_models`` (1000 models per request, the server's maximum) gives everything: a
registered model carries its aliases (alias -> version) and, for the legacy registry stages, its latest
version per stage, plus its tags. So N models cost ``ceil(N / 1000)`` requests, not one per model; everything
else a model's audit needs (its version's run, its dataset) is read by that model's own audit pod.

The run's names (report date, ISO week, branch, PR title, dedupe key) come from the guard
(``steps.fairness.guard``), which also decided that this week's audit runs at all.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError, log
from hera_flows.steps.contract import Flag, Step

PAGE_SIZE = 1000  # SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD of the MLflow server
MAX_PAGES = 1000
TAG_PREFIX = "fairness."  # registered-model tags passed on to the audit (dataset, columns, attributes)


CONTRACT = Step(
    name="fairness-list-models",
    entry="hera_flows.steps.fairness.list_models:main",
    summary="the production models of the registry (one paged request), for the audit fan-out",
    flags=(
        Flag("tracking-uri", "MLflow tracking server URL"),
        Flag("aliases", "aliases that mean 'in production'", form="csv"),
        Flag("stages", "legacy stages that mean 'in production'", form="csv"),
        Flag("max-models", "refuse more models than this (the transport's limit, or the configured one)",
             kind=int),
        Flag("deadline-seconds", "give up (exit 75) when MLflow is still failing after this long", kind=int),
        Flag("page-size", "registered models per request (left out: the MLflow server's maximum)", kind=int,
             optional=True),
        Flag("models-per-pod", "with an artifact repository: split the list into shards of this many models (the "
             "shards folder, one JSON list per shard, and their ids in shard-ids); left out: one pod per model",
             kind=int, optional=True),
    ),
    outputs=("models", "count", "shard-ids"),
    directories=("shards",),
)
SHARDS_DIR = "shards"


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    aliases, stages = list(args.aliases), list(args.stages)
    models = list_production_models(args.tracking_uri, aliases, stages, page_size=args.page_size or PAGE_SIZE,
                                    deadline=time.monotonic() + args.deadline_seconds)
    if len(models) > args.max_models:
        if args.models_per_pod is None:
            fix = ("every audit result reaches the fan-in through one parameter, so this path stays small: configure "
                   "an artifact repository (`artifacts.repository` in the configuration, docs/artifacts.md) to audit "
                   "thousands of models in one run, or raise patterns.fairness_audit.max_models with care (at most "
                   "1000; docs/patterns/fairness-audit.md, 'Limits')")
        else:
            fix = "raise patterns.fairness_audit.max_models (docs/patterns/fairness-audit.md, 'Limits')"
        raise StepError(f"{len(models)} production models found, more than --max-models={args.max_models}: {fix}")
    text = json.dumps(models, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    shard_ids: list[str] = []
    if args.models_per_pod is not None:
        shard_ids = write_shards(Path(args.outputs or "."), models, args.models_per_pod)
    log(f"fairness-list-models: {len(models)} production model(s) to audit"
        + (f" in {len(shard_ids)} pod(s) of at most {args.models_per_pod}" if args.models_per_pod else ""))
    CONTRACT.write(args.outputs, models=text, count=str(len(models)),
                   shard_ids=json.dumps(shard_ids, separators=(",", ":")))
    return 0


def write_shards(out_dir: Path, models: list[dict[str, Any]], size: int) -> list[str]:
    """``<out_dir>/shards/<id>.json``: the models in consecutive slices of ``size``; returns the ids in order
    (zero-padded, so a key and a file name sort like the list)."""
    if size < 1:
        raise StepError(f"--models-per-pod must be at least 1, not {size}")
    folder = out_dir / SHARDS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for index, start in enumerate(range(0, len(models), size)):
        shard = f"{index:05d}"
        (folder / f"{shard}.json").write_text(
            json.dumps(models[start:start + size], sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            encoding="utf-8")
        ids.append(shard)
    return ids


def list_production_models(
    tracking_uri: str, aliases: list[str], stages: list[str], *, page_size: int = PAGE_SIZE, deadline: float
) -> list[dict[str, Any]]:
    """One entry per registered model that is in production: ``{name, version, selector, tags}``, sorted by name.

    ``selector`` is the alias (``@champion``) or stage (``stage:Production``) that selected it; the first
    configured alias wins, then the first stage. ``tags`` are the model's ``fairness.*`` tags.
    """
    from hera_flows.steps.mlflow_registry import Registry, mlflow_http_settings

    if not aliases and not stages:
        raise StepError("neither --aliases nor --stages is set: no model can be selected")
    found: list[dict[str, Any]] = []
    with mlflow_http_settings():
        registry = Registry(tracking_uri, deadline)
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = registry.call(
                "searching registered models",
                functools.partial(registry.client.search_registered_models, max_results=page_size, page_token=token),
            )
            for model in page:
                entry = select(model, aliases, stages)
                if entry is not None:
                    found.append(entry)
            token = getattr(page, "token", None)
            if not token:
                break
    return sorted(found, key=lambda e: e["name"])


def select(model: Any, aliases: list[str], stages: list[str]) -> dict[str, Any] | None:
    model_aliases = dict(getattr(model, "aliases", None) or {})
    version = selector = None
    for alias in aliases:
        if alias in model_aliases:
            version, selector = str(model_aliases[alias]), f"@{alias}"
            break
    if version is None:
        by_stage = {mv.current_stage: mv for mv in (getattr(model, "latest_versions", None) or [])}
        for stage in stages:
            if stage in by_stage:
                version, selector = str(by_stage[stage].version), f"stage:{stage}"
                break
    if version is None:
        return None
    tags = {k: v for k, v in sorted((getattr(model, "tags", None) or {}).items()) if k.startswith(TAG_PREFIX)}
    return {"name": model.name, "version": version, "selector": selector, "tags": tags}

