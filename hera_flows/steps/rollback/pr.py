"""The rollback pull request's title and description: the alert as evidence, the promotion it undoes (linked),
and a checklist. Everything from the alert or the registry is rendered as code or escaped cells."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hera_flows.steps.markdown import code_cell, contain, inline_code, one_line, refused_section

MAX_TITLE_CHARS = 200


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
                branch: str, agent: dict[str, Any] | None = None) -> tuple[str, str]:
    """(title, body) of the revert PR (review appends the pushed files, the agent's run and the dedupe marker)."""
    alert = context.get("alert") or {}
    model, version = one_line(str(context.get("model")), 100), one_line(str(context.get("version")), 30)
    previous = one_line(str(context.get("previous_version") or "?"), 30)
    name = one_line(str(alert.get("alertname") or "an SLI alert"), 100)
    title = one_line(f"Roll back {model} v{version} to v{previous}: {name} fired", MAX_TITLE_CHARS)
    merged = context.get("merged_at")
    merged_text = datetime.fromtimestamp(merged, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") \
        if isinstance(merged, int) else "?"
    details = alert.get("details") or {}
    facts = [
        ("Model", code_cell(model, 200)),
        ("Rolled back", f"v{code_cell(version, 30)} → v{code_cell(previous, 30)}"),
        ("Promotion PR", code_cell(context.get("promotion_pr") or "unknown (no registry tag)", 300)),
        ("Promotion commit", f"{code_cell(str(context.get('commit'))[:40], 60)}, merged {merged_text}"),
        ("Alert", f"{code_cell(name, 100)} ({code_cell(str(alert.get('severity')), 20)}), since "
                  f"{code_cell(str(alert.get('starts_at') or '?'), 40)}"),
    ]
    if details.get("summary"):
        facts.append(("Summary", code_cell(details["summary"], 300)))
    if details.get("generator_url"):
        facts.append(("Source", code_cell(details["generator_url"], 300)))
    lines = [
        f"## Roll back {inline_code(model)} v{version}",
        "",
        f"The production SLI alert {inline_code(name)} fired for {inline_code(model)} within the rollback window "
        f"after version {inline_code(version)} was promoted. This pull request reverts that promotion, so the model "
        f"is served by version {inline_code(previous)} again once it is merged.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in facts),
        "",
        "### What changed",
        "",
        contain(summary) if summary.strip() else "_The agent left no summary._",
        *refused_section(refused),
        "",
        "### On-call checklist",
        "",
        "- [ ] The alert is real (dashboards: error rate, p99 latency) and not caused by something else",
        f"- [ ] Version {inline_code(previous)}'s artifacts are still where its manifest points",
        "- [ ] Merge to roll back; the version is tagged `rolled-back` in MLflow once the repository serves the "
        "previous version, and it is never promoted again automatically",
        "",
        f"<sub>Opened by hera-flows from branch {inline_code(one_line(branch, 200))}; one rollback per promotion "
        f"({inline_code(one_line(key, 200))}).</sub>",
    ]
    return title, "\n".join(lines)
