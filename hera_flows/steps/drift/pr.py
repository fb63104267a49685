"""The drift pull request: title, description, and the comment a later event adds to the same PR.

The pattern's ``review_text`` (hera_flows/catalog.py); the third element (the update comment) carries the new
event's evidence, so a reviewer sees every alert that hit the key while the PR was open. Every value from the
event (ids, names, metrics) and the agent's summary go through :mod:`hera_flows.steps.markdown`.
"""

from __future__ import annotations

from typing import Any

from hera_flows.steps.markdown import contain, inline_code, one_line, refused_section, table_cell

# The guard's per-model ceiling counts a model's open PRs by this title.
PR_TITLE = "Retrain {model}: drift on {feature}"


def _number(value: Any) -> str:
    return table_cell(f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a")


def _evidence_lines(context: dict[str, Any]) -> list[str]:
    event = context.get("event") or {}
    return [
        f"- **Source:** {table_cell(one_line(event.get('source'), 40))} "
        f"(alert {inline_code(one_line(event.get('id'), 200))}), "
        f"severity **{table_cell(one_line(event.get('severity'), 20))}**",
        f"- **Metric:** {inline_code(one_line(event.get('metric'), 100))} = {_number(event.get('metric_value'))}"
        f" (threshold {_number(event.get('threshold'))})",
    ]


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
           branch: str, agent: dict[str, Any] | None = None) -> tuple[str, str, str]:
    event = context.get("event") or {}
    title = one_line(PR_TITLE.format(model=event.get("model"), feature=event.get("feature")), 200)
    serving = context.get("serving") or {}
    history = context.get("history") or []
    lines = [
        f"Drift was detected on feature {inline_code(one_line(event.get('feature'), 200))} of model "
        f"{inline_code(one_line(event.get('model'), 200))}; this PR proposes a retraining.",
        "", "### Evidence", *_evidence_lines(context),
        "", "### Proposed change", contain(summary) if summary.strip() else "_The agent left no summary._",
    ]
    if serving.get("version"):
        metrics = ", ".join(f"{inline_code(one_line(k, 80))} {_number(v)}"
                            for k, v in sorted((serving.get("metrics") or {}).items())[:10])
        lines += ["", f"### Serving version {table_cell(one_line(serving['version'], 20))} "
                      f"({inline_code(one_line(serving.get('alias'), 100))})", metrics or "no metrics"]
    if history:
        lines += ["", "### Recent changes to the feature's pipeline files",
                  *[f"- {inline_code(one_line(c.get('commit'), 40))} {table_cell(one_line(c.get('date'), 10))} "
                    f"{table_cell(one_line(c.get('subject'), 200))}" for c in history[:10] if isinstance(c, dict)]]
    lines += refused_section(refused)
    lines += ["", "- [ ] the new training window and parameters look right",
              "- [ ] retrain and compare with the serving version before promoting",
              "", f"Dedupe key {inline_code(key)}, branch {inline_code(branch)}. Later alerts for this key update "
                  "this PR instead of opening another."]
    update = "\n".join([f"New drift evidence for {inline_code(key)}:", *_evidence_lines(context)])
    return title, "\n".join(lines) + "\n", update
