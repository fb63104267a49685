"""The failure-triage pull request's title and body (the pattern's ``review_text``, see hera_flows/catalog.py), and
the line every triage PR or issue carries on who decided: the rule table alone (builtin editor) or a coding agent
that was given the rule table's verdict."""

from __future__ import annotations

from typing import Any

from hera_flows.steps.markdown import contain, inline_code, one_line, refused_section


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
                branch: str, agent: dict[str, Any] | None = None) -> tuple[str, str]:
    """The PR title and body for the review step."""
    wf = context.get("workflow") or {}
    category = (context.get("classification") or {}).get("category", "unknown")
    title = f"Fix {wf.get('pipeline') or wf.get('template') or wf.get('name', 'pipeline')} (failure triage: {category})"
    lines = [contain(summary) if summary.strip() else "_The agent left no summary._", *refused_section(refused),
             *issue_note(context, agent), ""]
    lines += ["- [ ] The change fixes the cause, not only the symptom", "",
              f"Dedupe key {inline_code(key)} · branch {inline_code(branch)}"]
    return title, "\n".join(lines) + "\n"


def issue_note(context: dict[str, Any], agent: dict[str, Any] | None) -> list[str]:
    """Which of the two decided: the rule table's verdict is always stated; with a coding agent, the agent decided
    (its own verdict opens its summary) and the rule table's verdict is what it was given."""
    classification = context.get("classification") or {}
    category = inline_code(str(classification.get("category", "unknown")))
    cause = str(classification.get("cause") or "")
    verdict = f"{category}" + (f" (cause {inline_code(cause)})" if cause else "")
    if agent:
        runtime = inline_code(one_line(str(agent.get("runtime", "?")), 40))
        decided = (f"**Decided by the coding agent** {runtime}, given the rule table's verdict {verdict}; the agent's "
                   "own verdict opens its text above.")
    else:
        decided = f"**Decided by the rule table** (hera-flows' documented rules, no LLM): {verdict}."
    return ["", "### Classification", "", decided]
