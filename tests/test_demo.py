"""`make demo` end to end: the demo runs as a user runs it (its own process, `python -m hera_flows.local.demo`), its
summary says what happened in each act, and nothing it started survives it — neither after a normal end nor
after Ctrl-C in the middle of an act."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _start(workdir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hera_flows.local.demo", "--workdir", str(workdir), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _survivors(workdir: Path, pgid: int) -> list[str]:
    """Processes still in the demo's process group, or whose command line or working folder is in its folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
            group = os.getpgid(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
        if group == pgid or str(workdir) in cmdline or cwd.startswith(str(workdir)):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _wait_gone(workdir: Path, pgid: int, seconds: float = 10.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := _survivors(workdir, pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_the_demo_runs_all_four_patterns_and_leaves_nothing_running(tmp_path: Path) -> None:
    workdir, summary_file = tmp_path / "demo", tmp_path / "summary.json"
    proc = _start(workdir, "--summary-json", str(summary_file))
    try:
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-6000:]

    summary = json.loads(summary_file.read_text())
    rows = [(o["pattern"], o["decision"], o["result"].split(":")[0]) for o in summary["outcomes"]]
    assert rows == [
        ("promotion", "proceed", "PR opened"),
        ("drift", "proceed", "PR opened"),
        ("drift", "skipped-cooldown", "skipped"),
        ("failure-triage", "oom", "PR opened"),
        ("fairness-audit", "proceed", "PR opened"),
    ], summary
    assert all(o["ok"] and o["phase"] == "Succeeded" for o in summary["outcomes"])
    assert "github.com/acme/ml-gitops/pull/1" in summary["outcomes"][0]["result"]
    assert "smoke test passed" in summary["outcomes"][0]["result"]
    assert "cooldown" in summary["outcomes"][2]["result"]
    assert "github.com/acme/ml-pipelines/pull/1" in summary["outcomes"][3]["result"]

    # What the user sees: MLflow's webhook, per-step progress, the PRs and their diffs, the summary table.
    assert "MLflow delivered POST /mlflow: X-MLflow-Signature v1," in out
    for line in ("[guard] Succeeded", "[agent] Succeeded", "[review] Succeeded", "[classify] Succeeded",
                 "[audit(0:fraud-detector)] Succeeded", "[collect] Succeeded"):
        assert line in out, line
    assert "#1 Promote fraud-detector v2 to champion" in out
    assert '+      runtimeVersion: "1.7.0"' in out
    assert "-          memory: 4Gi" in out and "+          memory: 6Gi" in out  # the triage fix, in the diff
    assert "model-card-refresh/2026-w47 -> main" in out
    assert "5/5 as expected" in out
    assert out.index("Summary") > out.index("4. Fairness audit")

    assert _wait_gone(workdir, proc.pid) == []
    assert summary["mlflow_pid"] and not Path(f"/proc/{summary['mlflow_pid']}").exists()


def test_ctrl_c_in_the_middle_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = _start(workdir, "--only", "promotion")
    seen: list[str] = []
    reached = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "1. Model promotion" in line:  # the MLflow server and every stand-in are up
                reached.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert reached.wait(180), "".join(seen)[-3000:]
        mlflow_line = next(line for line in seen if "MLflow server (sqlite store)" in line)
        mlflow_pid = int(mlflow_line.split(" pid ")[1].split(",")[0])
        assert Path(f"/proc/{mlflow_pid}").exists()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        assert proc.wait(60) == 130, "".join(seen)[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(5)
    assert "interrupted; stopping everything it started" in "".join(seen)
    assert _wait_gone(workdir, proc.pid) == []
    assert not Path(f"/proc/{mlflow_pid}").exists()


@pytest.mark.parametrize("agent", ["claude-code", "codex"])
def test_the_demo_runs_all_four_patterns_with_a_real_agent_cli(tmp_path: Path, agent: str) -> None:
    """`make demo AGENT=claude-code|codex`: the real CLI (make agents) makes every pattern's change against the
    scripted model, and every act ends as with the builtin editor: the PRs open and their checks pass."""
    cli = ROOT / ".agents" / "node_modules" / ".bin" / ("claude" if agent == "claude-code" else "codex")
    if not cli.exists():
        pytest.skip("the agent CLIs are not installed: run `make agents` (make test and CI do)")
    workdir, summary_file = tmp_path / "demo", tmp_path / "summary.json"
    proc = _start(workdir, "--summary-json", str(summary_file), "--agent", agent)
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-6000:]
    summary = json.loads(summary_file.read_text())
    rows = [(o["pattern"], o["decision"], o["result"].split(":")[0], o["ok"]) for o in summary["outcomes"]]
    assert rows == [
        ("promotion", "proceed", "PR opened", True),
        ("drift", "proceed", "PR opened", True),
        ("drift", "skipped-cooldown", "skipped", True),
        ("failure-triage", "oom", "PR opened", True),
        ("fairness-audit", "proceed", "PR opened", True),
    ], out[-6000:]
    assert "smoke test passed" in summary["outcomes"][0]["result"]
    # every PR says the CLI made it; the CLI's own log shows it ran (four agent runs, each finished)
    assert out.count(f"Edited by a coding agent: runtime `{agent}`") == 4, out[-6000:]
    logs = sorted(workdir.glob("runs/*/logs/agent.agent.log"))
    assert len(logs) == 4
    for log in logs:
        text = log.read_text()
        assert f"agent-run: {agent} (" in text and "finished in" in text, text[-2000:]
    assert _wait_gone(workdir, proc.pid) == []
