"""The promotion pull request's title and description.

Everything in it that came from outside (model names, metric names, the agent's summary, refused paths) is
treated as untrusted text: single values are rendered as inline code or escaped table cells (shared with the
model card, ``agents.model_card``), the agent's summary is contained (headings demoted, HTML and comments
defused, an unclosed code fence closed, length capped), so none of it can hide the checklist, forge the dedupe
marker or break the layout. Rendering is deterministic: a redelivered event produces the same body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.markdown import code_cell, contain, inline_code, one_line, refused_section, table_cell
from hera_flows.steps.model_cards import deployment_section, evaluation_section, fairness_section, metrics_table

MAX_TITLE_CHARS = 200
MAX_METRIC_ROWS = 50


def _field(context: Mapping[str, Any], key: str) -> str:
    value = context.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise StepError(f"the context has no {key!r}: cannot write the pull request")
    return str(value)


def promotion_title(context: Mapping[str, Any]) -> str:
    """``Promote <model> v<version> to <alias>`` on one line (titles render no markdown, so only length matters)."""
    model, version, alias = (one_line(_field(context, k), 100) for k in ("model", "version", "alias"))
    step = canary_step(context)
    suffix = f" (canary {step} %)" if step < 100 else ""
    return one_line(f"Promote {model} v{version} to {alias}{suffix}", MAX_TITLE_CHARS)


def canary_step(context: Mapping[str, Any]) -> int:
    """The traffic percentage this PR gives the version (100 without a rollout)."""
    rollout = context.get("rollout")
    step = rollout.get("step") if isinstance(rollout, Mapping) else None
    return step if isinstance(step, int) and not isinstance(step, bool) and 1 <= step <= 100 else 100


def _metrics_section(context: Mapping[str, Any]) -> list[str]:
    table = metrics_table(dict(context)).rstrip("\n")
    if not table:
        return ["_No metrics were logged for this model version._"]
    lines = table.split("\n")
    rows = len(lines) - 2
    if rows > MAX_METRIC_ROWS:
        lines = lines[: 2 + MAX_METRIC_ROWS] + ["", f"_…and {rows - MAX_METRIC_ROWS} more metrics (see MLflow)._"]
    return lines


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"### {title}", "", *lines, ""] if lines else []


def promotion_body(
    context: Mapping[str, Any],
    *,
    summary: str,
    refused: Sequence[Mapping[str, Any]],
    dedupe_key: str,
    branch: str,
) -> str:
    """The PR description: summary, metrics delta, what changed, refused paths, on-call checklist (review appends
    the pushed files and the dedupe marker)."""
    model, version, alias = (_field(context, k) for k in ("model", "version", "alias"))
    mv = context.get("model_version")
    mv = mv if isinstance(mv, Mapping) else {}
    serving = context.get("serving")
    serving = serving if isinstance(serving, Mapping) else {}
    current = serving.get("current_version")
    m, v, a = inline_code(one_line(model, 200)), table_cell(one_line(version, 50)), inline_code(one_line(alias, 100))

    facts = [
        ("Model", code_cell(model, 200)),
        ("Version", v + (f" (currently served: {table_cell(one_line(current, 50))})" if current else "")),
        ("Alias", code_cell(alias, 100)),
    ]
    for label, value in (
        ("Manifest", serving.get("manifest_path")),
        ("Artifacts", mv.get("storage_uri")),
        ("Previous artifacts", serving.get("current_storage_uri")),
        ("MLflow run", mv.get("run_id")),
    ):
        if value:
            facts.append((label, code_cell(value, 300)))

    lines = [
        f"## Promote {m} v{v} to {a}",
        "",
        f"The model registry gave version {v} of {m} the alias {a}. This pull request points the model's "
        "serving manifest at that version and records it in the model card; the change is deployed when it is "
        "merged."
        + (f" It is canary step {canary_step(context)} %: the rest of the traffic stays on the serving version, "
           "and hera-flows proposes the next step only while the health SLIs hold." if canary_step(context) < 100
           else ""),
        "",
        "| | |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in facts),
        "",
        "### Metrics",
        "",
        *_metrics_section(context),
        "",
        *_section("Evaluation set", evaluation_section(dict(context))),
        *_section("Fairness", fairness_section(dict(context))),
        *_section("Deployment settings", deployment_section(dict(context))),
        "### What changed",
        "",
        contain(summary) if summary.strip() else "_The agent left no summary._",
        *refused_section(refused),
        "",
        "### On-call checklist",
        "",
        "- [ ] Staging smoke test is green (its report is posted as a comment on this pull request)",
        f"- [ ] Dashboards checked for {m}: latency, error rate, prediction distribution",
        f"- [ ] The artifacts above are version {v}'s and the serving runtime can read them",
        "- [ ] Resource and replica changes fit the cluster's capacity",
        "- [ ] Rollback plan: revert this pull request"
        + (f" (the InferenceService goes back to version {table_cell(one_line(current, 50))})" if current else ""),
        "",
        f"<sub>Opened by hera-flows from branch {inline_code(one_line(branch, 200))}; a repeated event for "
        f"{inline_code(one_line(dedupe_key, 200))} updates this pull request.</sub>",
    ]
    return "\n".join(lines)


def review_text(context: dict[str, Any], summary: str, refused: list[dict[str, Any]], key: str,
                branch: str, agent: dict[str, Any] | None = None) -> tuple[str, str]:
    """The promotion PR's title and body for the review step (``review.LAYOUTS["promotion"]``)."""
    return promotion_title(context), promotion_body(context, summary=summary, refused=refused, dedupe_key=key,
                                                    branch=branch)
