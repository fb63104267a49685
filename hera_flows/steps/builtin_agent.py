"""`hera-flows step agent-builtin --pattern=NAME`: the deterministic, LLM-free agent.

It honours the same contract as an external coding agent: it reads ``<workspace>/context.json``, edits files in
``<workspace>/repo`` and writes ``<workspace>/summary.md``; it needs no network and no token. Each pattern has
its own editor; the editor parses its own flags, so adding a pattern is one line in ``EDITORS``.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError, log

# pattern -> "module:function"; the function takes (repo: Path, context: dict, argv: list[str]) and returns the
# summary markdown. Imported lazily: a run loads only its own editor.
EDITORS: dict[str, str] = {
    "promotion": "hera_flows.steps.agents.promotion:builtin_edit",
    "drift": "hera_flows.steps.agents.drift:builtin_edit",
    "fairness": "hera_flows.steps.agents.fairness:builtin_edit",
    "failure_triage": "hera_flows.steps.agents.failure_triage:builtin_edit",
}
# pattern -> "module:function" taking (pristine checkout: Path, context: dict, argv: list[str]) and returning the
# repository paths one run may change (publish narrows the allow-list to them, whatever agent runs). It reads the
# same flags as the pattern's editor.
WRITABLE: dict[str, str] = {
    "promotion": "hera_flows.steps.agents.promotion:writable_paths",
    "drift": "hera_flows.steps.agents.drift:writable_paths",
    "fairness": "hera_flows.steps.agents.fairness:writable_paths",
    "failure_triage": "hera_flows.steps.agents.failure_triage:writable_paths",
}


def writable_paths_function(pattern: str) -> Any:
    """The pattern's ``writable_paths`` (see ``WRITABLE``); StepError for an unknown pattern."""
    if pattern not in WRITABLE:
        raise StepError(f"no writable-paths rule for pattern {pattern!r} (known: {', '.join(sorted(WRITABLE))})")
    module_name, function_name = WRITABLE[pattern].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hera-flows step agent-builtin", description=__doc__, allow_abbrev=False)
    parser.add_argument("--pattern", required=True, help="which editor runs: " + ", ".join(sorted(EDITORS)))
    parser.add_argument("--workspace", default="/workspace", help="holds repo/, context.json; receives summary.md")
    args, editor_argv = parser.parse_known_args(argv)

    if args.pattern not in EDITORS:
        known = ", ".join(sorted(EDITORS))
        raise StepError(f"the builtin agent has no editor for pattern {args.pattern!r} (known: {known})")
    workspace = Path(args.workspace)
    repo = workspace / "repo"
    if not repo.is_dir():
        raise StepError(f"{repo} does not exist: the prepare step must clone the repository first")
    context = load_context(workspace / "context.json", args.pattern)

    module_name, function_name = EDITORS[args.pattern].split(":")
    editor = getattr(importlib.import_module(module_name), function_name)
    summary = editor(repo, context, editor_argv)
    (workspace / "summary.md").write_bytes(summary.encode("utf-8"))
    log(f"agent-builtin: {args.pattern} edits done; summary in {workspace / 'summary.md'}")
    return 0


def load_context(path: Path, pattern: str) -> dict[str, Any]:
    """The context JSON written by the prepare step; it must be an object for this pattern."""
    try:
        context = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"{path} does not exist: the prepare step writes it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StepError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(context, dict):
        raise StepError(f"{path} must hold a JSON object")
    if context.get("pattern", pattern) != pattern:
        raise StepError(f"{path} is for pattern {context.get('pattern')!r}, not {pattern!r}")
    return context
