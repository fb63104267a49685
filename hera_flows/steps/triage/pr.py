"""The failure-triage pull request's title and body (the pattern's ``review_text``, see hera_flows/catalog.py)."""

from __future__ import annotations

from typing import Any

from hera_flows.steps.markdown import contain, inline_code, refused_section


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
                branch: str) -> tuple[str, str]:
    """The PR title and body for the review step."""
    wf = context.get("workflow") or {}
    category = (context.get("classification") or {}).get("category", "unknown")
    title = f"Fix {wf.get('template') or wf.get('name', 'pipeline')} (failure triage: {category})"
    lines = [contain(summary) if summary.strip() else "_The agent left no summary._", *refused_section(refused), ""]
    lines += ["- [ ] The change fixes the cause, not only the symptom", "",
              f"Dedupe key {inline_code(key)} · branch {inline_code(branch)}"]
    return title, "\n".join(lines) + "\n"
