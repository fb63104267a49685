"""`make demo` end to end: the demo runs as a user runs it (its own process, `python -m hera_flows.local.demo`), its
summary says what happened in each act, every PR and issue is shown whole and saved to the folder the summary
names, and nothing it started survives it — neither after a normal end nor after Ctrl-C in the middle of an act."""

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
import yaml

from tests.conftest import ROOT


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


def test_the_fairness_acts_event_is_the_monday_0600_tick_the_generated_calendar_sends() -> None:
    """The demo's fairness event is what the generated calendar EventSource emits at its schedule: Go's
    time.String() of a tick at minute 0, hour 6 on a Monday in the schedule's time zone, and its metadata."""
    from datetime import datetime

    event = json.loads((ROOT / "examples" / "fairness" / "event.calendar.json").read_text())
    [calendar] = yaml.safe_load((ROOT / "eventsources" / "fairness-schedule.yaml").read_text())[
        "spec"]["calendar"].values()
    minute, hour, _, _, weekday = calendar["schedule"].split()
    assert calendar["timezone"] == "UTC" and event["eventTime"].split(" ")[2:4] == ["+0000", "UTC"]
    tick = datetime.strptime(event["eventTime"][:19], "%Y-%m-%d %H:%M:%S")
    assert (tick.minute, tick.hour, tick.isoweekday() % 7) == (int(minute), int(hour), int(weekday))  # Monday 06:00
    assert event["metadata"] == calendar["metadata"]


@pytest.mark.slow
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
        ("drift", "proceed", "issue opened"),
        ("failure-triage", "oom", "PR opened"),
        ("failure-triage", "code-bug", "issue opened"),
        ("fairness-audit", "proceed", "PR opened"),
        ("rollback", "proceed", "PR opened"),
    ], summary
    assert all(o["ok"] and o["phase"] == "Succeeded" for o in summary["outcomes"])
    assert "github.com/acme/ml-gitops/pull/1" in summary["outcomes"][0]["result"]
    assert "smoke test passed" in summary["outcomes"][0]["result"]
    assert "cooldown" in summary["outcomes"][2]["result"]
    assert "github.com/acme/ml-gitops/issues/3 (data-quality)" in summary["outcomes"][3]["result"]
    assert "github.com/acme/ml-pipelines/pull/1" in summary["outcomes"][4]["result"]
    assert "github.com/acme/ml-pipelines/issues/2" in summary["outcomes"][5]["result"]

    # Every PR and issue, whole, in the folder the summary names (the terminal shows them whole too).
    bodies = Path(summary["bodies"])
    assert f"Full PR and issue bodies (7): {bodies}" in out
    saved = {Path(p).name: Path(p).read_text() for p in summary["saved"]}
    assert sorted(saved) == sorted(p.name for p in bodies.iterdir()) and len(saved) == 7
    promotion = saved["01-promotion-pr-ml-gitops-1.md"]
    assert "### On-call checklist" in promotion and "- [ ] Rollback plan: revert this pull request" in promotion
    assert promotion.count("| Metric |") == 1  # the PR's metrics table, not repeated in the agent's summary
    assert "- [ ] Rollback plan: revert this pull request" in out
    drift_pr = saved["02-drift-pr-ml-gitops-2.md"]
    assert "`retraining.reason`: (absent) -> `drift on amount" in drift_pr and "MISSING" not in out
    assert "data-quality" in saved["03-drift-issue-ml-gitops-3.md"].splitlines()[0]
    owner_issue = saved["05-triage-issue-ml-pipelines-2.md"]
    assert "@acme/ml-platform: a run of your pipeline failed" in owner_issue and "KeyError: 'churned'" in owner_issue

    # What the user sees: MLflow's webhook, per-step progress, the PRs and their diffs, the summary table.
    assert "MLflow delivered POST /mlflow: X-MLflow-Signature v1," in out
    for line in ("[guard] Succeeded", "[agent] Succeeded", "[review] Succeeded", "[classify] Succeeded",
                 "[audit(0:fraud-detector)] Succeeded", "[collect] Succeeded"):
        assert line in out, line
    assert "#1 Promote fraud-detector v2 to champion" in out
    assert '+      runtimeVersion: "1.7.0"' in out
    assert "-          memory: 4Gi" in out and "+          memory: 6Gi" in out  # the triage fix, in the diff
    assert "model-card-refresh/2026-w47 -> main" in out
    assert "8/8 as expected" in out
    assert "schedule '0 6 * * 1' (UTC): Monday 06:00" in out
    assert "Roll back fraud-detector v2 to v1: ModelErrorRateHigh fired" in out  # act 5: the revert PR
    assert out.index("Summary") > out.index("4. Fairness audit")

    assert _wait_gone(workdir, proc.pid) == []
    assert summary["mlflow_pid"] and not Path(f"/proc/{summary['mlflow_pid']}").exists()


@pytest.mark.slow
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


@pytest.mark.slow
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
        ("drift", "proceed", "issue opened", True),
        ("failure-triage", "oom", "PR opened", True),
        ("failure-triage", "code-bug", "issue opened", True),
        ("fairness-audit", "proceed", "PR opened", True),
        ("rollback", "proceed", "PR opened", True),
    ], out[-6000:]
    assert "smoke test passed" in summary["outcomes"][0]["result"]
    # every PR and issue says the CLI made it; the CLI's own log shows it ran (seven agent runs, each finished)
    assert out.count(f"Edited by a coding agent: runtime `{agent}`") == 7, out[-6000:]
    logs = sorted(workdir.glob("runs/*/logs/*agent.agent.log"))  # drift's per-key chain: remediate(0:...).agent
    assert len(logs) == 7
    for log in logs:
        text = log.read_text()
        assert f"agent-run: {agent} (" in text and "finished in" in text, text[-2000:]
    assert _wait_gone(workdir, proc.pid) == []
