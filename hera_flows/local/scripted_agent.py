"""A scripted "model" for the real agent CLIs: it decides what the builtin editor would, and says it as tool calls.

No LLM runs here, but the agent CLIs do (Claude Code, Codex). To run a pattern end to end with one of them, the
model's part is played by a stand-in server (hera_flows/local/standins/anthropic.py, openai_responses.py) whose
script is written when a conversation starts: :func:`plan` reads the workspace named in the prompt (the contract's
``.../summary.md`` path), runs the pattern's builtin editor on a private copy of the checkout, and turns the
difference into the calls a model would make — read each file, edit it (the whole content, old to new), write the
summary (and ``issue.json`` when the editor asked for an issue), then a final answer. The CLI executes those
calls with its own tools and permission checks in the real checkout; the builtin editor never touches it.

So the demo (``make demo AGENT=claude-code``) and the tests show the real CLI's behaviour on each pattern's real
change, with a PR the same as the builtin editor's, and without a model.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_flows.local.standins.anthropic import AnthropicStandIn, text, tool_results, tool_use
from hera_flows.local.standins.base import RecordedRequest, Reply
from hera_flows.local.standins.openai_responses import CustomToolCall, Message, ResponsesStandIn

_SUMMARY = re.compile(r"(/[^\s`'\"\\]+)/summary\.md")


@dataclass
class Plan:
    """What the model will do in one workspace: edited files (relative path -> (old, new); old None for a new
    file), the summary, and the issue it asks for instead of a change."""

    workspace: Path
    edits: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    summary: str = ""
    issue: str | None = None


def workspace_of(body: Any) -> Path | None:
    """The workspace folder the prompt names (its summary file's folder), from a request body."""
    found = _SUMMARY.search(json.dumps(body, ensure_ascii=False))
    return Path(found.group(1)) if found else None


def plan(workspace: Path, pattern: str, settings: Mapping[str, Any]) -> Plan:
    """Run ``pattern``'s builtin editor on a copy of ``workspace/repo`` and describe its change."""
    from hera_flows.steps.builtin_agent import CONTRACT, load_context
    from hera_flows.steps.contract import render_flags
    from hera_flows.steps.editors import editor_of, parse_with_settings, settings_of

    editor = editor_of(pattern)
    argv = [f"--pattern={pattern}", f"--workspace={workspace}",
            *render_flags(editor.SETTINGS, settings, where="the scripted model")]
    args, editor = parse_with_settings(CONTRACT, argv)
    context = load_context(workspace / "context.json", pattern)
    result = Plan(workspace)
    with tempfile.TemporaryDirectory(prefix="scripted-model-") as scratch:
        copy = Path(scratch) / "repo"
        # with its history: an editor may need it (the rollback editor's git revert); .git itself is never an edit
        shutil.copytree(workspace / "repo", copy, symlinks=True)
        copy_workspace = Path(scratch)
        shutil.copy(workspace / "context.json", copy_workspace / "context.json")
        result.summary = editor.builtin_edit(copy, context, settings_of(args, editor))
        issue = copy_workspace / "issue.json"
        if issue.exists():
            result.issue = issue.read_text(encoding="utf-8")
        for path in sorted(p for p in copy.rglob("*") if p.is_file() and ".git" not in p.relative_to(copy).parts):
            rel = path.relative_to(copy).as_posix()
            new = path.read_text(encoding="utf-8")
            original = workspace / "repo" / rel
            old = original.read_text(encoding="utf-8") if original.exists() else None
            if old != new:
                result.edits[rel] = (old, new)
    return result


# --- Claude Code: the Messages API ---------------------------------------------------------------------------

def claude_turns(p: Plan) -> list[list[dict[str, Any]]]:
    """One tool call per turn: Read then Edit per file (Claude Code edits only files it has read), the summary,
    the issue, and the final answer."""
    turns: list[list[dict[str, Any]]] = []
    for rel, (old, new) in p.edits.items():
        if old is not None:
            turns.append([tool_use("Read", {"file_path": rel})])
        turns.append([tool_use("Edit", {"file_path": rel, "old_string": old or "", "new_string": new})])
    if p.issue is not None:
        turns.append([tool_use("Edit", {"file_path": str(p.workspace / "issue.json"), "old_string": "",
                                        "new_string": p.issue})])
    turns.append([tool_use("Edit", {"file_path": str(p.workspace / "summary.md"), "old_string": "",
                                    "new_string": p.summary})])
    turns.append([text(p.summary.strip().splitlines()[0] if p.summary.strip() else "Done.")])
    return turns


class ScriptedClaude(AnthropicStandIn):
    """The Messages stand-in whose script is planned when a conversation starts (no tool result yet)."""

    def __init__(self, planner: Callable[[Path], Plan], **fields: Any) -> None:
        super().__init__(**fields)
        self.planner = planner
        self.plans: list[Plan] = []

    def respond(self, request: RecordedRequest) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == "/v1/messages" and not tool_results(body):
            workspace = workspace_of(body)
            if workspace is not None and (not self.plans or self.plans[-1].workspace != workspace):
                self.plans.append(self.planner(workspace))
                self.script = claude_turns(self.plans[-1])
        return super().respond(request)


# --- Codex: the Responses API --------------------------------------------------------------------------------

def patch_of(p: Plan) -> str:
    """One apply_patch for every file: whole-file hunks (every old line out, every new line in)."""
    lines = ["*** Begin Patch"]
    for rel, (old, new) in p.edits.items():
        if old is None:
            lines += [f"*** Add File: {rel}", *(f"+{line}" for line in new.splitlines())]
        else:
            lines += [f"*** Update File: {rel}", "@@", *(f"-{line}" for line in old.splitlines()),
                      *(f"+{line}" for line in new.splitlines())]
    for name, content in (("issue.json", p.issue), ("summary.md", p.summary)):
        if content is not None:
            lines += [f"*** Add File: {p.workspace / name}", *(f"+{line}" for line in content.splitlines())]
    return "\n".join([*lines, "*** End Patch", ""])


class ScriptedCodex(ResponsesStandIn):
    """The Responses stand-in whose script is planned when a conversation starts (turn 0)."""

    def __init__(self, planner: Callable[[Path], Plan], **fields: Any) -> None:
        super().__init__([], **fields)
        self.planner = planner
        self.plans: list[Plan] = []

    def respond(self, request: RecordedRequest) -> Reply:
        if request.path == "/v1/responses" and self.turn_of(request) == 0:
            workspace = workspace_of(request.body)
            if workspace is not None and (not self.plans or self.plans[-1].workspace != workspace):
                self.plans.append(self.planner(workspace))
                summary = self.plans[-1].summary.strip()
                self.script = [[CustomToolCall("apply_patch", patch_of(self.plans[-1]))],
                               [Message(summary.splitlines()[0] if summary else "Done.")]]
        return super().respond(request)
