"""The weekly fairness refresh's pull request title and body (the pattern's ``review_text``)."""

from __future__ import annotations

from typing import Any

from hera_flows.steps.common import StepError


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
                branch: str, agent: dict[str, Any] | None = None) -> tuple[str, str]:
    """(title, body) of the weekly PR: the digest, refused paths, and the dedupe marker of the ISO week."""
    from hera_flows.steps.markdown import contain, inline_code, refused_section

    date = str(context.get("date") or "")
    if not date:
        raise StepError("the fairness context has no 'date': cannot title the pull request")
    title = f"Weekly model-card refresh — {date}"
    body = [
        contain(summary) if summary.strip() else "_The agent left no summary._",
        *refused_section(refused),
        "",
        "### Reviewer checklist",
        "",
        "- [ ] Every refreshed card's movement is explained (data drift, a new model version, a label change)",
        "- [ ] Values outside the policy limits have an owner and a follow-up",
        "- [ ] The models that were not audited get their evaluation data fixed",
        "",
        f"<sub>Opened by hera-flows from branch {inline_code(branch)}; a rerun in the same week "
        "updates this pull request.</sub>",
    ]
    return title, "\n".join(body)
