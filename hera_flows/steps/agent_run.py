"""`hera-flows step agent-run --runtime=claude-code|codex ...`: a real coding-agent CLI in the agent container.

It honours the agent contract like the builtin editor does (hera_flows/steps/workspace.py lays it out): the CLI
works in ``<workspace>/repo`` with ``<workspace>/prompt.md`` as its prompt, and may write ``<workspace>/summary.md``
and ``<workspace>/issue.json``; everything else about the run is hera-flows' (hera_flows/steps/agent_runtimes.py):
the permission flags, the limits, an environment holding only the API key, and the record of what happened.

The record is ``<workspace>/agent/run.json`` (runtime, model, turns, duration, tokens, cost, denied tool calls and,
when the run did not succeed, ``failure``: one line saying why) and ``<workspace>/agent/transcript.jsonl`` (the
CLI's JSON events, redacted and bounded), which the pod's log also shows. A run that did not succeed still exits
0: publish reads the record, pushes nothing, and review says why on the open PR or issue and fails the workflow
with that line (nothing half-published). Only a step error (no API key, no CLI, no workspace) exits non-zero here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hera_flows.steps.agent_runtimes import (
    RUNTIMES,
    AgentOutcome,
    Limits,
    claude_code_env,
    codex_env,
    run_claude_code,
    run_codex,
)
from hera_flows.steps.common import StepError, log, secret
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.redact import redact

API_KEY_ENV = {"claude-code": "ANTHROPIC_API_KEY", "codex": "OPENAI_API_KEY"}
DEFAULT_CLI = {"claude-code": "claude", "codex": "codex"}
RECORD_DIR = "agent"
MAX_DENIALS_LISTED = 20

CONTRACT = Step(
    name="agent-run",
    entry="hera_flows.steps.agent_run:main",
    summary="run a named coding-agent CLI (claude-code, codex) headless in the agent container, with its limits",
    flags=(
        Flag("runtime", "which CLI", choices=RUNTIMES),
        Flag("workspace", "holds repo/ and prompt.md; receives summary.md, issue.json and agent/"),
        Flag("model", "the model name the CLI asks for"),
        Flag("allowed-paths", "globs the agent may edit (the pattern's allowed paths)", form="csv"),
        Flag("max-turns", "model round trips before the run is stopped", kind=int),
        Flag("timeout-seconds", "wall-clock limit of the CLI run", kind=int),
        Flag("max-budget-usd", "claude-code: the spend limit", kind=float, optional=True),
        Flag("base-url", "the API base URL of a gateway (unset: the provider's)", optional=True),
        Flag("allow-commands", "claude-code: read-only shell command prefixes the agent may run", form="csv",
             optional=True),
        Flag("cli", "the CLI's path (unset: claude or codex on PATH)", optional=True),
    ),
    outputs_flag=False,
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    workspace = Path(args.workspace)
    repo = workspace / "repo"
    if not repo.is_dir():
        raise StepError(f"{repo} does not exist: the prepare step must clone the repository first")
    try:
        prompt = (workspace / "prompt.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StepError(f"{workspace / 'prompt.md'} is not readable: {exc} (the prepare step writes it)") from None
    key_name = API_KEY_ENV[args.runtime]
    api_key = secret(key_name, required=False)
    if not api_key:
        raise StepError(f"{key_name} is not set: the agent container reads it from agent.api_key_secret (a Secret "
                        "key); create the Secret or point api_key_secret at yours")
    cli = args.cli or DEFAULT_CLI[args.runtime]
    if shutil.which(cli) is None:
        raise StepError(f"the {args.runtime} CLI {cli!r} is not on PATH: use the image of images/agent-"
                        f"{args.runtime}/ (agent.image) or set --cli")
    for planted in ("summary.md", "issue.json"):
        _remove(workspace / planted)  # only what this run writes counts
    limits = Limits(max_turns=args.max_turns, timeout_seconds=args.timeout_seconds,
                    max_budget_usd=args.max_budget_usd)
    home = Path(tempfile.mkdtemp(prefix="agent-home-"))  # on the container's private, writable /tmp
    outcome = run(args.runtime, repo, prompt, cli=cli, model=args.model, allowed_paths=args.allowed_paths,
                  limits=limits, api_key=api_key, base_url=args.base_url, home=home, workspace=workspace,
                  allow_commands=args.allow_commands or [])
    shutil.rmtree(home, ignore_errors=True)
    if outcome.summary.strip() and not (workspace / "summary.md").exists():
        # the CLI's final answer is the summary when the agent did not write one
        (workspace / "summary.md").write_text(outcome.summary.strip() + "\n", encoding="utf-8")
    record = record_of(outcome, model=args.model)
    write_record(workspace, record, outcome.transcript)
    print(outcome.transcript, flush=True)  # the pod's log keeps the whole bounded transcript too
    failure = record["failure"]
    done = f"did not succeed: {failure}" if failure else \
        f"finished in {record['turns']} turns, {record['duration_seconds']}s"
    log(f"agent-run: {args.runtime} ({args.model}) {done}; record in {workspace / RECORD_DIR}")
    return 0


def run(runtime: str, repo: Path, prompt: str, *, cli: str, model: str, allowed_paths: list[str], limits: Limits,
        api_key: str, base_url: str | None, home: Path, workspace: Path, allow_commands: list[str]) -> AgentOutcome:
    """One CLI run in the contract: edits in the allowed paths, the summary and issue files next to the checkout."""
    contract_files = [workspace / "summary.md", workspace / "issue.json"]
    if runtime == "claude-code":
        return run_claude_code(repo, prompt, cli=cli, model=model, allowed_paths=allowed_paths, limits=limits,
                               env=claude_code_env(home=home, api_key=api_key, base_url=base_url),
                               writable_files=contract_files, readable_files=[workspace / "context.json"],
                               allow_commands=allow_commands)
    return run_codex(repo, prompt, cli=cli, model=model, limits=limits, env=codex_env(home=home, api_key=api_key),
                     writable_roots=[workspace], base_url=base_url)


def record_of(outcome: AgentOutcome, *, model: str) -> dict[str, Any]:
    """What the PR says about the run, and why it failed when it did."""
    denied = [_denial(d) for d in outcome.denials]
    return {
        "runtime": outcome.runtime,
        "model": model,
        "turns": outcome.turns,
        "duration_seconds": round(outcome.duration_seconds, 1),
        "tokens": outcome.tokens,
        "cost_usd": outcome.cost_usd,
        "denied": denied[:MAX_DENIALS_LISTED],
        "denied_count": len(denied),
        "failure": outcome.failure(),
        "workflow": os.environ.get("HF_WORKFLOW_NAME", ""),
    }


def _denial(denial: dict[str, Any]) -> str:
    """A denied call in one short line: the tool and its target (a file or a command)."""
    tool = str(denial.get("tool_name") or "?")
    given = denial.get("tool_input")
    data: dict[str, Any] = given if isinstance(given, dict) else {}
    target = data.get("file_path") or data.get("command") or data.get("paths") or data.get("path") or ""
    return f"{tool} {redact(' '.join(str(target).split()))}"[:300].strip()


def write_record(workspace: Path, record: dict[str, Any], transcript: str) -> None:
    """``agent/run.json`` and ``agent/transcript.jsonl``, written fresh (whatever the agent planted there first)."""
    folder = workspace / RECORD_DIR
    _remove(folder)
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / "transcript.jsonl").write_text(transcript + ("\n" if transcript else ""), encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
