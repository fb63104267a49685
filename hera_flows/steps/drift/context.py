"""Step `drift-context`: everything the agent needs to propose a retraining (or to report a data bug), as JSON.

- the drift evidence: the guard's normalised event (metric, value, threshold, source, id);
- the model's training pipeline config from the GitOps repository, by convention
  ``<pipelines-dir>/<model>/<params-file>`` (default ``pipelines/<model>/params.yaml``) — see
  docs/patterns/drift.md for the expected keys;
- the recent git history (``git log``, bounded) of the feature's pipeline files: the files under
  ``<pipelines-dir>/<model>/`` whose path or content mentions the feature (a model-level event, with no feature,
  takes the whole folder's history);
- the MLflow metrics of the serving version (the version holding ``--serving-alias``), through the same
  retried client the promotion context uses;
- ``data_quality``: whether the evidence points at an upstream data bug (a schema change or missing values)
  rather than a real distribution shift, with the reasons — the agent then opens an issue instead of a PR.

The output is bounded: ``MAX_CONTEXT_BYTES`` (96 KiB) as a parameter (Argo keeps it in the workflow object, once
per key of the run, and hands it to the next pods in one environment string), ``--max-context-bytes`` when it
travels as an artifact. What does not fit is left out in this order, and ``notes`` says so: the params file's
content (the agent reads the file in its checkout), then the older half of the history and of the feature files.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from hera_flows.steps import gitrepo
from hera_flows.steps.common import StepError, TransientError, log, parse_json
from hera_flows.steps.contract import Flag, Step

MAX_FILES = 50
MAX_FILE_BYTES = 256 * 1024
MAX_CONTEXT_BYTES = 96 * 1024
# Metrics that measure data integrity, not distribution shift: their alerts are data bugs.
DATA_QUALITY_METRICS = {
    "missing_values", "missing_share", "missing_values_share", "null_fraction", "null_rate", "nan_share",
    "null_violation_count", "type_violation_count", "range_violation_count", "schema_change", "type_mismatch",
    "column_missing", "missing_column", "new_column",
}
MISSING_SHARE_LIMIT = 0.2  # more than this share of missing values in the current window is a data bug


CONTRACT = Step(
    name="drift-context",
    entry="hera_flows.steps.drift.context:main",
    summary="everything the agent needs to propose a retraining (or to report a data bug), as JSON",
    flags=(
        Flag("tracking-uri", "MLflow tracking server URL"),
        Flag("repo-url", "the GitOps repository"),
        Flag("base-branch", "its branch"),
        Flag("pipelines-dir", "folder of the pipelines: <pipelines-dir>/<model>/<params-file>"),
        Flag("params-file", "the model's training parameters file"),
        Flag("serving-alias", "MLflow alias of the version in production"),
        Flag("git-log-limit", "commits of the feature's pipeline history", kind=int),
        Flag("deadline-seconds", "give up (exit 75) when MLflow or git is still failing after this long", kind=float),
        Flag("forge", "forge kind (github or gitlab), for the git username", choices=("github", "gitlab")),
        Flag("max-context-bytes", "cap on the context (left out: 96 KiB, what a parameter carries; the generator "
             "sets it when the context is an artifact)", kind=int, optional=True),
    ),
    inputs=("event", "dedupe-key", "branch"),
    outputs=("context",),
)
param = CONTRACT.param


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    event = parse_json(param("event", required=True), "the event parameter")
    for name in ("model", "metric", "source", "id"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise StepError(f"the event parameter has no {name!r} (it comes from the guard's event output)")
    if not isinstance(event.get("feature", ""), str):
        raise StepError("the event parameter's feature must be a string (empty for a model-level event)")
    deadline = time.monotonic() + args.deadline_seconds
    with tempfile.TemporaryDirectory(prefix="hf-drift-context-") as scratch:
        from hera_flows.steps.mlflow_registry import clone_repository

        repo = clone_repository(args.repo_url, args.base_branch, Path(scratch), deadline, forge=args.forge)
        gitrepo.run_git(["fetch", "--quiet", "--deepen=200"], cwd=repo, check=False)  # history for git log
        context = build_context(repo, event, args)
    context["serving"] = serving(args.tracking_uri, event["model"], args.serving_alias, deadline)
    context["dedupe_key"] = param("dedupe-key")
    context["branch"] = param("branch")
    CONTRACT.write(args.outputs, context=bounded(context, args.max_context_bytes or MAX_CONTEXT_BYTES))
    dq = context["data_quality"]
    log(f"drift-context: {event['model']}/{event.get('feature') or '*'}: params "
        f"{'found' if context['pipeline']['params'] is not None else 'missing'}, {len(context['history'])} commits, "
        f"data quality suspected: {dq['suspected']}")
    return 0


def build_context(repo: Path, event: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    model, feature = event["model"], event.get("feature") or ""
    folder = f"{args.pipelines_dir}/{model}"
    params_path = f"{folder}/{args.params_file}"
    params, params_error = read_params(repo / params_path)
    files = feature_files(repo, folder, feature) if feature else []
    return {
        "pattern": "drift",
        "event": event,
        "thresholds": {"metric": event.get("metric"), "value": event.get("metric_value"),
                       "threshold": event.get("threshold")},
        "pipeline": {"dir": folder, "params_path": params_path, "params": params, "params_error": params_error,
                     "feature_files": files},
        "history": git_history(repo, files or [folder], args.git_log_limit),
        "data_quality": data_quality(event, params),
    }


def _dumps(context: dict[str, Any]) -> str:
    return json.dumps(context, indent=2, sort_keys=True, allow_nan=False)


def bounded(context: dict[str, Any], limit: int) -> str:
    """The context as JSON within ``limit`` bytes (see the module docstring for what is left out first)."""
    text = _dumps(context)
    pipeline = context["pipeline"]
    if len(text.encode("utf-8")) > limit and pipeline.get("params") is not None:
        pipeline["params"] = None
        context.setdefault("notes", []).append(
            f"the content of {pipeline['params_path']} is left out of this context ({len(text)} bytes with it, more "
            f"than {limit}): read the file in the checkout; with an artifact repository (`artifacts.repository`, "
            "docs/artifacts.md) the context carries it")
        text = _dumps(context)
    if len(text.encode("utf-8")) > limit and (context["history"] or pipeline["feature_files"]):
        context.setdefault("notes", []).append("the history and the feature files are shortened to fit")
    while len(text.encode("utf-8")) > limit and (context["history"] or pipeline["feature_files"]):
        context["history"] = context["history"][: len(context["history"]) // 2]
        pipeline["feature_files"] = pipeline["feature_files"][: len(pipeline["feature_files"]) // 2]
        text = _dumps(context)
    if len(text.encode("utf-8")) > limit:
        raise StepError(f"the drift context is {len(text)} bytes even without the params file and the history, more "
                        f"than {limit}: the event is too large for a parameter; configure an artifact repository "
                        "(`artifacts.repository`, docs/artifacts.md)")
    return text


def read_params(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    if not path.is_file():
        return None, f"{path.name} not found"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, f"not valid YAML: {str(exc).splitlines()[0][:200]}"
    if not isinstance(data, dict):
        return None, "not a YAML mapping"
    return json.loads(json.dumps(data, default=str)), None


def feature_files(repo: Path, folder: str, feature: str) -> list[str]:
    """Files of the model's pipeline folder whose path or content mentions the feature (bounded)."""
    base = repo / folder
    if not base.is_dir():
        return []
    found: list[str] = []
    for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(repo).as_posix()
        if feature in relative:
            found.append(relative)
        elif path.stat().st_size <= MAX_FILE_BYTES:
            try:
                if feature in path.read_text(encoding="utf-8"):
                    found.append(relative)
            except (UnicodeDecodeError, OSError):
                continue
        if len(found) >= MAX_FILES:
            break
    return found


def git_history(repo: Path, paths: list[str], limit: int) -> list[dict[str, str]]:
    result = gitrepo.run_git(
        ["log", f"-n{max(1, limit)}", "--format=%H%x1f%aI%x1f%an%x1f%s", "--", *paths], cwd=repo, check=False)
    history = []
    for line in result.stdout.splitlines():
        parts = line.split("\x1f")
        if len(parts) == 4:
            history.append({"commit": parts[0][:12], "date": parts[1], "author": parts[2][:100],
                            "subject": parts[3][:200]})
    return history


def data_quality(event: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """Does the evidence point at an upstream data bug? (documented rules, in order)"""
    reasons: list[str] = []
    metric = str(event.get("metric", "")).lower()
    if metric in DATA_QUALITY_METRICS:
        reasons.append(f"the alert measures data integrity ({event.get('metric')}), not distribution shift")
    details = event.get("details") or {}
    missing = details.get("missing_share")
    reference_missing = details.get("reference_missing_share") or 0
    if isinstance(missing, (int, float)) and missing > MISSING_SHARE_LIMIT and missing > 2 * reference_missing:
        reasons.append(f"{missing:.0%} of the current values of {event.get('feature')} are missing "
                       f"(reference: {reference_missing:.0%})")
    if details.get("dtype") and details.get("reference_dtype") and details["dtype"] != details["reference_dtype"]:
        reasons.append(f"the column type changed from {details['reference_dtype']} to {details['dtype']}")
    features = (params or {}).get("features")
    if isinstance(features, list) and features and event.get("feature") and event.get("feature") not in features:
        reasons.append(f"{event.get('feature')} is not one of the pipeline's features (schema change upstream?)")
    return {"suspected": bool(reasons), "reasons": reasons}


def serving(tracking_uri: str, model: str, alias: str, deadline: float) -> dict[str, Any]:
    """The serving version's metrics (via the promotion context's retried MLflow client); a missing model or
    alias is recorded, not fatal: a data-quality issue needs no MLflow."""
    from hera_flows.steps.mlflow_registry import Registry, mlflow_http_settings

    with mlflow_http_settings() as owned:
        registry = Registry(tracking_uri, deadline, bound_timeout="MLFLOW_HTTP_REQUEST_TIMEOUT" in owned)
        try:
            mv = registry.version_by_alias(model, alias)
            metrics, params = registry.metrics_and_params(mv)
        except TransientError:
            raise
        except StepError as exc:
            log(f"drift-context: no serving version: {exc}")
            return {"alias": alias, "version": None, "metrics": {}, "note": str(exc)}
    return {"alias": alias, "version": str(mv.version), "run_id": mv.run_id, "metrics": metrics,
            "params": dict(sorted(params.items())[:50])}
