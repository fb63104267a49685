"""Named coding-agent runtimes: how a real agent CLI runs headless in the agent container, and how its run ends.

For each runtime hera-flows knows the headless invocation, the permission flags that confine it to reading the
checkout and editing the pattern's allowed paths, the credentials it reads, and its limits. Claude Code
(``@anthropic-ai/claude-code``) runs as::

    claude -p --bare --output-format stream-json --verbose --tools Read,Edit --permission-mode dontAsk
           --settings '{"permissions": {"allow": ["Read(./**)", "Edit(./inference/**)", ...]}}'
           --strict-mcp-config --no-session-persistence --model M --max-turns N [--max-budget-usd B]

with the prompt on stdin, the checkout as its working directory, and an environment holding only ``PATH``, a
``HOME`` on the writable volume, the API key and (for a gateway) ``ANTHROPIC_BASE_URL``. Why each flag:

- ``--bare`` skips hooks, plugins, CLAUDE.md discovery and keychain reads: a checkout cannot configure its agent;
- ``--tools Read,Edit`` is the whole tool set: no shell, no web fetch or search, no sub-agents (a tool that is not
  offered cannot be called; the CLI answers "No such tool available");
- ``--permission-mode dontAsk`` with allow rules: a call not pre-approved is denied, so reads stay inside the
  checkout and edits inside the allowed paths (``.git/``, CI files, anything outside: "Permission ... denied");
- ``--strict-mcp-config`` with no config: no MCP servers; ``--no-session-persistence``: nothing kept in HOME;
- ``--max-turns`` / ``--max-budget-usd`` and the wall-clock ``timeout_seconds`` bound the run.

Codex (``@openai/codex``) runs as::

    codex exec --json --ephemeral --skip-git-repo-check --ignore-rules --sandbox workspace-write --model M
               --cd <checkout> -c approval_policy="never" -c model_provider="hera-flows"
               -c model_providers.hera-flows={...} -c web_search="disabled" -c project_doc_max_bytes=0
               -c shell_environment_policy.inherit="core" -c sandbox_workspace_write.network_access=false
               -c sandbox_workspace_write.writable_roots=[<workspace>] (and /tmp, $TMPDIR excluded) -

Codex reads files only through its shell, so the shell stays, inside Codex's own sandbox: the whole file system
read-only except the checkout and the workspace folder (its ``.git`` stays read-only), no network, approval
``never`` (an escalation request is refused), no ``AGENTS.md`` read from the checkout (``project_doc_max_bytes=0``:
a repository cannot instruct its agent), and a shell environment without the API key
(``inherit="core"``: neither ``env`` nor ``/proc/*/environ`` in the sandbox shows it). Codex has no turn or
budget flag: agent-run counts its tool calls and stops it at ``max_turns``.

Publish's allow-list stays the last gate (hera_flows/steps/publish.py): whatever the CLI allowed, only the run's own
files inside the allowed paths are pushed. The transcript (the CLI's stream-json events) is kept, bounded and with
secrets redacted, and :class:`AgentOutcome` says in one line why a run that did not succeed ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_flows.steps.redact import redact, redact_data

MAX_TRANSCRIPT_BYTES = 512 * 1024
CLAUDE_TOOLS = ("Read", "Edit")
RUNTIMES = ("claude-code", "codex")
MAX_STDERR_BYTES = 16 * 1024


@dataclass(frozen=True)
class Limits:
    """When an agent run is stopped: turns (model round trips), wall-clock seconds, and spend where supported."""

    max_turns: int = 30
    timeout_seconds: int = 900
    max_budget_usd: float | None = None


@dataclass
class AgentOutcome:
    """How an agent run ended, from the CLI's final ``result`` event (or its absence)."""

    runtime: str
    exit_code: int | None
    subtype: str = ""  # success, error_max_turns, error_max_budget_usd, error_during_execution, ...
    summary: str = ""
    turns: int | None = None
    cost_usd: float | None = None
    duration_seconds: float = 0.0
    denials: list[dict[str, Any]] = field(default_factory=list)
    timed_out: bool = False
    transcript: str = ""
    tokens: int | None = None
    error: str = ""
    stderr: str = ""

    def failure(self) -> str | None:
        """One clear line when the run did not succeed, else None."""
        if self.timed_out:
            return f"{self.runtime}: stopped after the {self.duration_seconds:.0f}s timeout"
        if self.subtype == "error_max_turns":
            return f"{self.runtime}: stopped at the turn limit ({self.turns} turns) before finishing"
        if self.subtype.startswith("error_max_budget"):
            return f"{self.runtime}: stopped at the spend limit (${self.cost_usd or 0:.4f})"
        if not self.subtype:
            last = self.stderr.strip().splitlines()[-1:] if self.stderr.strip() else []
            return f"{self.runtime}: exited {self.exit_code} without a result" + (f" ({last[0][:300]})" if last else "")
        if self.subtype != "success" or self.exit_code != 0:
            why = f": {self.error}" if self.error else ""
            return f"{self.runtime}: ended with {self.subtype} (exit code {self.exit_code}){why}"
        return None


def claude_code_settings(allowed_paths: Sequence[str], *, writable_files: Sequence[Path] = (),
                         readable_files: Sequence[Path] = (), allow_commands: Sequence[str] = ()) -> dict[str, Any]:
    """Permission rules: read anything in the checkout, edit only the allowed paths (rules relative to it), plus the
    workspace files the contract names (absolute: ``//`` starts an absolute path in a rule) and, when the user opted
    in, the read-only command prefixes (``Bash(git log:*)``)."""
    # an allowed path ending in "/" means the folder's contents, as in the allow-list (steps/allowlist.py)
    edits = [f"Edit(./{path}**)" if path.endswith("/") else f"Edit(./{path})" for path in allowed_paths]
    files = [f"Edit(/{path})" for path in writable_files] + [f"Read(/{path})" for path in readable_files]
    commands = [f"Bash({command}:*)" for command in allow_commands]
    rules = ["Read(./**)", *edits, *files, *commands]
    return {"permissions": {"allow": rules, "deny": []}}


def claude_code_argv(cli: str, *, model: str, allowed_paths: Sequence[str], limits: Limits,
                     writable_files: Sequence[Path] = (), readable_files: Sequence[Path] = (),
                     allow_commands: Sequence[str] = ()) -> list[str]:
    """The headless Claude Code command (the prompt goes to stdin)."""
    tools = [*CLAUDE_TOOLS, "Bash"] if allow_commands else list(CLAUDE_TOOLS)
    settings = claude_code_settings(allowed_paths, writable_files=writable_files, readable_files=readable_files,
                                    allow_commands=allow_commands)
    argv = [cli, "-p", "--bare", "--output-format", "stream-json", "--verbose",
            "--tools", ",".join(tools), "--permission-mode", "dontAsk",
            "--settings", json.dumps(settings, separators=(",", ":")),
            "--strict-mcp-config", "--no-session-persistence",
            "--model", model, "--max-turns", str(limits.max_turns)]
    if limits.max_budget_usd is not None:
        argv += ["--max-budget-usd", f"{limits.max_budget_usd:g}"]
    return argv


def claude_code_env(*, home: Path, api_key: str, base_url: str | None = None) -> dict[str, str]:
    """The CLI's whole environment: no pod variables (tokens, service hosts) leak into the agent."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(home),
           "ANTHROPIC_API_KEY": api_key, "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    if base_url:
        env["ANTHROPIC_BASE_URL"] = base_url
    return env


def run_claude_code(repo: Path, prompt: str, *, cli: str, model: str, allowed_paths: Sequence[str],
                    limits: Limits, env: Mapping[str, str], writable_files: Sequence[Path] = (),
                    readable_files: Sequence[Path] = (), allow_commands: Sequence[str] = ()) -> AgentOutcome:
    """Run Claude Code headless in ``repo``; never raises for what the agent did (the outcome says it)."""
    argv = claude_code_argv(cli, model=model, allowed_paths=allowed_paths, limits=limits,
                            writable_files=writable_files, readable_files=readable_files,
                            allow_commands=allow_commands)
    run = stream(argv, prompt=prompt, cwd=repo, env=env, timeout=limits.timeout_seconds)
    outcome = AgentOutcome("claude-code", run.exit_code, duration_seconds=run.seconds, timed_out=run.timed_out,
                           stderr=redact(run.stderr, values=secret_values(env)))
    events = redacted_events(run.stdout, secrets=secret_values(env))
    outcome.transcript = transcript_of(events)
    for event in events:
        if isinstance(event, dict) and event.get("type") == "result":
            outcome.subtype = str(event.get("subtype") or "")
            outcome.summary = str(event.get("result") or "")
            outcome.turns = event.get("num_turns") if isinstance(event.get("num_turns"), int) else None
            cost = event.get("total_cost_usd")
            outcome.cost_usd = float(cost) if isinstance(cost, (int, float)) else None
            usage = event.get("usage")
            if isinstance(usage, dict):
                outcome.tokens = _tokens(usage, ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                                 "cache_creation_input_tokens"))
            denials = event.get("permission_denials")
            outcome.denials = [d for d in denials if isinstance(d, dict)] if isinstance(denials, list) else []
    return outcome


def codex_provider(base_url: str | None) -> str:
    """The model provider hera-flows defines for Codex (TOML inline table): the Responses API at ``base_url``."""
    url = (base_url or "https://api.openai.com/v1").rstrip("/")
    return f'{{name="hera-flows", base_url={json.dumps(url)}, env_key="OPENAI_API_KEY", wire_api="responses"}}'


def codex_argv(cli: str, *, model: str, repo: Path, writable_roots: Sequence[Path] = (),
               base_url: str | None = None) -> list[str]:
    """The headless Codex command (the prompt goes to stdin: the final ``-``)."""
    overrides = [
        'approval_policy="never"',
        'model_provider="hera-flows"',
        f"model_providers.hera-flows={codex_provider(base_url)}",
        'web_search="disabled"',
        "project_doc_max_bytes=0",  # no AGENTS.md from the checkout: a repository cannot instruct its agent
        'shell_environment_policy.inherit="core"',
        "sandbox_workspace_write.network_access=false",
        f"sandbox_workspace_write.writable_roots={json.dumps([str(p) for p in writable_roots])}",
        "sandbox_workspace_write.exclude_slash_tmp=true",
        "sandbox_workspace_write.exclude_tmpdir_env_var=true",
    ]
    return [cli, "exec", "--json", "--ephemeral", "--skip-git-repo-check", "--ignore-rules",
            "--sandbox", "workspace-write", "--model", model, "--cd", str(repo),
            *[arg for override in overrides for arg in ("-c", override)], "-"]


def codex_env(*, home: Path, api_key: str) -> dict[str, str]:
    """Codex's whole environment: its own CODEX_HOME under the writable HOME, the key, nothing from the pod."""
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(home),
            "CODEX_HOME": str(home / ".codex"), "OPENAI_API_KEY": api_key, "LANG": "C.UTF-8"}


CODEX_TOOL_ITEMS = ("command_execution", "file_change", "mcp_tool_call", "web_search")


def run_codex(repo: Path, prompt: str, *, cli: str, model: str, limits: Limits, env: Mapping[str, str],
              writable_roots: Sequence[Path] = (), base_url: str | None = None) -> AgentOutcome:
    """Run Codex headless in ``repo``, stopping it at ``limits.max_turns`` tool calls; never raises for what the
    agent did (the outcome says it)."""
    Path(env.get("CODEX_HOME") or Path(env["HOME"]) / ".codex").mkdir(parents=True, exist_ok=True)
    calls = 0

    def over_the_limit(line: str) -> bool:
        nonlocal calls
        if '"item.completed"' not in line:
            return False
        try:
            event = json.loads(line)
        except ValueError:
            return False
        if isinstance(event, dict) and (event.get("item") or {}).get("type") in CODEX_TOOL_ITEMS:
            calls += 1
        return calls >= limits.max_turns

    argv = codex_argv(cli, model=model, repo=repo, writable_roots=writable_roots, base_url=base_url)
    run = stream(argv, prompt=prompt, cwd=repo, env=env, timeout=limits.timeout_seconds, stop=over_the_limit)
    outcome = AgentOutcome("codex", run.exit_code, duration_seconds=run.seconds, timed_out=run.timed_out,
                           stderr=redact(run.stderr, values=secret_values(env)))
    events = redacted_events(run.stdout, secrets=secret_values(env))
    outcome.transcript = transcript_of(events)
    errors: list[str] = []
    turns = 0
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        item = event["item"] if isinstance(event.get("item"), dict) else {}
        if kind == "item.completed":
            if item.get("type") == "agent_message":
                outcome.summary = str(item.get("text") or "")
            if item.get("type") in CODEX_TOOL_ITEMS:
                turns += 1
                if item.get("status") in ("failed", "declined"):
                    outcome.denials.append({"tool_name": item.get("type"), "tool_input": _codex_input(item)})
        elif kind == "turn.completed":
            outcome.subtype = "success"
            usage = event.get("usage")
            if isinstance(usage, dict):
                outcome.tokens = _tokens(usage, ("input_tokens", "output_tokens"))
        elif kind in ("turn.failed", "error"):
            error = event["error"] if isinstance(event.get("error"), dict) else event
            errors.append(str(error.get("message") or kind))
    outcome.turns = turns + (1 if outcome.summary else 0)
    if run.stopped:
        outcome.subtype = "error_max_turns"
    elif errors and outcome.subtype != "success":
        outcome.subtype = "error_during_execution"
        outcome.error = errors[-1][:500]
    return outcome


def _codex_input(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("type") == "command_execution":
        return {"command": item.get("command")}
    if item.get("type") == "file_change":
        return {"paths": [c.get("path") for c in item.get("changes", []) if isinstance(c, dict)]}
    return {}


def _tokens(usage: Mapping[str, Any], names: Sequence[str]) -> int | None:
    numbers = [usage[n] for n in names if isinstance(usage.get(n), int)]
    return sum(numbers) if numbers else None


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The values a transcript must never show: every key or token the CLI's environment holds."""
    return [v for k, v in env.items() if "KEY" in k or "TOKEN" in k]


def transcript_of(events: Sequence[Any]) -> str:
    return bounded("\n".join(e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in events))


@dataclass
class _Run:
    stdout: str
    stderr: str
    exit_code: int | None
    seconds: float
    timed_out: bool = False
    stopped: bool = False


def stream(argv: Sequence[str], *, prompt: str, cwd: Path, env: Mapping[str, str], timeout: float,
           stop: Callable[[str], bool] | None = None) -> _Run:
    """Run a CLI with ``prompt`` on stdin and its output read line by line: killed (with every process it started)
    at the wall-clock ``timeout`` or as soon as ``stop`` says so for a line."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=err, text=True, encoding="utf-8", errors="replace",
                                   start_new_session=True)
        lines: list[str] = []
        stopped = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if stop is not None and not stopped.is_set() and stop(line):
                    stopped.set()
                    _kill(process)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert process.stdin is not None
            process.stdin.write(prompt)
            process.stdin.close()
        except BrokenPipeError:
            pass
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
            process.wait()
        reader.join(timeout=10)
        err.seek(0)
        stderr = err.read(MAX_STDERR_BYTES).decode("utf-8", "replace")
    exit_code = None if timed_out or stopped.is_set() else process.returncode
    return _Run("\n".join(lines), stderr, exit_code, time.monotonic() - started, timed_out, stopped.is_set())


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def redacted_events(stdout: str, *, secrets: Sequence[str]) -> list[Any]:
    """The CLI's output lines, each parsed once: a JSON event (an object) with secrets redacted inside it (so it
    stays JSON), or the line's redacted text otherwise."""
    events: list[Any] = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        events.append(redact_data(event, values=secrets) if isinstance(event, dict) else redact(line, values=secrets))
    return events


def bounded(text: str, limit: int = MAX_TRANSCRIPT_BYTES) -> str:
    """The transcript's first and last parts when it is longer than ``limit`` bytes, with what was left out."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    half = limit // 2
    head = data[:half].decode("utf-8", "ignore")
    tail = data[-half:].decode("utf-8", "ignore")
    return f"{head}\n... ({len(data) - 2 * half} bytes of the transcript left out) ...\n{tail}"
