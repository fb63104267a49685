"""`hera-flows step rollback-context`: the evidence a rollback PR carries, as one JSON.

From the guard: the alert, the promotion commit, the versions and when it merged. From MLflow: the promotion PR
(the version's ``hera-flows.promotion.pr`` tag, written by the promotion workflow) so the revert links to it, and
the version's state (a version already rolled back never reaches here: the guard keeps one rollback per
promotion). MLflow unreachable is exit 75 (retried); a version MLflow no longer has only loses the link.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hera_flows.steps.common import StepError, TransientError, log, parse_json
from hera_flows.steps.contract import Flag, Step

CONTRACT = Step(
    name="rollback-context",
    entry="hera_flows.steps.rollback.context:main",
    summary="the alert, the promotion and its PR: what the rollback PR says",
    flags=(
        Flag("tracking-uri", "MLflow tracking server URL"),
        Flag("deadline-seconds", "give up (exit 75) when MLflow is still failing after this long", kind=float),
    ),
    inputs=("model", "version", "previous-version", "commit", "merged-at", "manifest", "paths", "alert"),
    outputs=("context",),
)


def main(argv: list[str]) -> int:
    from hera_flows.steps.mlflow_registry import Registry, mlflow_http_settings
    from hera_flows.steps.promotion import lifecycle

    args = CONTRACT.parse(argv)
    param = CONTRACT.param
    model, version = param("model", required=True), param("version", required=True)
    commit = param("commit", required=True)
    if not commit.isalnum() or len(commit) < 7:
        raise StepError(f"commit {commit[:50]!r} is not a commit id")
    alert = parse_json(param("alert", required=True), "the alert parameter")
    merged_at = param("merged-at").strip()
    paths = parse_json(param("paths") or "[]", "the paths parameter", list)
    tags: dict[str, Any] = {}
    with mlflow_http_settings():
        registry = Registry(args.tracking_uri, time.monotonic() + args.deadline_seconds)
        try:
            mv = registry.find_version(model, version)
            tags = dict(mv.tags or {}) if mv is not None else {}
        except TransientError:
            raise
        except StepError as exc:
            log(f"rollback-context: no registry link for {model} v{version}: {exc}")
    context = {
        "pattern": "rollback",
        "model": model,
        "version": version,
        "previous_version": param("previous-version") or None,
        "commit": commit,
        "merged_at": int(merged_at) if merged_at.isdigit() else None,
        "manifest": param("manifest"),
        "paths": [p for p in paths if isinstance(p, str)],
        "alert": alert,
        "promotion_pr": tags.get(lifecycle.PR_TAG) or None,
        "promotion_state": tags.get(lifecycle.STATE_TAG) or None,
    }
    CONTRACT.write(args.outputs, context=json.dumps(context, indent=2, ensure_ascii=False, sort_keys=True))
    log(f"rollback-context: {model} v{version} (commit {commit[:12]}), promotion PR "
        f"{context['promotion_pr'] or 'unknown'}")
    return 0
