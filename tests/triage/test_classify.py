"""The failure classifier: the rule table on the realistic Argo fixtures and on log tails of REAL Python tracebacks
(each produced by running a small failing program here, not typed by hand)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hera_flows.steps.triage.classify import CATEGORIES, PRIORITY, RULES, classify, final_exception, main
from hera_flows.steps.triage.context import failing_nodes


def run_failing(source: str, tmp_path: Path) -> str:
    """stdout+stderr of a Python program that must fail, as a container log would hold them."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def context_with_log(log: str, evidence: list[str] | None = None) -> dict[str, Any]:
    return {"pattern": "failure_triage", "evidence": evidence or ["node train: Error (exit code 1)"],
            "pods": [{"step": "train", "logs": {"main": {"tail": log}}}]}


def context_from_workflow(workflow: dict[str, Any], case: str = "failed") -> dict[str, Any]:
    evidence = []
    for node in failing_nodes(workflow, case):
        evidence.append(f"node {node['display_name']}: {node['message']}")
    return {"pattern": "failure_triage", "evidence": evidence, "pods": []}


def load(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / "argo-workflows" / name).read_text())


# --- the rule table ---------------------------------------------------------------------------------------------


def test_every_class_has_rules_and_a_priority() -> None:
    assert set(PRIORITY) | {"unknown"} == set(CATEGORIES)
    assert {r.category for r in RULES} == set(PRIORITY)
    assert {r.source for r in RULES} <= {"status", "exception", "log"}


# --- realistic workflow objects --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["workflow_failed_oom.json", "workflow_failed_oom_steps.json"])
def test_oom_fixtures_are_oom_from_the_failed_pod_node(fixtures_dir: Path, name: str) -> None:
    result = classify(context_from_workflow(load(fixtures_dir, name)))
    assert result.category == "oom"
    assert any("OOMKilled (exit code 137)" in line for line in result.evidence)
    # the steps fixture's parents say "child ... failed": only Pod nodes are evidence
    assert not any("child" in line for line in result.evidence)


def test_image_pull_fixture_is_image_pull(fixtures_dir: Path) -> None:
    result = classify(context_from_workflow(load(fixtures_dir, "workflow_running_imagepullbackoff.json"), "image-pull"))
    assert result.category == "image-pull"
    assert any("ImagePullBackOff" in line and "fraud-scorer:v7.0.3" in line for line in result.evidence)


def test_image_pull_beats_the_deadline_message_that_overwrote_it() -> None:
    context = {"evidence": ["node score-batch: Step exceeded its deadline",
                            "event score-batch Failed: Failed to pull image \"r/x:1\": not found"], "pods": []}
    result = classify(context)
    assert result.category == "image-pull"
    assert result.evidence == ["event score-batch Failed: Failed to pull image \"r/x:1\": not found"]


def test_the_event_source_fixture_is_oom(fixtures_dir: Path) -> None:
    event = json.loads((fixtures_dir / "argo-events" / "resource_workflow_failed.json").read_text())
    assert classify(context_from_workflow(event["body"])).category == "oom"


@pytest.mark.parametrize(
    ("line", "category"),
    [
        ("event train FailedScheduling: 0/12 nodes are available: 4 Insufficient nvidia.com/gpu, 8 node(s) "
         "didn't match Pod's node affinity/selector.", "gpu-unschedulable"),
        ("node train: Step exceeded its deadline", "timeout"),
        ("node train: Pod was active on the node longer than the specified deadline", "timeout"),
        ("event train Evicted: The node was low on resource: ephemeral-storage.", "infrastructure"),
        ("node train: pod deleted", "infrastructure"),
        ("node train: Error (exit code 1)", "unknown"),
    ],
)
def test_status_lines(line: str, category: str) -> None:
    result = classify({"evidence": [line], "pods": []})
    assert result.category == category
    assert result.evidence == [line]


# --- real tracebacks -------------------------------------------------------------------------------------------


def test_missing_parquet_is_data_missing(tmp_path: Path) -> None:
    log = run_failing("""
        import pandas as pd
        print("loading features for 2026-11-21", flush=True)
        frame = pd.read_parquet("features/date=2026-11-21/part-0.parquet")
    """, tmp_path)
    result = classify(context_with_log(log))
    assert result.category == "data-missing", log
    assert any("FileNotFoundError" in line for line in result.evidence)


@pytest.mark.parametrize(
    ("source", "category", "exception"),
    [
        ("row = {'user': 1}\nprint(row['label'])\n", "code-bug", "KeyError"),
        ("def loss(n):\n    return 1 / n\nloss(0)\n", "code-bug", "ZeroDivisionError"),
        ("import numpy as np\nnp.ones(3) @ np.ones(4)\n", "code-bug", "ValueError"),
        ("buffer = bytearray(2 ** 62)\n", "oom", "MemoryError"),
        ("import numpy as np\nnp.empty((10 ** 7, 10 ** 7))\n", "oom", "_ArrayMemoryError"),
        ("import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\nport = s.getsockname()[1]\ns.close()\n"
         "socket.create_connection(('127.0.0.1', port), timeout=5)\n", "infrastructure", "ConnectionRefusedError"),
        ("open('/data/train/labels.csv')\n", "data-missing", "FileNotFoundError"),
    ],
)
def test_real_tracebacks(tmp_path: Path, source: str, category: str, exception: str) -> None:
    log = "epoch 1/10 loss=0.41\n" * 50 + run_failing(source, tmp_path)
    result = classify(context_with_log(log))
    assert result.category == category, log[-800:]
    assert any(exception in line for line in result.evidence), result.evidence


def test_the_last_traceback_of_a_chain_decides(tmp_path: Path) -> None:
    log = run_failing("""
        try:
            {}["features"]
        except KeyError as exc:
            raise FileNotFoundError("s3://bucket/features/2026-11-21 does not exist") from exc
    """, tmp_path)
    assert final_exception(log)[0] == "FileNotFoundError"
    assert classify(context_with_log(log)).category == "data-missing"


def test_oom_kill_beats_the_traceback_it_left() -> None:
    context = context_with_log("Traceback (most recent call last):\n  File \"x\", line 1\nKeyError: 'a'\n",
                               ["pod train container main: terminated OOMKilled (exit code 137)"])
    assert classify(context).category == "oom"


def test_classify_step_writes_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context = context_with_log("Traceback (most recent call last):\n  File \"x\", line 1\nKeyError: 'a'\n")
    context["workflow"] = {"name": "train-abc12", "namespace": "ml-training", "template": "recommender-train"}
    monkeypatch.setenv("HF_PARAM_CONTEXT", json.dumps(context))
    assert main([f"--outputs={tmp_path}"]) == 0
    assert (tmp_path / "category").read_text() == "code-bug"
    # the later part has a '-', so a short hash keeps the name unambiguous (naming.branch_name)
    assert (tmp_path / "branch").read_text().startswith("failure-triage/recommender-train-code-bug-")
    assert json.loads((tmp_path / "context").read_text())["classification"]["evidence"] == ["train/main: KeyError: 'a'"]
    assert (tmp_path / "dedupe-key").read_text() == "ml-training@recommender-train@code-bug"


def test_a_warning_in_the_log_does_not_overrule_the_traceback(tmp_path: Path) -> None:
    log = run_failing("""
        import sys
        print("config.yaml: No such file or directory, using defaults", file=sys.stderr, flush=True)
        {"user": 1}["label"]
    """, tmp_path)
    result = classify(context_with_log(log))
    assert result.category == "code-bug" and result.evidence == ["train/main: KeyError: 'label'"]


def test_log_lines_decide_when_there_is_no_traceback() -> None:
    log = "cat: /data/features/2026-11-21.csv: No such file or directory\n"
    assert classify(context_with_log(log)).category == "data-missing"


def test_spark_path_not_found_is_data_missing_but_other_analysis_errors_are_code() -> None:
    head = "Traceback (most recent call last):\n  File \"job.py\", line 3, in <module>\n"
    missing = head + "pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: " \
                     "s3://acme/features/dt=2026-11-21.\n"
    column = head + "pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] " \
                    "A column with name `lable` cannot be resolved.\n"
    assert classify(context_with_log(missing)).category == "data-missing"
    assert classify(context_with_log(column)).category == "code-bug"


def test_the_documented_rule_table_is_the_code() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "patterns" / "failure-triage.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `") and line.count("|") >= 5]
    for rule in RULES:
        pattern = rule.pattern.replace("|", "\\|")
        assert f"| `{rule.category}` | {rule.source} | `{pattern}` | {rule.means} |" in rows, rule
