"""The drift pull request: title, description, and the comment a later event adds to the same PR.

Registered in ``hera_flows.steps.review.LAYOUTS``; the third element (the update comment) carries the new
event's evidence, so a reviewer sees every alert that hit the key while the PR was open.
"""

from __future__ import annotations

from typing import Any


def _evidence_lines(context: dict[str, Any]) -> list[str]:
    event = context.get("event") or {}
    value, threshold = event.get("metric_value"), event.get("threshold")
    return [
        f"- **Source:** {event.get('source')} (alert `{event.get('id')}`), severity **{event.get('severity')}**",
        f"- **Metric:** `{event.get('metric')}` = {value if value is not None else 'n/a'}"
        f" (threshold {threshold if threshold is not None else 'n/a'})",
    ]


def render(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
           branch: str) -> tuple[str, str, str]:
    from hera_flows.steps.agents.model_card import inline_code

    event = context.get("event") or {}
    title = f"Retrain {event.get('model')}: drift on {event.get('feature')}"
    serving = context.get("serving") or {}
    history = context.get("history") or []
    lines = [
        f"Drift was detected on feature {inline_code(str(event.get('feature')))} of model "
        f"{inline_code(str(event.get('model')))}; this PR proposes a retraining.",
        "", "### Evidence", *_evidence_lines(context),
        "", "### Proposed change", summary.strip() or "(no summary)",
    ]
    if serving.get("version"):
        metrics = ", ".join(f"`{k}` {v:g}" for k, v in sorted((serving.get("metrics") or {}).items())[:10])
        lines += ["", f"### Serving version {serving['version']} ({serving.get('alias')})", metrics or "no metrics"]
    if history:
        lines += ["", "### Recent changes to the feature's pipeline files",
                  *[f"- `{c['commit']}` {c['date'][:10]} {c['subject']}" for c in history[:10]]]
    if refused:
        lines += ["", "### Changes refused by the allow-list",
                  *[f"- {inline_code(str(r.get('path')))}: {r.get('reason')}" for r in refused[:20]]]
    lines += ["", "- [ ] the new training window and parameters look right",
              "- [ ] retrain and compare with the serving version before promoting",
              "", f"Dedupe key {inline_code(key)}, branch {inline_code(branch)}. Later alerts for this key update "
                  "this PR instead of opening another."]
    update = "\n".join([f"New drift evidence for {inline_code(key)}; the branch was rebuilt from the base branch "
                        "with it:", *_evidence_lines(context)])
    return title, "\n".join(lines) + "\n", update
