"""Agent step overhead: the real agent CLIs (Claude Code, Codex) with a scripted model, against the builtin editor.

The scenario is one promotion, as the promotion pattern's agent pod sees it: a git checkout of
examples/promotion/gitops-repo (an InferenceService and a model card; a small KServe manifest when the example is
not there), laid out as prepare-workspace lays it out (``repo/``, ``context.json``, ``prompt.md``), with
fraud-detector version 7 to promote. Every run gets a fresh copy of that workspace; only the agent's part is timed.

- baseline: ``hera-flows step agent-builtin --pattern=promotion`` (the builtin agent container's whole command: one
  process, one edit of the manifest and the model card);
- for scale: the builtin editor alone (``builtin_edit``, in process) and ``python -c pass``;
- per runtime: the CLI's start-up (``claude --version``, ``codex --version``) and a full scripted run through
  ``run_claude_code`` / ``run_codex`` with agent-run's flags and environment, against the scripted model stand-in
  (hera_flows/local/scripted_agent.py: when the conversation starts it plans the builtin editor's change on a copy
  of the checkout, which is part of the time, and asks for it as tool calls: Claude Code reads and edits each file
  and writes the summary; Codex applies one patch and answers).

Reported per row: the median wall time of N runs (and the fastest and slowest), the ratio to the baseline measured
in the same run, the extra milliseconds over it, the CLI's turns, the model requests the stand-in recorded, and
whether the checkout ended exactly as the builtin editor leaves it. The CLI runs are timed as agent-run calls them,
in process, so they leave out hera-flows' own start-up, which the baseline includes. A runtime whose CLI is not
installed (``make agents``) is skipped with a message.

Run: ``python -m benchmarks.agents [--runs N] [--quick]`` (``--quick``: 3 runs of each instead of 7).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AGENT_BIN = ROOT / ".agents" / "node_modules" / ".bin"
GITOPS = ROOT / "examples" / "promotion" / "gitops-repo"
PATTERN = "promotion"
CLIS = {"claude-code": "claude", "codex": "codex"}
MODELS = {"claude-code": "claude-sonnet-4-5", "codex": "gpt-5.5"}
KEYS = {"claude-code": "sk-ant-bench-standin", "codex": "sk-openai-bench-standin"}
RUNS, QUICK_RUNS = 7, 3

# When examples/promotion/gitops-repo is not there: the smallest checkout the promotion editor edits.
FALLBACK_FILES = {
    "inference/fraud-detector.yaml": (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: fraud-detector\n"
        "  annotations:\n    hera-flows.io/mlflow-model: fraud-detector\n    hera-flows.io/mlflow-version: \"6\"\n"
        "spec:\n  predictor:\n    model:\n      modelFormat:\n        name: mlflow\n"
        "      storageUri: s3://mlflow-artifacts/1/5f0c2a/artifacts/model\n"),
    "model-cards/fraud-detector.md": "# Model card: fraud-detector\n\n- Version: 6\n",
}

CONTEXT: dict[str, Any] = {
    "pattern": "promotion",
    "model": "fraud-detector",
    "version": "7",
    "alias": "champion",
    "model_version": {
        "name": "fraud-detector", "version": "7", "source": "models:/m-7b2e", "run_id": "4f1c0a9e2b7d",
        "model_id": "m-7b2e", "storage_uri": "s3://mlflow-artifacts/1/7b2e4d/artifacts/model", "tags": {},
        "aliases": ["champion"], "description": "retrained on October data", "creation_timestamp": 1760000000000,
    },
    "metrics": {"roc_auc": 0.9612, "accuracy": 0.9234},
    "params": {},
    "deployment": {"runtime_version": None, "gpu_type": None, "gpu_count": None, "replica_min": None,
                   "replica_max": None, "cpu": None, "memory": None},
    "serving": {"manifest_path": "inference/fraud-detector.yaml", "current_version": "6",
                "current_storage_uri": "s3://mlflow-artifacts/1/5f0c2a/artifacts/model",
                "metrics": {"roc_auc": 0.95}},
    "deltas": {"roc_auc": {"new": 0.9612, "old": 0.95, "delta": 0.0112}},
}


@dataclass
class Row:
    label: str
    seconds: list[float] = field(default_factory=list)
    turns: int | None = None
    requests: int | None = None
    same: bool | None = None  # the checkout ended as the builtin editor leaves it
    failure: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Scenario:
    """The checkout (committed once), the pattern's settings and allowed paths, and a folder for the runs."""

    root: Path
    template: Path
    settings: dict[str, Any]
    allowed: list[str]
    expected: dict[str, str] = field(default_factory=dict)  # the checkout after the builtin editor
    count: int = 0

    def workspace(self) -> Path:
        """A fresh workspace as prepare-workspace leaves it: repo/ (a git checkout), context.json, prompt.md."""
        from hera_flows.steps.workspace import render

        self.count += 1
        ws = self.root / f"ws-{self.count}"
        shutil.copytree(self.template, ws / "repo", symlinks=True)
        (ws / "context.json").write_text(json.dumps(CONTEXT, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        (ws / "prompt.md").write_text(render(PATTERN, CONTEXT, self.allowed, self.settings, ws), encoding="utf-8")
        return ws

    def home(self) -> Path:
        home = self.root / f"home-{self.count}"
        home.mkdir()
        return home


def files_of(repo: Path) -> dict[str, str]:
    return {p.relative_to(repo).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.relative_to(repo).parts}


def scenario(root: Path) -> Scenario:
    from hera_flows.config import load_config
    from hera_flows.local.demo import example_files, git
    from hera_flows.patterns.promotion import editor_settings

    cfg = load_config(ROOT / "config" / "flows.yaml")
    files = example_files("promotion") if GITOPS.is_dir() else {"README.md": "# GitOps\n", **FALLBACK_FILES}
    template = root / "template"
    for relative, content in files.items():
        (template / relative).parent.mkdir(parents=True, exist_ok=True)
        (template / relative).write_text(content, encoding="utf-8")
    git("init", "--quiet", "--initial-branch=main", str(template))
    git("add", "--all", cwd=template)
    git("commit", "--quiet", "-m", "Initial layout", cwd=template)
    return Scenario(root, template, editor_settings(cfg), list(cfg.patterns.promotion.allowed_paths))


# --- the measurements --------------------------------------------------------------------------------------------

def timed(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=cwd, timeout=120)
    return time.perf_counter() - started


def builtin_step(s: Scenario, runs: int) -> Row:
    from hera_flows.steps.contract import render_flags
    from hera_flows.steps.editors import editor_of

    flags = render_flags(editor_of(PATTERN).SETTINGS, s.settings, where="benchmarks.agents")
    row = Row("baseline: hera-flows step agent-builtin (1 edit)")
    for _ in range(runs):
        ws = s.workspace()
        row.seconds.append(timed([sys.executable, "-m", "hera_flows", "step", "agent-builtin",
                                  f"--pattern={PATTERN}", f"--workspace={ws}", *flags]))
        same = files_of(ws / "repo") == s.expected and (ws / "summary.md").is_file()
        row.same = same if row.same is None else row.same and same
    return row


def builtin_in_process(s: Scenario, runs: int) -> Row:
    from hera_flows.steps.editors import editor_of

    editor = editor_of(PATTERN)
    row = Row("builtin_edit in process (the editor alone)")
    for run in range(runs + 1):  # the first one imports what the editor needs: not timed
        ws = s.workspace()
        started = time.perf_counter()
        editor.builtin_edit(ws / "repo", dict(CONTEXT), argparse.Namespace(**s.settings))
        if run:
            row.seconds.append(time.perf_counter() - started)
        else:
            s.expected = files_of(ws / "repo")  # what every other row's checkout is compared with
    return row


def interpreter(runs: int) -> Row:
    return Row("python -c pass (interpreter start-up)", [timed([sys.executable, "-c", "pass"]) for _ in range(runs)])


def env_for(runtime: str, home: Path, base_url: str | None = None) -> dict[str, str]:
    from hera_flows.steps.agent_runtimes import claude_code_env, codex_env

    if runtime == "claude-code":
        return claude_code_env(home=home, api_key=KEYS[runtime], base_url=base_url)
    return codex_env(home=home, api_key=KEYS[runtime])


def startup(s: Scenario, runtime: str, runs: int) -> Row:
    cli = str(AGENT_BIN / CLIS[runtime])
    row = Row(f"{runtime}: {CLIS[runtime]} --version (CLI start-up)")
    for _ in range(runs):
        s.count += 1
        row.seconds.append(timed([cli, "--version"], env=env_for(runtime, s.home())))
    return row


def scripted(s: Scenario, runtime: str, runs: int) -> Row:
    """Full runs with agent-run's flags, limits and environment against the scripted model."""
    from hera_flows.local.scripted_agent import Plan, ScriptedClaude, ScriptedCodex, plan
    from hera_flows.steps.agent_runtimes import Limits, run_claude_code, run_codex

    def planner(workspace: Path) -> Plan:
        return plan(workspace, PATTERN, s.settings)

    cli = str(AGENT_BIN / CLIS[runtime])
    limits = Limits(max_turns=30, timeout_seconds=300)
    what = "read, edit, summary" if runtime == "claude-code" else "one apply_patch, answer"
    row = Row(f"{runtime}: scripted run ({what})")
    for _ in range(runs):
        ws = s.workspace()
        home = s.home()
        model: ScriptedClaude | ScriptedCodex
        if runtime == "claude-code":
            model = ScriptedClaude(planner, api_key=KEYS[runtime]).start()
        else:
            model = ScriptedCodex(planner, api_key=KEYS[runtime]).start()
        try:
            prompt = (ws / "prompt.md").read_text(encoding="utf-8")
            started = time.perf_counter()
            if isinstance(model, ScriptedClaude):
                outcome = run_claude_code(
                    ws / "repo", prompt, cli=cli, model=MODELS[runtime], allowed_paths=s.allowed, limits=limits,
                    env=env_for(runtime, home, model.url), writable_files=[ws / "summary.md", ws / "issue.json"],
                    readable_files=[ws / "context.json"])
            else:
                outcome = run_codex(ws / "repo", prompt, cli=cli, model=MODELS[runtime], limits=limits,
                                    env=env_for(runtime, home), writable_roots=[ws], base_url=model.url)
            row.seconds.append(time.perf_counter() - started)
            requests = model.message_requests() if isinstance(model, ScriptedClaude) else model.responses()
        finally:
            model.stop()
        row.turns, row.requests = outcome.turns, len(requests)
        same = files_of(ws / "repo") == s.expected and (ws / "summary.md").is_file()
        row.same = same if row.same is None else row.same and same
        row.failure = row.failure or outcome.failure()
    return row


# --- the report --------------------------------------------------------------------------------------------------

def table(rows: list[Row], baseline: Row) -> str:
    def show(value: object) -> str:
        return "-" if value is None else ("yes" if value else "NO") if isinstance(value, bool) else str(value)

    header = (f"{'':<54} {'median ms':>10} {'min-max ms':>15} {'x baseline':>10} {'+ms':>9} "
              f"{'turns':>5} {'requests':>8} {'same change':>11}")
    lines = [header, "-" * len(header)]
    for row in rows:
        spread = f"{min(row.seconds) * 1000:.0f}-{max(row.seconds) * 1000:.0f}"
        extra = "" if row is baseline else f"{(row.median - baseline.median) * 1000:+9.0f}"
        lines.append(f"{row.label:<54} {row.median * 1000:10.1f} {spread:>15} {row.median / baseline.median:9.1f}x "
                     f"{extra:>9} {show(row.turns):>5} {show(row.requests):>8} {show(row.same):>11}")
        if row.failure:
            lines.append(f"    did not succeed: {row.failure}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help=f"runs of each measurement (default {RUNS})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs of each")
    args = parser.parse_args(argv)
    runs = max(1, args.runs or (QUICK_RUNS if args.quick else RUNS))
    # the CLIs, and the Node.js they run on (the dev extra's, beside this Python), on PATH as in the agent image
    # (as hera_flows/local/demo.py does); PATH is restored afterwards, `make bench` runs more in this process
    path = os.environ.get("PATH", "/usr/bin:/bin")
    os.environ["PATH"] = os.pathsep.join([str(AGENT_BIN), str(Path(sys.executable).parent), path])
    try:
        return report(runs)
    finally:
        os.environ["PATH"] = path


def report(runs: int) -> int:
    installed = [r for r in CLIS if (AGENT_BIN / CLIS[r]).exists()]
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as folder:
        s = scenario(Path(folder))
        source = "examples/promotion/gitops-repo" if GITOPS.is_dir() else "a small KServe manifest"
        print(f"agent step overhead: promoting fraud-detector 6 -> 7 in a git checkout of {source}, "
              f"median of {runs} runs", flush=True)
        extra = builtin_in_process(s, runs)
        baseline = builtin_step(s, runs)
        rows = [baseline, extra, interpreter(runs)]
        for runtime in CLIS:
            if runtime not in installed:
                continue
            print(f"  measuring {runtime} ...", flush=True)
            rows += [startup(s, runtime, runs), scripted(s, runtime, runs)]
    print(table(rows, baseline))
    for runtime in CLIS:
        if runtime not in installed:
            print(f"{runtime}: skipped, its CLI is not installed ({AGENT_BIN / CLIS[runtime]}): run `make agents`")
    print("turns: the CLI's own count; requests: model API calls the stand-in recorded; same change: the checkout "
          "ended exactly as the builtin editor leaves it. The CLI rows leave out hera-flows' own start-up "
          "(agent-run's), which the baseline includes.")
    failed = [r for r in rows if r.failure or r.same is False]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
