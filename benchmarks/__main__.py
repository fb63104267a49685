"""`make bench`: every benchmark, each printing ratios against a baseline measured in the same run.

- generate and step start-up (here): against a bare `python -c pass`;
- `benchmarks.fairness`: our fairness audit against fairlearn's MetricFrame, plus peak memory at 10M rows;
- `benchmarks.fairness_scale`: the audit of 5,000 registered models through an artifact repository (MLflow requests,
  pods, artifact bytes, list + fan-in time, the fan-in's peak memory) against the parameter path at its limit;
- `benchmarks.drift_monitor`: the drift monitor's rows/s at 100k and 1M rows against reading the same data;
- `benchmarks.drift_keys`: one Alertmanager delivery with 50 keys for 10 models, every key of it against today's
  one key per run: runs started, remediations, keys, Lease writes and 409 conflicts, hours until the last key;
- `benchmarks.triage`: reading a multi-GB pod log tail against a naive full read, and the classifier's speed;
- `benchmarks.triage_corpus`: the classifier's accuracy, per-class precision/recall and confusion matrix on the
  corpus of real failure reports (held-out part, tune part, all);
- `benchmarks.triage_agent`: the same corpus with a coding agent deciding (its recorded replies to the real prompts)
  against the rule table alone, per recorded round;
- `benchmarks.agents`: the agent step with the real Claude Code and Codex CLIs (scripted model) against the builtin
  editor (`hera-flows step agent-builtin`) on one promotion; a runtime whose CLI is not installed is skipped.

Run one alone with `python -m benchmarks.fairness` (or `.drift_monitor`, `.agents`); `--quick` here skips the slow
parts.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hera_flows.steps import STEPS

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5


def _time(command: list[str], runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _import_seconds(module: str) -> float:
    """Cumulative import time of ``module`` from `python -X importtime` (microseconds -> seconds)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    total = 0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            total = int(parts[1].strip())
    return total / 1e6


def startup() -> int:
    baseline = _time([sys.executable, "-c", "pass"])
    print(f"baseline: python -c pass                      {baseline * 1000:8.1f} ms  (1.0x)")
    with tempfile.TemporaryDirectory() as out:
        generate = _time(
            [sys.executable, "-m", "hera_flows", "generate", "--config", "config/flows.yaml", "--out", out]
        )
    print(f"hera-flows generate (all patterns)            {generate * 1000:8.1f} ms  ({generate / baseline:5.1f}x)")
    print()
    print("step start-up: `hera-flows step NAME --help` (median of 5) and the step module's own import time")
    for name, target in sorted(STEPS.items()):
        module = target.split(":")[0]
        seconds = _time([sys.executable, "-m", "hera_flows", "step", name, "--help"])
        own = _import_seconds(module)
        print(f"  {name:<20} {seconds * 1000:8.1f} ms  ({seconds / baseline:5.1f}x baseline)"
              f"   import {own * 1000:7.1f} ms")
    return 0


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    status = startup()
    from benchmarks import (
        agents,
        drift_keys,
        drift_monitor,
        fairness,
        fairness_scale,
        triage,
        triage_agent,
        triage_corpus,
    )

    print("\n== fairness audit ==", flush=True)
    status |= fairness.main(["--skip-metricframe", "--rows=200000", "--memory-rows=1000000"] if quick else [])
    print("\n== fairness audit at registry scale: artifacts against the parameter path ==", flush=True)
    status |= fairness_scale.main(["--models=500"] if quick else [])
    print("\n== drift monitor ==", flush=True)
    status |= drift_monitor.main(["--rows=100000"] if quick else [])
    print("\n== drift: every key of an alert group against one key per run ==", flush=True)
    status |= drift_keys.main([])
    print("\n== failure triage: bounded log reads and the classifier ==", flush=True)
    status |= triage.main([])
    print("\n== failure triage: the classifier on real failure reports ==", flush=True)
    status |= triage_corpus.main([])
    print("\n== failure triage with a coding agent: recorded replies, against the rule table alone ==", flush=True)
    status |= triage_agent.main([])
    print("\n== agent step: the real agent CLIs (scripted model) against the builtin editor ==", flush=True)
    status |= agents.main(["--quick"] if quick else [])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
