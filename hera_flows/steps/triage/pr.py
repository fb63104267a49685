"""The failure-triage pull request's title and body (the pattern's ``review_text``, see hera_flows/catalog.py), and
the line every triage PR or issue carries on who decided: the rule table alone (builtin editor) or a coding agent
that was given the rule table's verdict (its own verdict read from its text: hera_flows/steps/triage/verdict.py)."""

from __future__ import annotations

from typing import Any

from hera_flows.steps.markdown import contain, inline_code, one_line, refused_section
from hera_flows.steps.triage.verdict import read_verdict


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
                branch: str, agent: dict[str, Any] | None = None) -> tuple[str, str]:
    """The PR title and body for the review step."""
    wf = context.get("workflow") or {}
    category = (context.get("classification") or {}).get("category", "unknown")
    decided = read_verdict(summary) if agent else None
    category = decided.category if decided else category
    title = f"Fix {wf.get('pipeline') or wf.get('template') or wf.get('name', 'pipeline')} (failure triage: {category})"
    lines = [contain(summary) if summary.strip() else "_The agent left no summary._", *refused_section(refused),
             *issue_note(context, agent, summary), ""]
    lines += ["- [ ] The change fixes the cause, not only the symptom", "",
              f"Dedupe key {inline_code(key)} · branch {inline_code(branch)}"]
    return title, "\n".join(lines) + "\n"


def issue_note(context: dict[str, Any], agent: dict[str, Any] | None, text: str = "") -> list[str]:
    """Which of the two decided: the rule table's verdict is always stated; with a coding agent, the agent decided,
    given the rule table's verdict, and its own verdict is the ``Verdict:`` line opening ``text`` (its summary or
    issue body), which is quoted back here, with whether the two agree."""
    classification = context.get("classification") or {}
    rules = str(classification.get("category", "unknown"))
    cause = str(classification.get("cause") or "")
    verdict = inline_code(rules) + (f" (cause {inline_code(cause)})" if cause else "")
    if not agent:
        return ["", "### Classification", "",
                f"**Decided by the rule table** (hera-flows' documented rules, no LLM): {verdict}."]
    runtime = inline_code(one_line(str(agent.get("runtime", "?")), 40))
    decided = read_verdict(text)
    if decided is None:
        line = (f"**Decided by the coding agent** {runtime}, given the rule table's verdict {verdict}; the agent "
                "wrote no `Verdict: <class>` line naming a known class, so read its text above for its diagnosis.")
    elif decided.category == rules:
        line = (f"**Decided by the coding agent** {runtime}: {inline_code(decided.category)}, given the rule "
                f"table's verdict {verdict}: the two agree.")
    else:
        line = (f"**Decided by the coding agent** {runtime}: {inline_code(decided.category)}, given the rule "
                f"table's verdict {verdict}: the agent overrode the rule table.")
    return ["", "### Classification", "", line]
