"""`hera-flows step fairness-smoke`: re-read the model cards the weekly refresh changed, before anyone merges it.

Runs after the review step opened or updated the PR. Inputs: ``files`` (the publish step's JSON
``{path: content}`` of the pushed files), ``summary`` (the agent's digest, which is the PR description) and
``context`` (the collect step's results, to map each card to its model). No network. For every changed card
under ``--model-cards-dir``:

- it is UTF-8 markdown with exactly one fairness section (start marker before end marker), and every table in
  the section has a separator row and the same number of cells in each row;
- the section's machine-readable record (``<!-- hera-flows:fairness-data {json} -->``) parses as a JSON object
  and round-trips: serialising the parsed record again gives the same line byte for byte (so next week's audit
  reads exactly these values, and no value can close the comment) — or the same line with its ``\\uXXXX`` escapes
  written as the characters, when nothing in it can open or close a comment (Claude Code's Edit tool decodes
  ``\\uXXXX`` in what the model writes, so an agent cannot put the escaped form into a file);
- the record is this run's (its ``date`` and ``week``) for the version the audit saw.

And across cards: the cards the digest names are exactly the changed cards, each maps to an audited model, and
the policy file was not changed by the refresh. A card whose content is not in ``files`` (the output is capped
at 64 KiB) is listed as not checked; it does not fail the run by itself.

Outputs ``result`` (passed | failed) and a markdown ``report``; the shared ``report`` step comments it on the PR
and fails the run when the result is ``failed``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hera_flows.steps.common import StepError, log, parse_json
from hera_flows.steps.contract import Flag, Step

MAX_PROBLEMS_PER_CARD = 10


def _decoded_form(line: str, data: dict[str, Any]) -> bool:
    """The canonical record with its escapes decoded, and nothing in it that could open or close the comment."""
    from hera_flows.steps.fairness import card

    body = line[len(card.DATA_PREFIX):-len(card.DATA_SUFFIX)]
    decoded = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return body == decoded and not any(token in body for token in ("-->", "--!>", "<!--", "\n", "\r"))


def _cells(row: str) -> int:
    """Cells of a markdown table row (``\\|`` is an escaped pipe, not a separator)."""
    body = re.sub(r"\\.", "x", row.strip())
    return body.strip("|").count("|") + 1


def check_card(path: str, text: str, *, date: str, week: str, version: str | None) -> list[str]:
    """Problems of one refreshed card (empty when it is valid)."""
    from hera_flows.steps.fairness import card

    problems: list[str] = []
    if text.count(card.START) != 1 or text.count(card.END) != 1:
        return [f"expected exactly one fairness section, found {text.count(card.START)} start and "
                f"{text.count(card.END)} end marker(s)"]
    begin, end = text.index(card.START), text.index(card.END)
    if begin > end:
        return ["the fairness section's end marker comes before its start marker"]
    section = text[begin:end].splitlines()

    table: list[str] = []
    for line in [*section, ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            header = _cells(table[0])
            if len(table) < 2 or not re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", table[1].strip()):
                problems.append(f"a table ({table[0][:60]!r}) has no separator row")
            bad = [row for row in table if _cells(row) != header]
            if bad:
                problems.append(f"a table row has {_cells(bad[0])} cells, its header {header}: {bad[0][:80]!r}")
            table = []

    lines = [line for line in section if line.startswith(card.DATA_PREFIX)]
    if len(lines) != 1:
        return [*problems, f"expected one machine-readable record in the section, found {len(lines)}"]
    line = lines[0]
    if not line.endswith(card.DATA_SUFFIX):
        return [*problems, "the machine-readable record is not closed on its line"]
    try:
        data = json.loads(line[len(card.DATA_PREFIX):-len(card.DATA_SUFFIX)])
    except json.JSONDecodeError as exc:
        return [*problems, f"the machine-readable record is not valid JSON ({exc.msg} at character {exc.pos})"]
    if not isinstance(data, dict):
        return [*problems, "the machine-readable record is not a JSON object"]
    if card.data_line(data) != line and not _decoded_form(line, data):
        problems.append("the machine-readable record does not round-trip (re-serialised it differs)")
    if card.previous_record(text) != data:
        problems.append("next week's audit would not read this record back")
    missing = [k for k in ("date", "week", "version", "attributes") if k not in data]
    if missing:
        problems.append(f"the record lacks {', '.join(missing)}")
    if not isinstance(data.get("attributes", {}), dict):
        problems.append("the record's attributes are not an object")
    if data.get("date") != date or data.get("week") != week:
        problems.append(f"the record is of {data.get('date')} (week {data.get('week')}), not of this run's "
                        f"{date} (week {week})")
    if version is not None and str(data.get("version")) != str(version):
        problems.append(f"the record is of version {data.get('version')}, the audit saw version {version}")
    return problems[:MAX_PROBLEMS_PER_CARD]


def digest_cards(summary: str, cards_dir: str, policy_file: str) -> set[str]:
    """The card paths the digest names (as inline code), the policy file excepted."""
    pattern = re.compile(r"`+ ?(" + re.escape(cards_dir) + r"/[^`\s]+\.md) ?`+")
    return {path for path in pattern.findall(summary) if path != policy_file}


def check(files: dict[str, Any], summary: str, context: dict[str, Any], *, cards_dir: str,
          policy_file: str) -> tuple[str, str]:
    """(result, markdown report) for the refresh."""
    from hera_flows.steps.markdown import inline_code
    from hera_flows.steps.model_cards import card_filename

    date, week = str(context.get("date") or ""), str(context.get("week") or "")
    results = [r for r in context.get("results") or [] if isinstance(r, dict) and r.get("model")]
    by_path: dict[str, dict[str, Any]] = {}
    for item in results:
        try:
            by_path[f"{cards_dir}/{card_filename(str(item['model']))}"] = item
        except StepError:
            continue
    from hera_flows.steps.fairness.collect import digest_path

    digest_file = digest_path(cards_dir, week)
    # cards lie directly in cards_dir; the week's digest file (a digest too long for the description) is no card
    changed = {path: text for path, text in files.items()
               if path.startswith(cards_dir + "/") and path.endswith(".md") and path != policy_file
               and "/" not in path[len(cards_dir) + 1:]}
    digest_text = files.get(digest_file)
    named = digest_cards(summary, cards_dir, policy_file) - {digest_file}
    if digest_file in files:
        named |= digest_cards(digest_text or "", cards_dir, policy_file) - {digest_file}

    lines = ["### Model-card check", ""]
    failed = False
    general: list[str] = []
    if policy_file in files:
        general.append(f"the refresh changed the policy file {inline_code(policy_file)}; it must only change cards")
    if not changed:
        general.append(f"no card under {inline_code(cards_dir + '/')} was changed: nothing to check")
    digest_unread = digest_file in files and not digest_text
    if digest_unread:
        lines += [f"- ➖ the digest file {inline_code(digest_file)} is not in the files output (beyond its budget): "
                  "which cards it names is not checked", ""]
    for path in sorted(set(changed) - named) if not digest_unread else []:
        general.append(f"{inline_code(path)} changed but the digest does not name it")
    for path in sorted(named - set(changed)):
        general.append(f"the digest names {inline_code(path)} but the PR does not change it")
    failed = bool(general)
    not_checked = 0
    for path, text in sorted(changed.items()):
        result = by_path.get(path)
        who = f"{inline_code(result['model'])} v{result.get('version')}" if result else "no audited model"
        if result is None:
            failed = True
            lines.append(f"- ❌ {inline_code(path)}: maps to no model audited in this run")
            continue
        if not isinstance(text, str) or not text:
            not_checked += 1
            lines.append(f"- ➖ {inline_code(path)} ({who}): not checked — its content is not in the files output "
                         "(deleted, binary, or beyond the 64 KiB budget)")
            continue
        problems = check_card(path, text, date=date, week=week, version=result.get("version"))
        failed = failed or bool(problems)
        lines.append(f"- {'❌' if problems else '✅'} {inline_code(path)} ({who}): "
                     + ("; ".join(problems) if problems else "parses, its record round-trips, the digest names it"))
    if general:
        lines += ["", *(f"- ❌ {problem}" for problem in general)]
    outcome = "failed" if failed else "passed"
    checked = len(changed) - not_checked
    lines += ["", f"{checked} card(s) checked, {not_checked} not checked. Result: **{outcome}**"]
    return outcome, "\n".join(lines) + "\n"


CONTRACT = Step(
    name="fairness-smoke",
    entry="hera_flows.steps.fairness.smoke:main",
    summary="re-read the refreshed cards: each one the digest names, within the policy file's format",
    flags=(Flag("model-cards-dir", "folder of the model cards"),
           Flag("policy-file", "the fairness policy (never changed by the refresh)")),
    inputs=("files", "summary", "context"),
    outputs=("result", "report"),
)
param = CONTRACT.param


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    files = parse_json(param("files") or "{}", "the files parameter")
    context = parse_json(param("context", required=True), "the context parameter")
    result, report = check(files, param("summary"), context, cards_dir=args.model_cards_dir.rstrip("/"),
                           policy_file=args.policy_file)
    CONTRACT.write(args.outputs, result=result, report=report)
    log(f"fairness-smoke: {result}")
    return 0
