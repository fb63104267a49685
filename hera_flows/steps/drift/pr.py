"""The drift pull request: title, description, and the comment a later event adds to the same PR.

The pattern's ``review_text`` (hera_flows/catalog.py); the third element (the update comment) carries the new
event's evidence, so a reviewer sees every alert that hit the key while the PR was open. Every value from the
event (ids, names, metrics) and the agent's summary go through :mod:`hera_flows.steps.markdown`.
"""

from __future__ import annotations

from typing import Any

from hera_flows.steps.markdown import contain, inline_code, one_line, refused_section, table_cell

# The guard's per-model ceiling counts a model's open PRs by these titles ("Retrain <model>: drift on ...").
PR_TITLE = "Retrain {model}: drift on {feature}"
MODEL_LEVEL_TITLE = "Retrain {model}: drift on the whole model"


def title_for(model: str, feature: str) -> str:
    """The PR title of a key; a model-level event (no feature) says so."""
    return PR_TITLE.format(model=model, feature=feature) if feature else MODEL_LEVEL_TITLE.format(model=model)


def _number(value: Any) -> str:
    return table_cell(f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a")


def _evidence_lines(context: dict[str, Any]) -> list[str]:
    event = context.get("event") or {}
    return [
        f"- **Source:** {table_cell(one_line(event.get('source'), 40))} "
        f"(alert {inline_code(one_line(event.get('id'), 200))}), "
        f"severity **{table_cell(one_line(event.get('severity'), 20))}**",
        f"- **Metric:** {inline_code(one_line(event.get('metric'), 100))} = {_number(event.get('metric_value'))}"
        f" (threshold {_number(event.get('threshold'))}"
        + (", drift when below it" if (event.get("details") or {}).get("direction") == "below" else "") + ")",
    ]


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
           branch: str, agent: dict[str, Any] | None = None) -> tuple[str, str, str]:
    event = context.get("event") or {}
    title = one_line(title_for(str(event.get("model") or ""), str(event.get("feature") or "")), 200)
    serving = context.get("serving") or {}
    history = context.get("history") or []
    if event.get("feature"):
        opening = (f"Drift was detected on feature {inline_code(one_line(event.get('feature'), 200))} of model "
                   f"{inline_code(one_line(event.get('model'), 200))}; this PR proposes a retraining.")
    else:
        opening = (f"Drift was detected on model {inline_code(one_line(event.get('model'), 200))} as a whole: the "
                   "alert named no single feature (a model-level alert, or a detector that tests all features "
                   "together), so this PR proposes a retraining for the model, keyed "
                   f"{inline_code(one_line(str(event.get('model')) + '@*', 200))}.")
        drifted = (event.get("details") or {}).get("drifted_features")
        if drifted:
            opening += f" The detector flagged the features at positions {inline_code(one_line(drifted, 200))}."
    lines = [
        opening,
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
