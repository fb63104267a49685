"""`hera-flows step agent-builtin --pattern=ID ...`: the deterministic, LLM-free agent.

It honours the same contract as an external coding agent: it reads ``<workspace>/context.json``, edits files in
``<workspace>/repo`` and writes ``<workspace>/summary.md``; it needs no network and no token. Each pattern's editor
lives in its own folder (``hera_flows/steps/<id>/editor.py``, named by the pattern's record in
hera_flows/catalog.py) and declares the settings it reads as flags (``SETTINGS``); the same flags reach publish
(which asks the editor for the run's own files) and prepare (which writes them into the prompt).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError, log
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.editors import parse_with_settings, settings_of

PATTERN_FLAG = Flag("pattern", "whose editor runs (a pattern id: promotion, drift, triage, fairness)")
CONTRACT = Step(
    name="agent-builtin",
    entry="hera_flows.steps.builtin_agent:main",
    summary="the deterministic editor of a pattern, in the agent container",
    flags=(PATTERN_FLAG, Flag("workspace", "holds repo/ and context.json; receives summary.md")),
    outputs_flag=False,
)


def main(argv: list[str]) -> int:
    args, editor = parse_with_settings(CONTRACT, argv)
    workspace = Path(args.workspace)
    repo = workspace / "repo"
    if not repo.is_dir():
        raise StepError(f"{repo} does not exist: the prepare step must clone the repository first")
    context = load_context(workspace / "context.json", args.pattern)
    summary = editor.builtin_edit(repo, context, settings_of(args, editor))
    (workspace / "summary.md").write_bytes(summary.encode("utf-8"))
    log(f"agent-builtin: {args.pattern} edits done; summary in {workspace / 'summary.md'}")
    return 0


def load_context(path: Path, pattern: str) -> dict[str, Any]:
    """The context JSON written by the prepare step; it must be an object for this pattern."""
    from hera_flows.catalog import pattern as record_of

    try:
        context = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"{path} does not exist: the prepare step writes it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StepError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(context, dict):
        raise StepError(f"{path} must hold a JSON object")
    record = record_of(pattern)
    if context.get("pattern", record.config_key) not in (record.id, record.config_key):
        raise StepError(f"{path} is for pattern {context.get('pattern')!r}, not {pattern!r}")
    return context
