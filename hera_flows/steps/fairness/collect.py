"""The fan-in of the fairness audit.

``hera-flows step fairness-collect`` receives every model's result as Argo's aggregated output (a JSON list, one
entry per audit pod — Argo parses entries that are JSON, so an entry is an object or, if any entry was not JSON,
a string) plus the list of models that were fanned out, and writes the agent's context: one result per listed
model, in name order; a model whose audit pod failed for good is marked as not audited.

``refresh`` is what the builtin agent editor (``agents.fairness``) runs in the checked-out repository: it reads
the policy, compares each model's new values with the record in its card, rewrites the fairness section only
of the cards that moved beyond the thresholds, and returns the digest that becomes the PR description. Nothing
moved: no file changes, so publish pushes nothing and review opens no PR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hera_flows.steps import model_cards as model_card
from hera_flows.steps.common import StepError, log, parse_json
from hera_flows.steps.contract import Step
from hera_flows.steps.fairness import card
from hera_flows.steps.markdown import inline_code, table_cell

MAX_REASONS_SHOWN = 8
# A digest longer than this goes into a file of the change (publish caps the description at 16 KiB, GitHub at
# 65,536 characters); the description then holds the summary table and the first refreshed cards.
MAX_INLINE_DIGEST_CHARS = 12_000
MAX_SHORT_LISTED = 20
DIGEST_DIR = "digests"


CONTRACT = Step(
    name="fairness-collect",
    entry="hera_flows.steps.fairness.collect:main",
    summary="the fan-in: every model's audit result (missing ones reported) as the agent's context",
    inputs=("models", "results", "date", "week"),
    outputs=("context",),
)
param = CONTRACT.param


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    models = parse_json(param("models", required=True), "the models parameter", list)
    folder = CONTRACT.input_path("results")
    if folder is not None:
        results = read_results(folder)  # one object per audit pod, under the run's prefix (artifact repository)
    else:
        results = parse_json(param("results") or "[]", "the results parameter", list)
    context = build_context(models, results, date=param("date", required=True), week=param("week", required=True))
    text = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    log(f"fairness-collect: {len(context['results'])} model result(s), context {len(text)} bytes")
    CONTRACT.write(args.outputs, context=text)
    return 0


def read_results(folder: Path) -> list[Any]:
    """Every result in the fan-in folder: one JSON file per audit pod (a result list, or one result); a file that
    is not JSON is skipped (its models then show as not audited); no folder (no pod wrote one) is no result."""
    if not folder.is_dir():
        return []
    results: list[Any] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            log(f"fairness-collect: {path.name} is not a JSON result; its models count as not audited")
            continue
        results.extend(data if isinstance(data, list) else [data])
    return results


def build_context(models: list[Any], results: list[Any], *, date: str, week: str) -> dict[str, Any]:
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in results:
        if isinstance(entry, str):
            try:
                entry = json.loads(entry)
            except json.JSONDecodeError:
                continue
        if isinstance(entry, dict) and entry.get("model"):
            by_key[(str(entry["model"]), str(entry.get("version", "")))] = entry
    collected = []
    for model in models:
        if not isinstance(model, dict):
            continue
        key = (str(model.get("name", "")), str(model.get("version", "")))
        collected.append(by_key.get(key) or {
            "model": key[0], "version": key[1], "selector": model.get("selector", ""), "dataset": "", "rows": 0,
            "overall": None, "attributes": {}, "problems": [],
            "error": "the audit pod did not finish (see the workflow's audit step for this model)",
        })
    collected.sort(key=lambda r: (r["model"], r["version"]))
    return {"pattern": "fairness", "date": date, "week": week, "results": collected}


# --- the card refresh (run by the builtin agent in the checkout) -------------------------------------------------


def load_policy(repo: Path, policy_file: str) -> card.Policy:
    path = repo / policy_file
    if path.is_symlink():
        raise StepError(f"{policy_file} is a symbolic link; refusing to read it")
    text = path.read_bytes().decode("utf-8") if path.is_file() else None
    return card.parse_policy(text, policy_file)


def refresh(repo: Path, context: dict[str, Any], *, cards_dir: str, policy_file: str) -> str:
    """Rewrite the cards that moved; return the digest (markdown)."""
    date, week = str(context.get("date", "")), str(context.get("week", ""))
    results = context.get("results")
    if not date or not week or not isinstance(results, list):
        raise StepError("the fairness context has no date, week or results")
    policy = load_policy(repo, policy_file)
    refreshed: list[tuple[dict[str, Any], list[str], str]] = []
    unchanged: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for result in results:
        if not isinstance(result, dict) or not result.get("model"):
            continue
        if result.get("error"):
            failed.append(result)
            continue
        path = model_card.card_path(repo, cards_dir, str(result["model"]))
        existing = path.read_bytes().decode("utf-8") if path.is_file() else None
        old = card.previous_record(existing)
        new = {**card.record(result, date, week)}
        reasons = card.movements(new, old, policy)
        if not reasons:
            unchanged.append(result)
            continue
        model = str(result["model"])
        updated = card.upsert_section(existing, model, card.render_section(model, new, old))
        if updated != existing:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(updated.encode("utf-8"))
        refreshed.append((result, reasons, path.relative_to(repo).as_posix()))
    full = digest(date, week, policy, refreshed, unchanged, failed, total=len(results))
    if len(full) <= MAX_INLINE_DIGEST_CHARS:
        return full
    # Too long for a PR description: the whole digest becomes a file of the change, the description its summary.
    rel = digest_path(cards_dir, week)
    path = repo / rel
    if path.is_symlink():
        raise StepError(f"{rel} is a symbolic link; refusing to write the digest there")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(full.encode("utf-8"))
    return short_digest(date, week, policy, refreshed, unchanged, failed, total=len(results), path=rel)


def digest_path(cards_dir: str, week: str) -> str:
    """Where a digest too long for the PR description goes: ``<cards_dir>/digests/<week>.md`` (a subfolder, so it
    is never taken for a model's card, which lie directly in ``cards_dir``)."""
    safe = "".join(c for c in week if c.isalnum() or c in "-_") or "digest"
    return f"{cards_dir.rstrip('/')}/{DIGEST_DIR}/{safe}.md"


def _who(result: dict[str, Any]) -> str:
    selector = result.get("selector") or ""
    return f"{inline_code(result.get('model'))} v{table_cell(result.get('version'))}" + (
        f" ({inline_code(selector)})" if selector else "")


def _summary_table(policy: card.Policy, refreshed: list[tuple[dict[str, Any], list[str], str]],
                   unchanged: list[dict[str, Any]], failed: list[dict[str, Any]]) -> list[str]:
    audited = [*(x[0] for x in refreshed), *unchanged]
    breaches = sum(1 for r in audited if card.limit_breaches(r, policy))
    problems = sum(1 for r in audited if r.get("problems"))
    return ["| | models |", "| --- | ---: |",
            f"| card refreshed (moved past the thresholds) | {len(refreshed)} |",
            f"| within the thresholds | {len(unchanged)} |",
            f"| not audited | {len(failed)} |",
            f"| outside a policy limit ⚠ | {breaches} |",
            f"| with data problems | {problems} |"]


def short_digest(date: str, week: str, policy: card.Policy, refreshed: list[tuple[dict[str, Any], list[str], str]],
                 unchanged: list[dict[str, Any]], failed: list[dict[str, Any]], *, total: int, path: str) -> str:
    """The PR description when the digest is a file: the summary table, the first refreshed cards and the link."""
    cell = table_cell
    lines = [
        f"# Weekly model-card refresh — {cell(date)}",
        "",
        f"Fairness audit of {total} production model(s) for week {cell(week)}. Policy: {inline_code(policy.source)}. "
        "Written by the builtin hera-flows agent (deterministic, no LLM).",
        "",
        *_summary_table(policy, refreshed, unchanged, failed),
        "",
        f"The whole digest — every model, each refreshed card with its movements — is too long for this description: "
        f"it is the file [{inline_code(path)}]({path}) of this pull request.",
    ]
    if refreshed:
        lines += ["", f"## Cards refreshed (first {min(len(refreshed), MAX_SHORT_LISTED)} of {len(refreshed)})", ""]
        lines += [f"- {_who(result)} → {inline_code(rel)}" for result, _, rel in refreshed[:MAX_SHORT_LISTED]]
    return "\n".join(lines) + "\n"


def digest(date: str, week: str, policy: card.Policy, refreshed: list[tuple[dict[str, Any], list[str], str]],
           unchanged: list[dict[str, Any]], failed: list[dict[str, Any]], *, total: int) -> str:
    cell = table_cell
    lines = [
        f"# Weekly model-card refresh — {cell(date)}",
        "",
        f"Fairness audit of {total} production model(s) for week {cell(week)}. Policy: {inline_code(policy.source)}. "
        f"{len(refreshed)} card(s) refreshed, {len(unchanged)} within the thresholds, {len(failed)} not audited. "
        "Written by the builtin hera-flows agent (deterministic, no LLM).",
        "",
        *_summary_table(policy, refreshed, unchanged, failed),
    ]
    if refreshed:
        lines += ["", "## Cards refreshed", ""]
        for result, reasons, path in refreshed:
            lines.append(f"- {_who(result)} → {inline_code(path)}:")
            lines += [f"  - {cell(r)}" for r in reasons[:MAX_REASONS_SHOWN]]
            if len(reasons) > MAX_REASONS_SHOWN:
                lines.append(f"  - …and {len(reasons) - MAX_REASONS_SHOWN} more changes (see the card)")
            lines += [f"  - ⚠ {cell(b)}" for b in card.limit_breaches(result, policy)]
    if unchanged:
        lines += ["", "## Within the thresholds (card unchanged)", ""]
        lines += [f"- {_who(r)}" + "".join(f"; ⚠ {cell(b)}" for b in card.limit_breaches(r, policy)) for r in unchanged]
    if failed:
        lines += ["", "## Not audited", ""]
        lines += [f"- {_who(r)}: {cell(r.get('error'))}" for r in failed]
    problems = [(r, p) for r in [*(x[0] for x in refreshed), *unchanged] for p in (r.get("problems") or [])]
    if problems:
        lines += ["", "## Data problems", ""]
        lines += [f"- {_who(r)}: {cell(p)}" for r, p in problems]
    return "\n".join(lines) + "\n"


# --- the pull request (review step renderer) ----------------------------------------------------------------------


