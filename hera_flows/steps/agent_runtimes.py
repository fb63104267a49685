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

Publish's allow-list stays the last gate (hera_flows/steps/publish.py): whatever the CLI allowed, only the run's own
files inside the allowed paths are pushed. The transcript (the CLI's stream-json events) is kept, bounded and with
secrets redacted, and :class:`AgentOutcome` says in one line why a run that did not succeed ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_flows.steps.redact import redact, redact_data

MAX_TRANSCRIPT_BYTES = 512 * 1024
CLAUDE_TOOLS = ("Read", "Edit")


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

    def failure(self) -> str | None:
        """One clear line when the run did not succeed, else None."""
        if self.timed_out:
            return f"{self.runtime}: stopped after the {self.duration_seconds:.0f}s timeout"
        if self.subtype == "error_max_turns":
            return f"{self.runtime}: stopped at the turn limit ({self.turns} turns) before finishing"
        if self.subtype.startswith("error_max_budget"):
            return f"{self.runtime}: stopped at the spend limit (${self.cost_usd or 0:.4f})"
        if not self.subtype:
            return f"{self.runtime}: exited {self.exit_code} without a result"
        if self.subtype != "success" or self.exit_code != 0:
            return f"{self.runtime}: ended with {self.subtype} (exit code {self.exit_code})"
        return None


def claude_code_settings(allowed_paths: Sequence[str]) -> dict[str, Any]:
    """Permission rules: read anything in the checkout, edit only the allowed paths (rules relative to it)."""
    # an allowed path ending in "/" means the folder's contents, as in the allow-list (steps/allowlist.py)
    edits = [f"Edit(./{path}**)" if path.endswith("/") else f"Edit(./{path})" for path in allowed_paths]
    rules = ["Read(./**)", *edits]
    return {"permissions": {"allow": rules, "deny": []}}


def claude_code_argv(cli: str, *, model: str, allowed_paths: Sequence[str], limits: Limits) -> list[str]:
    """The headless Claude Code command (the prompt goes to stdin)."""
    argv = [cli, "-p", "--bare", "--output-format", "stream-json", "--verbose",
            "--tools", ",".join(CLAUDE_TOOLS), "--permission-mode", "dontAsk",
            "--settings", json.dumps(claude_code_settings(allowed_paths), separators=(",", ":")),
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
                    limits: Limits, env: Mapping[str, str]) -> AgentOutcome:
    """Run Claude Code headless in ``repo``; never raises for what the agent did (the outcome says it)."""
    argv = claude_code_argv(cli, model=model, allowed_paths=allowed_paths, limits=limits)
    started = time.monotonic()
    try:
        done = subprocess.run(argv, input=prompt, cwd=repo, env=dict(env), capture_output=True, text=True,
                              timeout=limits.timeout_seconds, check=False)
        stdout, exit_code, timed_out = done.stdout, done.returncode, False
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        stdout = out.decode("utf-8", "replace") if isinstance(out, bytes) else out
        exit_code, timed_out = None, True
    outcome = AgentOutcome("claude-code", exit_code, duration_seconds=time.monotonic() - started,
                           timed_out=timed_out)
    secrets = [v for k, v in env.items() if "KEY" in k or "TOKEN" in k]
    events = redacted_events(stdout, secrets=secrets)
    outcome.transcript = bounded("\n".join(e if isinstance(e, str) else json.dumps(e, separators=(",", ":"))
                                           for e in events))
    for event in events:
        if isinstance(event, dict) and event.get("type") == "result":
            outcome.subtype = str(event.get("subtype") or "")
            outcome.summary = str(event.get("result") or "")
            outcome.turns = event.get("num_turns") if isinstance(event.get("num_turns"), int) else None
            cost = event.get("total_cost_usd")
            outcome.cost_usd = float(cost) if isinstance(cost, (int, float)) else None
            denials = event.get("permission_denials")
            outcome.denials = [d for d in denials if isinstance(d, dict)] if isinstance(denials, list) else []
    return outcome


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
