"""The builtin drift editor: a retraining proposal in the model's pipeline parameters file — or, when the context
points at an upstream data bug, an issue (``<workspace>/issue.json``) instead of any edit.

The retraining rule (documented in docs/patterns/drift.md), applied to ``<pipelines-dir>/<model>/<params-file>``
with surgical text edits so the team's comments and layout survive:

- ``dataset.window_end`` becomes the day of the drift alert (UTC): the training window slides onto the data
  that drifted;
- ``dataset.window_days`` is halved (never below ``--min-window-days``) when the drift is severe — the metric is
  at least twice its threshold (at most half of it for a metric that drifts downwards, e.g. a p-value) — so the
  new distribution dominates the training set; otherwise unchanged;
- ``retraining.revision`` is incremented and ``retraining.reason`` quotes the metric, value and threshold.

Every value is computed from the base branch's file and the event, so a redelivered event rebuilds the same
change (and the review step updates the same PR with the new evidence).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from hera_flows.steps.common import StepError
from hera_flows.steps.contract import Flag
from hera_flows.steps.yaml_patch import MISSING, format_path, set_values

SEVERE_FACTOR = 2.0
ISSUE_LABELS = ["data-quality", "drift"]


# The pattern's settings the editor, publish (writable paths) and the prompt read (filled from patterns.drift).
SETTINGS = (
    Flag("pipelines-dir", "folder of the pipelines: <pipelines-dir>/<model>/<params-file>"),
    Flag("params-file", "the model's training parameters file"),
    Flag("min-window-days", "the shortest training window the editor proposes", kind=int),
)


def writable_paths(repo: Path, context: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """A drift remediation may change the drifting model's own training parameters, nothing else."""
    model = str((context.get("event") or {}).get("model") or "")
    if not model or "/" in model or model.startswith("."):
        return []
    return [f"{args.pipelines_dir}/{model}/{args.params_file}"]


def builtin_edit(repo: Path, context: dict[str, Any], args: argparse.Namespace) -> str:
    event = context.get("event") or {}
    if not event.get("model"):
        raise StepError("the context has no drift event (its model)")
    if (context.get("data_quality") or {}).get("suspected"):
        return write_issue(repo.parent, context)
    return propose_retraining(repo, context, args.pipelines_dir, args.params_file, args.min_window_days)


def _evidence(event: dict[str, Any]) -> str:
    value, threshold = event.get("metric_value"), event.get("threshold")
    quoted = f"{event.get('metric')} = {value if value is not None else 'n/a'}"
    quoted += f" (threshold {threshold})" if threshold is not None else " (no threshold sent)"
    return f"{quoted}, severity {event.get('severity')}, from {event.get('source')} alert {event.get('id')}"


def write_issue(workspace: Path, context: dict[str, Any]) -> str:
    event = context["event"]
    reasons = context["data_quality"]["reasons"]
    history = context.get("history") or []
    lines = [
        f"A drift alert on `{event['model']}` / `{event.get('feature') or '*'}` looks like an **upstream data "
        "problem**, "
        "not a distribution shift, so no retraining was proposed.",
        "",
        f"**Evidence:** {_evidence(event)}.",
        "",
        "**Why this looks like a data bug:**",
        *[f"- {reason}" for reason in reasons],
        "",
        "**Suggested next steps:** check the upstream producer of this feature (schema, nulls, joins); once the "
        "data is fixed, the next drift alert will be evaluated again.",
    ]
    if history:
        lines += ["", "**Recent changes to the feature's pipeline files:**",
                  *[f"- `{c['commit']}` {c['date'][:10]} {c['subject']}" for c in history[:10]]]
    issue = {"title": f"Data quality: {event['model']}/{event.get('feature') or '*'} ({event.get('metric')})",
             "body": "\n".join(lines) + "\n", "labels": ISSUE_LABELS}
    (workspace / "issue.json").write_text(json.dumps(issue, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return (f"Opened a data-quality issue instead of a retraining proposal for {event['model']}/"
            f"{event.get('feature') or '*'}: "
            + "; ".join(reasons) + ".\n")


def _alert_day(event: dict[str, Any]) -> str:
    starts = str((event.get("details") or {}).get("starts_at") or "")
    try:
        moment = datetime.fromisoformat(starts.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.now(timezone.utc)
    if moment.year < 2000:  # Alertmanager's zero time
        moment = datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).date().isoformat()


def propose_retraining(repo: Path, context: dict[str, Any], pipelines_dir: str, params_file: str,
                       min_window_days: int) -> str:
    event = context["event"]
    relative = f"{pipelines_dir}/{event['model']}/{params_file}"
    path = repo / relative
    if not path.is_file() or path.is_symlink():
        raise StepError(f"{relative} does not exist: the drift pattern expects the model's training parameters "
                        f"there (see docs/patterns/drift.md)")
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    dataset = data.get("dataset") if isinstance(data, dict) else None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("window_days"), int) \
            or isinstance(dataset.get("window_days"), bool) or dataset["window_days"] < 1:
        raise StepError(f"{relative}: dataset.window_days must be a positive whole number of days")
    window = dataset["window_days"]
    value, threshold = event.get("metric_value"), event.get("threshold")
    below = (event.get("details") or {}).get("direction") == "below"
    severe = isinstance(value, (int, float)) and isinstance(threshold, (int, float)) and threshold > 0 \
        and (value <= threshold / SEVERE_FACTOR if below else value >= SEVERE_FACTOR * threshold)
    new_window = max(min_window_days, window // 2) if severe else window
    retraining = data.get("retraining") if isinstance(data.get("retraining"), dict) else {}
    revision = retraining.get("revision", 0)
    revision = revision if isinstance(revision, int) and not isinstance(revision, bool) else 0
    subject = event.get("feature") or "the whole model (no single feature named)"
    reason = f"drift on {subject}: {_evidence(event)}"
    edits = [
        (("dataset", "window_end"), _alert_day(event)),
        (("dataset", "window_days"), new_window),
        (("retraining", "revision"), revision + 1),
        (("retraining", "reason"), reason[:300]),
    ]
    new_text, changes = set_values(text, edits)
    path.write_text(new_text, encoding="utf-8")
    why = (f"halved (not below {min_window_days} days) because the metric is {SEVERE_FACTOR:g}x past its "
           "threshold" if severe and new_window != window else "unchanged (drift below the severe factor)")
    drifted_on = f"`{event['feature']}`" if event.get("feature") else \
        "the model as a whole (the alert named no single feature)"
    lines = [
        f"Retraining proposal for `{event['model']}` after drift on {drifted_on}.",
        "",
        f"- Evidence: {_evidence(event)}.",
        f"- `{relative}`: training window now ends on the alert day; window length {why}.",
        *[f"- `{format_path(c.path)}`: {'(absent)' if c.old is MISSING else f'`{c.old}`'} -> `{c.new}`"
          for c in changes],
    ]
    serving = context.get("serving") or {}
    if serving.get("version"):
        metrics = ", ".join(f"{k}={v:g}" for k, v in sorted((serving.get("metrics") or {}).items())[:8])
        lines.append(f"- Serving version {serving['version']} ({serving.get('alias')}): {metrics or 'no metrics'}.")
    return "\n".join(lines) + "\n"
