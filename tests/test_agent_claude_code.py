"""The real Claude Code CLI, headless with hera-flows' flags, against a scripted Messages API stand-in (issue 12).

The model is the only thing not real here (hera_flows/local/standins/anthropic.py replays a script); the CLI's tool
set, permission checks, limits and file edits are its own. Each hostile scenario names the guard that stops it:
removing the guard (a tool added to CLAUDE_TOOLS, the dontAsk mode, an allow rule, the turn limit) fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hera_flows.local.standins.anthropic import AnthropicStandIn, text, tool_use
from hera_flows.steps.agent_runtimes import (
    AgentOutcome,
    Limits,
    bounded,
    claude_code_argv,
    claude_code_env,
    claude_code_settings,
    run_claude_code,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CLI = ROOT / ".agents" / "node_modules" / ".bin" / "claude"
ALLOWED = ["inference/**", "model-cards/**"]
MANIFEST = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nspec:\n  storageUri: s3://models/6\n"


@pytest.fixture()
def cli() -> str:
    if not CLI.exists():
        pytest.skip("the Claude Code CLI is not installed: run `make agents` (make test and CI do)")
    return str(CLI)


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "inference").mkdir(parents=True)
    (repo / "inference" / "fraud.yaml").write_text(MANIFEST)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    return repo


@pytest.fixture()
def model() -> Iterator[AnthropicStandIn]:
    api = AnthropicStandIn().start()
    yield api
    api.stop()


def run(cli: str, api: AnthropicStandIn, repo: Path, script: list[list[dict]], **limits: object) -> AgentOutcome:
    api.script = script
    home = repo.parent / "home"
    home.mkdir(exist_ok=True)
    env = claude_code_env(home=home, api_key=api.api_key, base_url=api.url)
    return run_claude_code(repo, "Promote fraud v7.", cli=cli, model="claude-sonnet-4-5", allowed_paths=ALLOWED,
                           limits=Limits(**limits), env=env)  # type: ignore[arg-type]


def test_the_cli_reads_and_edits_an_allowed_file(cli: str, model: AnthropicStandIn, checkout: Path) -> None:
    manifest = checkout / "inference" / "fraud.yaml"
    outcome = run(cli, model, checkout, [
        [tool_use("Read", {"file_path": str(manifest)})],
        [tool_use("Edit", {"file_path": str(manifest), "old_string": "s3://models/6", "new_string": "s3://models/7"})],
        [text("Pointed fraud at s3://models/7.")],
    ])
    assert outcome.failure() is None, outcome
    assert "s3://models/7" in manifest.read_text()
    assert outcome.summary == "Pointed fraud at s3://models/7." and outcome.turns == 3 and not outcome.denials
    assert model.offered_tools() == {"Read", "Edit"}  # no shell, no web, no sub-agents were even offered
    events = [json.loads(line) for line in outcome.transcript.splitlines() if line.strip()]
    assert events[-1]["type"] == "result" and any(e.get("type") == "assistant" for e in events)
    assert model.api_key not in outcome.transcript


def test_a_shell_command_is_not_a_tool_it_has(cli: str, model: AnthropicStandIn, checkout: Path) -> None:
    marker = checkout.parent / "pwned"
    outcome = run(cli, model, checkout, [[tool_use("Bash", {"command": f"touch {marker}"})], [text("ok")]])
    assert not marker.exists()
    assert "No such tool available: Bash" in str(model.last_results()[-1]["content"])  # guard: --tools Read,Edit
    assert outcome.failure() is None


@pytest.mark.parametrize(("target", "why"), [
    ("../outside.txt", "outside the checkout"),
    (".github/workflows/ci.yml", "CI configuration"),
    (".git/config", "git configuration"),
    ("README.md", "outside the allowed paths"),
])
def test_edits_outside_the_allowed_paths_are_denied(cli: str, model: AnthropicStandIn, checkout: Path,
                                                    target: str, why: str) -> None:
    path = (checkout / target).resolve()
    before = path.read_text() if path.exists() else None
    # an existing file is read first (the CLI refuses to edit a file it has not read, which is not our guard)
    read = [[tool_use("Read", {"file_path": str(path)})]] if before is not None else []
    outcome = run(cli, model, checkout, [
        *read,
        [tool_use("Edit", {"file_path": str(path), "old_string": "" if before is None else before,
                           "new_string": "pwned\n"})],
        [text("done")],
    ])
    assert (path.read_text() if path.exists() else None) == before, why
    assert [d["tool_input"]["file_path"] for d in outcome.denials] == [str(path)], why  # guard: dontAsk + rules


def test_reading_outside_the_checkout_is_denied(cli: str, model: AnthropicStandIn, checkout: Path) -> None:
    secret = checkout.parent / "credentials"
    secret.write_text("sk-ant-real-key\n")
    outcome = run(cli, model, checkout, [[tool_use("Read", {"file_path": str(secret)})], [text("done")]])
    assert [d["tool_name"] for d in outcome.denials] == ["Read"]
    assert "sk-ant-real-key" not in json.dumps(model.message_requests()[-1].body)  # never reached the model


def test_the_summary_is_redacted_like_the_transcript(cli: str, model: AnthropicStandIn, checkout: Path) -> None:
    outcome = run(cli, model, checkout, [[text(f"Done. The key was {model.api_key}.")]])
    assert outcome.failure() is None and outcome.summary.startswith("Done.")
    assert model.api_key not in outcome.summary and model.api_key not in outcome.transcript


def test_a_looping_model_is_stopped_by_the_turn_limit(cli: str, model: AnthropicStandIn, checkout: Path) -> None:
    manifest = checkout / "inference" / "fraud.yaml"
    outcome = run(cli, model, checkout, [[tool_use("Read", {"file_path": str(manifest)})]], max_turns=3)
    failure = outcome.failure()
    assert outcome.subtype == "error_max_turns" and failure is not None and "turn limit" in failure
    assert len(model.message_requests()) <= 4


def test_a_model_that_never_answers_is_stopped_by_the_timeout(cli: str, model: AnthropicStandIn,
                                                              checkout: Path) -> None:
    model.fail("POST", r"^/v1/messages$", 529, times=1000, body={
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    outcome = run(cli, model, checkout, [[text("never")]], timeout_seconds=8)
    failure = outcome.failure()
    assert failure is not None and (outcome.timed_out or outcome.subtype != "success"), outcome


def test_the_invocation_is_what_the_docstring_promises() -> None:
    argv = claude_code_argv("claude", model="m", allowed_paths=["inference/**", "model-cards/"],
                            limits=Limits(max_turns=7, max_budget_usd=0.5))
    assert argv[argv.index("--tools") + 1] == "Read,Edit"
    assert argv[argv.index("--permission-mode") + 1] == "dontAsk"
    assert {"--bare", "--strict-mcp-config", "--no-session-persistence", "-p"} <= set(argv)
    assert argv[argv.index("--max-turns") + 1] == "7" and argv[argv.index("--max-budget-usd") + 1] == "0.5"
    assert claude_code_settings(["inference/**", "model-cards/"])["permissions"]["allow"] == [
        "Read(./**)", "Edit(./inference/**)", "Edit(./model-cards/**)"]
    env = claude_code_env(home=Path("/tmp/h"), api_key="k")
    assert set(env) == {"PATH", "HOME", "ANTHROPIC_API_KEY", "DISABLE_AUTOUPDATER", "DISABLE_TELEMETRY",
                        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"}


def test_a_long_transcript_is_bounded() -> None:
    long = "x" * 2_000_000
    kept = bounded(long, limit=1000)
    assert len(kept.encode()) < 1200 and "bytes of the transcript left out" in kept
    assert bounded("short") == "short"


def test_the_spend_limit_stops_the_run(cli: str, model: AnthropicStandIn, checkout: Path) -> None:
    """Guard: --max-budget-usd (the CLI prices the usage the API reports; the stand-in reports some per turn)."""
    manifest = checkout / "inference" / "fraud.yaml"
    outcome = run(cli, model, checkout, [[tool_use("Read", {"file_path": str(manifest)})]], max_turns=50,
                  max_budget_usd=0.003)
    failure = outcome.failure()
    assert outcome.subtype.startswith("error_max_budget"), outcome.subtype
    assert failure is not None and "spend limit" in failure
    assert len(model.message_requests()) < 10


def test_opted_in_commands_run_and_nothing_else_does(cli: str, model: AnthropicStandIn, checkout: Path) -> None:
    """allow_commands: ["git log"] offers Bash with one allow rule; any other command, or git log chained with
    another, is denied (guard: dontAsk + the Bash(git log:*) rule)."""
    import subprocess

    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "commit", "-q", "--allow-empty", "-m", "the first commit"], check=True)
    marker = checkout.parent / "pwned"
    model.script = [
        [tool_use("Bash", {"command": "git log --oneline -1"})],
        [tool_use("Bash", {"command": f"touch {marker}"})],
        [tool_use("Bash", {"command": f"git log -1 && touch {marker}"})],
        [text("done")],
    ]
    home = checkout.parent / "home"
    home.mkdir(exist_ok=True)
    outcome = run_claude_code(checkout, "Look at the history.", cli=cli, model="claude-sonnet-4-5",
                              allowed_paths=ALLOWED, limits=Limits(),
                              env=claude_code_env(home=home, api_key=model.api_key, base_url=model.url),
                              allow_commands=["git log"])
    assert not marker.exists()
    results = [str(r.get("content")) for r in model.last_results()]
    assert "the first commit" in results[0]
    assert [d["tool_input"]["command"] for d in outcome.denials] == [f"touch {marker}", f"git log -1 && touch {marker}"]
    assert "Bash" in model.offered_tools()
