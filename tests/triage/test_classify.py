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
    assert {r.source for r in RULES} <= {"status", "exception", "log", "hint"}


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
        ("event train Evicted: The node was low on resource: ephemeral-storage.", "eviction"),
        ("node train: pod deleted", "preemption"),
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
         "socket.create_connection(('127.0.0.1', port), timeout=5)\n", "network", "ConnectionRefusedError"),
        ("open('/data/train/labels.csv')\n", "data-missing", "FileNotFoundError"),
        # the Kubernetes client refusing a call for RBAC: "(403)" on the exception line, "Reason: Forbidden" below
        ("from kubernetes.client.exceptions import ApiException\nraise ApiException(status=403, reason='Forbidden')\n",
         "permissions", "ApiException: (403)"),
        # pyarrow: two input files whose column types differ, and data that does not fit the declared type
        ("import io\nimport pyarrow as pa, pyarrow.parquet as pq\nfiles = []\n"
         "for table in (pa.table({'x': [1.0]}), pa.table({'x': [1]})):\n"
         "    buffer = io.BytesIO()\n    pq.write_table(table, buffer)\n"
         "    files.append(pq.read_metadata(io.BytesIO(buffer.getvalue())))\n"
         "files[0].append_row_groups(files[1])\n", "schema-drift", "requires equal schemas"),
        ("import pyarrow as pa\npa.array([[1, 2]]).cast(pa.string())\n", "schema-drift", "Unsupported cast from"),
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


def test_spark_path_not_found_is_data_missing_but_other_analysis_errors_are_unknown() -> None:
    head = "Traceback (most recent call last):\n  File \"job.py\", line 3, in <module>\n"
    missing = head + "pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: " \
                     "s3://acme/features/dt=2026-11-21.\n"
    column = head + "pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] " \
                    "A column with name `lable` cannot be resolved.\n"
    assert classify(context_with_log(missing)).category == "data-missing"
    # a column Spark cannot resolve is a typo in the code or a column the input lost: not a confident code bug
    assert classify(context_with_log(column)).category == "unknown"


# --- log shapes as real pods print them ------------------------------------------------------------------------
# Python tracebacks are real (run here) and then shaped as launchers print them; the C++ and TensorFlow texts
# follow the upstream formats (c10d's watchdog abort, TF's Graph execution error), which cannot run here.


OOM_PROGRAM = """
    class OutOfMemoryError(RuntimeError):
        pass
    OutOfMemoryError.__module__ = "torch"
    raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity)")
"""


def test_a_rank_prefixed_traceback_is_read_to_its_exception_line(tmp_path: Path) -> None:
    # torchrun --tee / PyTorch 2.x put "[rankN]:" before every line of a rank's output
    log = "".join(f"[rank1]:{line}\n" for line in run_failing(OOM_PROGRAM, tmp_path).splitlines())
    found = final_exception(log)
    assert found is not None and found[0] == "torch.OutOfMemoryError"
    result = classify(context_with_log(log))
    assert result.category == "gpu-oom"
    assert result.evidence[0] == "train/main: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 " \
                                 "GiB (GPU 0; 15.77 GiB total capacity)"


def test_other_launcher_prefixes_are_taken_off(tmp_path: Path) -> None:
    tail = run_failing("open('/data/train/labels.csv')\n", tmp_path).splitlines()
    for prefix in ("[1,0]<stderr>:", "(RayTrainWorker pid=4321, ip=10.0.0.7) ", "[default0]:"):
        log = "".join(f"{prefix}{line}\n" for line in tail)
        assert final_exception(log) is not None, prefix
        assert classify(context_with_log(log)).category == "data-missing", prefix


def test_a_progress_bar_glued_onto_the_traceback(tmp_path: Path) -> None:
    bar = "Epoch 3:  41%|████      | 410/1000 [02:13<03:12,  3.07it/s, loss=0.412]"
    log = bar + "\r" + bar + run_failing("row = {'user': 1}\nprint(row['label'])\n", tmp_path)
    assert final_exception(log) == ("KeyError", "KeyError: 'label'")
    assert classify(context_with_log(log)).category == "code-bug"


def test_a_progress_bar_glued_onto_a_log_line_is_cut_off() -> None:
    log = ("  2%|▏         | 13/620 [01:07<50:20,  4.98s/it]"
           "[rank0]:[E1123 00:52:57.664949121 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught collective "
           "operation timeout: WorkNCCL(SeqNum=1516, OpType=ALLREDUCE, "
           "Timeout(ms)=600000) ran for 600017 milliseconds before timing out.\n")
    result = classify(context_with_log(log))
    assert result.category == "distributed"
    assert result.evidence[0].startswith("train/main: [E1123 00:52:57.664949121 ProcessGroupNCCL.cpp:607]")


def test_a_cpp_nccl_watchdog_stack_is_distributed() -> None:
    # what PyTorch's NCCL watchdog prints when it aborts the process: no Python traceback at all
    log = (
        "[rank3]:[E ProcessGroupNCCL.cpp:1316] [PG 0 Rank 3] NCCL watchdog thread terminated with exception\n"
        "terminate called after throwing an instance of 'c10::DistBackendError'\n"
        "  what():  [PG 0 Rank 3] Process group watchdog thread terminated with exception: [Rank 3] Watchdog caught "
        "collective operation timeout: WorkNCCL(SeqNum=26, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, "
        "Timeout(ms)=600000) ran for 600008 milliseconds before timing out.\n"
        "Exception raised from checkTimeout at ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:565 (most recent "
        "call first):\n"
        "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x57 (0x7f3b6ad7c897 in "
        "/usr/local/lib/python3.10/dist-packages/torch/lib/libc10.so)\n"
        "frame #1: c10d::ProcessGroupNCCL::WorkNCCL::checkTimeout(std::optional<std::chrono::duration<long, "
        "std::ratio<1l, 1000l> > >) + 0x1d2 (0x7f3b6c055c62 in "
        "/usr/local/lib/python3.10/dist-packages/torch/lib/libtorch_cuda.so)\n"
    )
    from hera_flows.steps.triage.classify import final_exceptions

    assert final_exceptions(log)[0][0] == "c10::DistBackendError"
    result = classify(context_with_log(log))
    assert result.category == "distributed" and result.cause == ""
    assert result.evidence[0].startswith("train/main: c10::DistBackendError: [PG 0 Rank 3] Process group watchdog")


def test_a_cpp_bad_alloc_is_host_memory() -> None:
    log = ("terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n"
           "Aborted (core dumped)\n")
    assert classify(context_with_log(log)).category == "oom"


def test_a_tensorflow_not_found_error_is_data_missing() -> None:
    log = (
        "2024-03-02 10:11:12.123456: W tensorflow/core/framework/op_kernel.cc:1839] OP_REQUIRES failed at "
        "whole_file_read_ops.cc:116 : NOT_FOUND: /data/images/train/0001.jpg; No such file or directory\n"
        "Traceback (most recent call last):\n"
        '  File "/app/train.py", line 88, in <module>\n'
        "    model.fit(dataset, epochs=10)\n"
        '  File "/usr/local/lib/python3.11/site-packages/keras/src/utils/traceback_utils.py", line 122, in '
        "error_handler\n"
        "    raise e.with_traceback(filtered_tb) from None\n"
        "tensorflow.python.framework.errors_impl.NotFoundError: Graph execution error:\n"
        "\n"
        "/data/images/train/0001.jpg; No such file or directory\n"
        "\t [[{{node ReadFile}}]] [Op:__inference_train_function_1234]\n"
    )
    result = classify(context_with_log(log))
    assert result.category == "data-missing"
    assert result.evidence[0] == \
        "train/main: tensorflow.python.framework.errors_impl.NotFoundError: Graph execution error:"


@pytest.mark.parametrize(
    ("line", "category"),
    [
        ("numpy._core._exceptions._ArrayMemoryError: Unable to allocate 1.37 GiB for an array with shape "
         "(1, 546, 820, 820) and data type float32", "oom"),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 132.00 MiB. GPU 3 has a total capacity "
         "of 79.15 GiB of which 17.06 MiB is free.", "gpu-oom"),
        ("RuntimeError: DataLoader worker (pid 1562937) is killed by signal: Killed.", "oom"),
        ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:589] Read error [10.1.2.3]:25266: "
         "Connection reset by peer", "distributed"),
        ("MlflowException: API request to http://mlflow:5000/api/2.0/mlflow/runs/create failed with exception "
         "HTTPConnectionPool(host='mlflow', port=5000): Max retries exceeded with url: /api/2.0/mlflow/runs/create "
         "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))",
         "network"),
        ("AnalysisException: 'Path does not exist: file:/data/on_time_performance.parquet;'", "data-missing"),
        ("ValueError: The feature names should match those that were passed during fit.", "schema-drift"),
        ("OSError: You are trying to access a gated repo.", "permissions"),
    ],
)
def test_a_single_line_error(line: str, category: str) -> None:
    result = classify(context_with_log(line + "\n"))
    assert result.category == category
    assert result.evidence[0] == f"train/main: {line}"


def test_a_traceback_logged_indented_inside_another_message(tmp_path: Path) -> None:
    tail = run_failing("open('/data/train/labels.csv')\n", tmp_path).splitlines()
    log = "[E 2026-02-21 09:41:13.738 ServerApp] Uncaught exception in the pipeline run\n" + \
          "".join(f"    {line}\n" for line in tail)
    found = final_exception(log)
    assert found is not None and found[0] == "FileNotFoundError"
    assert classify(context_with_log(log)).category == "data-missing"


def test_frames_that_lost_their_indentation_and_a_tail_cut_inside_a_traceback(tmp_path: Path) -> None:
    tail = run_failing("def loss(n):\n    return 1 / n\nloss(0)\n", tmp_path).splitlines()
    flat = "\n".join(line.lstrip() for line in tail)  # a paste that lost every indentation
    assert final_exception(flat) == ("ZeroDivisionError", "ZeroDivisionError: division by zero")
    cut = "\n".join(tail[1:])  # the tail starts below the "Traceback" line
    from hera_flows.steps.triage.classify import final_exceptions

    assert final_exceptions(cut) == [("ZeroDivisionError", "ZeroDivisionError: division by zero")]


def test_ipython_tracebacks_name_the_type_in_the_header() -> None:
    log = ("EntryNotFoundError                        Traceback (most recent call last)\n"
           "/usr/local/lib/python3.12/dist-packages/huggingface_hub/file_download.py in hf_hub_download(...)\n")
    assert classify(context_with_log(log)).category == "data-missing"


def test_a_wrapper_naming_its_cause_is_read_through() -> None:
    log = """ray.exceptions.RayTaskError(OutOfMemoryError): ray::train_func() (pid=35968, ip=10.0.0.4)
  File "/app/train.py", line 41, in train_func
    loss.backward()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB
"""
    assert classify(context_with_log("Traceback (most recent call last):\n  File \"d.py\", line 1, in <module>\n"
                                     "    ray.get(ref)\n" + log)).category == "gpu-oom"


def test_an_exception_that_only_reports_a_dead_process_is_not_a_code_bug() -> None:
    head = "Traceback (most recent call last):\n  File \"run.py\", line 9, in <module>\n    main()\n"
    died = head + "ray.exceptions.RayActorError: The actor died unexpectedly before finishing this task.\n"
    assert classify(context_with_log(died)).category == "unknown"
    killed = head + "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n" \
                    "  exitcode  : -9 (pid: 1234)\n  traceback : Signal 9 (SIGKILL) received by PID 1234\n"
    assert classify(context_with_log(killed)).category == "oom"


@pytest.mark.parametrize(
    ("lines", "category"),
    [
        (["Warning  FailedCreatePodSandBox  5s  kubelet  Failed to create pod sandbox: rpc error: code = "
          "DeadlineExceeded desc = context deadline exceeded"], "infrastructure"),
        (["Warning  FailedScheduling  default-scheduler  0/41 nodes are available: 35 Insufficient cpu, "
          "4 Insufficient memory.",
          "Normal  NotTriggerScaleUp  cluster-autoscaler  pod didn't trigger scale-up (it wouldn't fit if a new node "
          "is added): 1 Insufficient nvidia.com/gpu, 1 Insufficient cpu"], "unschedulable"),
        (["Normal  NotTriggerScaleUp  cluster-autoscaler  pod didn't trigger scale-up: 2 Insufficient nvidia.com/gpu"],
         "gpu-unschedulable"),
        (["Error from server (Forbidden): pods \"x\" is forbidden: exceeded quota: team-quota"], "unschedulable"),
        (["Error from server (Forbidden): secrets is forbidden: User "
          "\"system:serviceaccount:kubeflow:pipeline-runner\" cannot create resource \"secrets\" in API group "
          "\"\" in the namespace \"kubeflow\""], "permissions"),
        (["slurmstepd: error: *** JOB 4242 ON gpu-17 CANCELLED AT 2025-01-10T15:27:25 DUE TO TIME LIMIT ***"],
         "timeout"),
        (["Reason:         Shutdown", "Message:        Node is shutting, evicting pods"], "preemption"),
    ],
)
def test_more_status_lines(lines: list[str], category: str) -> None:
    assert classify({"evidence": lines, "pods": []}).category == category


# --- more log shapes and error families (second tuning round) -------------------------------------------------


def test_a_key_error_that_pandas_raised_for_a_column_is_schema_drift(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    log = run_failing("""
        import pandas as pd
        frame = pd.DataFrame({"user": [1, 2], "clicks": [3, 4]})
        print(frame["label"])
    """, tmp_path)
    result = classify(context_with_log(log))
    assert result.category == "schema-drift"
    assert result.evidence == ["train/main: KeyError: 'label' (raised by pandas)"]
    # a row position is not a column: an integer key pandas could not find is a code bug
    positional = run_failing("""
        import pandas as pd
        series = pd.Series([1, 2, 3], index=[10, 20, 30])
        print(series[0])
    """, tmp_path)
    assert classify(context_with_log(positional)).category == "code-bug"


def test_an_ipython_key_error_raised_in_pandas_is_schema_drift() -> None:
    log = ("KeyError                                  Traceback (most recent call last)\n"
           "/opt/conda/lib/python3.10/site-packages/pandas/core/indexes/base.py in get_loc(self, key, method)\n"
           "   3080             except KeyError as err:\n"
           "-> 3081                 raise KeyError(key) from err\n"
           "\n"
           "KeyError: 'target'\n")
    assert classify(context_with_log(log)).category == "schema-drift"


def test_source_lines_that_lost_their_indentation_are_not_exceptions() -> None:
    # a paste that flattened the traceback: "x_flow: numpy.ndarray = ..." is the frame's source line
    log = ("Traceback (most recent call last):\n"
           'File "/app/detect.py", line 369, in detect\n'
           "x_flow: numpy.ndarray = self.scaler.transform(x_flow)\n"
           'File "/venv/lib/python3.10/site-packages/sklearn/utils/validation.py", line 2777, in _check_feature_names\n'
           "raise ValueError(message)\n"
           "ValueError: The feature names should match those that were passed during fit.\n")
    from hera_flows.steps.triage.classify import final_exceptions

    assert final_exceptions(log) == [
        ("ValueError", "ValueError: The feature names should match those that were passed during fit.")]
    assert classify(context_with_log(log)).category == "schema-drift"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        # Metaflow's "[run/step/task (pid N)]" after a timestamp
        ("2021-09-16 14:53:03.305 [1631793181811816/end/5 (pid 71519)] AttributeError: Flow X has no attribute 'y'",
         "AttributeError: Flow X has no attribute 'y'"),
        # docker compose's service prefix and vLLM's logger prefix
        ("vllm-1  | ERROR 11-18 18:07:28 [engine.py:366] ValueError: too many values to unpack (expected 2)",
         "ValueError: too many values to unpack (expected 2)"),
        # the CRI log format of /var/log/pods
        ("2024-05-01T10:00:00.123456789Z stderr F RuntimeError: expected scalar type Float but found Double",
         "RuntimeError: expected scalar type Float but found Double"),
        # a docker json-file line
        ('{"log":"KeyError: \'label\'\\n","stream":"stderr","time":"2024-05-01T10:00:00Z"}', "KeyError: 'label'"),
        # a line pasted as inline code, a quoted line
        ("`RuntimeError: mat1 and mat2 shapes cannot be multiplied (30812x12 and 128x64)`",
         "RuntimeError: mat1 and mat2 shapes cannot be multiplied (30812x12 and 128x64)"),
        ("> TypeError: unsupported operand", "TypeError: unsupported operand"),
    ],
)
def test_per_line_prefixes_of_collectors_and_pastes_are_taken_off(line: str, error: str) -> None:
    result = classify(context_with_log(line + "\n"))
    assert result.category == "code-bug"
    assert result.evidence == [f"train/main: {error}"]


def test_the_lines_an_exception_message_continues_on_are_read() -> None:
    # NCCL puts the CUDA error that broke the collective on the lines below the exception line
    log = ("Traceback (most recent call last):\n"
           '  File "train.py", line 9, in <module>\n'
           "    dist.all_reduce(t)\n"
           "torch.distributed.DistBackendError: NCCL error in: "
           "../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled cuda error (run with "
           "NCCL_DEBUG=INFO for details), NCCL version 2.19.3\n"
           "ncclUnhandledCudaError: Call to CUDA function failed.\n"
           "Last error:\n"
           "Cuda failure 'out of memory'\n")
    result = classify(context_with_log(log))
    assert result.category == "gpu-oom"
    assert result.evidence == ["train/main:   Cuda failure 'out of memory'"]


def test_a_worker_that_exited_unexpectedly_leaves_the_cause_to_the_log() -> None:
    log = ("ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory "
           "(shm).\n"
           "Traceback (most recent call last):\n"
           '  File "/opt/conda/lib/python3.10/site-packages/torch/utils/data/dataloader.py", line 1133, in '
           "_try_get_data\n"
           "    raise RuntimeError(f'DataLoader worker (pid(s) {pids_str}) exited unexpectedly') from e\n"
           "RuntimeError: DataLoader worker (pid(s) 4242) exited unexpectedly\n")
    result = classify(context_with_log(log))
    assert result.category == "distributed" and result.cause == "shared-memory"


def test_an_exception_that_only_says_a_task_was_cancelled_leaves_the_cause_to_the_log() -> None:
    log = ("wandb: Network error (ConnectTimeout), entering retry loop.\n"
           "Traceback (most recent call last):\n"
           '  File "/usr/lib/python3.10/asyncio/locks.py", line 214, in wait\n'
           "    await fut\n"
           "asyncio.exceptions.CancelledError\n")
    assert classify(context_with_log(log)).category == "network"


@pytest.mark.parametrize(
    ("lines", "category"),
    [
        # Kueue reports a preempted workload as an Evicted condition whose reason is Preempted
        (["reason: Preempted", "type: Evicted"], "preemption"),
        # kubectl's STATUS column of a pod the graceful node shutdown terminated
        (["pod/train-7d9b7-bvzj9   0/1     Shutdown   0          102s"], "preemption"),
        # a bare exit code 137 is a hint: the deadline that killed the pod decides
        (["exitCode: 137", "reason: DeadlineExceeded"], "timeout"),
        (["Last State:     Terminated", "Reason:       Error", "Exit Code:    137"], "oom"),
        (["Error (exit code 64): failed to find name in PATH: exec: \"exit\": executable file not found in $PATH"],
         "dependency"),
        (["Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create "
          "failed: unable to start container process: error during container init: error running hook #0"],
         "infrastructure"),
        (["Failed to pull image \"gcr.io/x/controller:0.2.2\": rpc error: code = Unknown desc = Error response from "
          "daemon: unauthorized: You don't have the needed permissions"], "image-pull"),
        (["0/1 nodes are available: 1 Insufficient tencent.com/vcuda-core."], "gpu-unschedulable"),
        (["0/4 nodes are available: 4 Insufficient google.com/tpu."], "gpu-unschedulable"),
        (["Pod Node didn't have enough resource: pods, requested: 1, used: 44, capacity: 44"], "unschedulable"),
        (["FailedBinding: no persistent volumes available for this claim and no storage class is set"],
         "unschedulable"),
        (["predictor-00002-deployment-76mg6md   0/2     Pending   0          9m12s"], "unschedulable"),
        (["The job running on agent Hosted Agent ran longer than the maximum time of 60 minutes."], "timeout"),
        (["slurmstepd: error: Detected 1 oom-kill event(s) in StepId=12.batch."], "oom"),
        (["AzureMLCompute job failed. PreemptionError: Nodes of this job got pre-empted."], "preemption"),
        (["Error syncing pod \"argo/my-pod\": pod \"argo/my-pod\" not found after refresh"], "preemption"),
    ],
)
def test_status_families(lines: list[str], category: str) -> None:
    assert classify({"evidence": lines, "pods": []}).category == category


def test_a_status_line_that_quotes_the_process_error_is_read_as_a_log_line() -> None:
    # SageMaker's FailureReason carries the training script's last error
    line = ("FailureReason: AlgorithmError: ExecuteUserScriptError: Command \"/opt/conda/bin/python3.10 train.py\" "
            "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    result = classify({"evidence": [line], "pods": []})
    assert result.category == "gpu-oom" and result.evidence == [line]


@pytest.mark.parametrize(
    ("log", "category"),
    [
        ("An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation: The specified bucket does not "
         "exist", "data-missing"),
        ("Error response from daemon: Head 'https://nvcr.io/v2/org/img/manifests/1.0': denied: "
         '{"errors": [{"code": "DENIED", "message": "Access Denied"}]}', "image-pull"),
        ("docker pull nvcr.io/nvidia/nemo:v0.9\nunauthorized: authentication required", "image-pull"),
        ("Traceback (most recent call last):\n  File \"t.py\", line 1, in <module>\n"
         "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with "
         "shape[1024,1024] and type float on /job:localhost/replica:0/task:0/device:CPU:0 by allocator cpu", "oom"),
        ("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`", "gpu-oom"),
        ("jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Failed to allocate request for 3.00GiB",
         "gpu-oom"),
        ("[2021-05-08 19:48:35,385] {timeout.py:36} ERROR - Process timed out, PID: 10082", "timeout"),
        ("docker: Error response from daemon: OCI runtime create failed: container_linux.go:345: starting container "
         "process caused \"process_linux.go:424: container init caused: running prestart hook 1: error running hook: "
         "exit status 1\"", "infrastructure"),
        ("RuntimeError: CUDA error: uncorrectable ECC error encountered", "infrastructure"),
        ("mlflow.exceptions.MlflowException: Model is missing inputs ['sepal_length_cm']. Note that there were "
         "extra inputs: [0]", "schema-drift"),
        ("AnalysisException: cannot resolve 'superstore.email' given input columns: [superstore.Cohort]",
         "schema-drift"),
        ("{\"message\": \"Exception [Connection was closed before we received a valid response from endpoint URL: "
         "\\\"http://minio:9000/bucket/x.ckpt\\\"]\"}", "network"),
        ("AttributeError: module 'numpy' has no attribute 'float'.", "dependency"),
        ("psycopg2.errors.UndefinedTable: relation \"features\" does not exist", "data-missing"),
        # an orchestrator's exception that quotes Kubernetes' verdict
        ("airflow.exceptions.AirflowException: Pod train-1a2b returned a failure: {'phase': 'Failed', 'reason': "
         "'Evicted', 'message': 'The node was low on resource: memory.'}", "eviction"),
        ("kubernetes.client.exceptions.ApiException: (403) Reason: Forbidden: pods \"train\" is forbidden: exceeded "
         "quota: team-quota, requested: requests.cpu=8", "unschedulable"),
        ("The runner has received a shutdown signal. This can happen when the runner service is stopped,",
         "preemption"),
        ("**Killed**", "oom"),
        ("subprocess.CalledProcessError: Command '['python', 'train.py']' returned non-zero exit status 137.", "oom"),
        ("2024-01-01 WARNING services.py:1996 -- WARNING: The object store is using /tmp instead of /dev/shm because "
         "/dev/shm has only 67108864 bytes available.\nFileNotFoundError: [Errno 2] No such file or directory: 'x'",
         "data-missing"),
        ("(raylet) A worker died or was killed while executing a task by an unexpected system error.", "unknown"),
    ],
)
def test_log_families(log: str, category: str) -> None:
    assert classify(context_with_log(log + "\n")).category == category


# --- round 3: families as the other tools print them ------------------------------------------------------------
# Each family was generalised from a corpus case; these are the OTHER spellings of the same root cause (cited in the
# rule's comment in classify.py), and the look-alikes that must not be pulled in.


@pytest.mark.parametrize(
    ("lines", "category"),
    [
        # runc refusing to start a container whose limit is too small for its init (a CreateContainerError)
        (["Error: container create failed: runc create failed: unable to start container process: container init "
          "was OOM-killed (memory limit too low?)", "train-0   0/1   CreateContainerError   0   2m"], "oom"),
        # the MPI operator's job condition counts its evicted workers
        (["reason: MPIJobEvicted", "message: 2/4 workers are evicted"], "eviction"),
        # spot interruption handlers: Karpenter (older message kind), the AWS Node Termination Handler
        (['{"message":"initiating delete from interruption message","messageKind":"SpotInterruptionKind"}'],
         "preemption"),
        (['Node successfully cordoned and drained reason="Spot ITN received. Instance will be interrupted at '
          '2025-05-16T08:31:24Z"'], "preemption"),
        (["slurmstepd: error: *** JOB 81 ON gpu-07 CANCELLED AT 2024-03-01T10:00:00 DUE TO JOB REQUEUE ***"],
         "preemption"),
        # a Slurm job or step cancelled with no reason given is a hint only: a stated reason decides
        (["slurmstepd: error: *** JOB 81 ON gpu-07 CANCELLED AT 2024-03-01T10:00:00 ***"], "preemption"),
        (["slurmstepd: error: *** JOB 81 ON gpu-07 CANCELLED AT 2024-03-01T10:00:00 DUE TO TIME LIMIT ***"],
         "timeout"),
        (["slurmstepd: error: *** JOB 81 ON gpu-07 CANCELLED AT 2024-03-01T10:00:00 DUE TO NODE FAILURE, SEE "
          "SLURMCTLD LOG FOR DETAILS ***"], "infrastructure"),
        # the runtime timing out or lacking what the node was configured for is the node's, not the network's
        (["Warning  FailedCreatePodSandBox  kubelet  Failed to create pod sandbox: rpc error: code = DeadlineExceeded "
          "desc = context deadline exceeded"], "infrastructure"),
        (['failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create '
          'failed: unable to start container process: exec: "nvidia-container-runtime-hook": executable file not '
          "found in $PATH: unknown"], "infrastructure"),
        (['Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime '
          'for "nvidia" is configured'], "infrastructure"),
        # ...but a command the image lacks stays the image's
        (['Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc '
          'create failed: unable to start container process: exec: "python3": executable file not found in $PATH: '
          "unknown"], "dependency"),
        # HAMi's vGPU scheduler extender, with its reason codes
        (["Warning  FilteringFailed  16s  hami-scheduler  2 nodes CardInsufficientMemory(node-a,node-b)"],
         "gpu-unschedulable"),
        (["Warning  FilteringFailed  11s  hami-scheduler  no available node, 3 nodes do not meet"],
         "gpu-unschedulable"),
        # Knative resolving a private predictor image (KServe) against a registry that refuses it; a token service
        (['Revision "m-predictor-00001" failed with message: Unable to fetch image "gcr.io/p/m:1": failed to resolve '
          "image to digest: HEAD https://gcr.io/v2/p/m/manifests/1: unsupported status code 401."], "image-pull"),
        (["GET https://ghcr.io/token?scope=repository:acme/trainer:pull&service=ghcr.io: DENIED: requested access "
          "to the resource is denied"], "image-pull"),
        (["slurmstepd: error: pyxis: failed to import docker image"], "image-pull"),
        # ...but the same resolution failing to reach the registry is the network
        (['Unable to fetch image "kserve/sklearnserver:v0.11.2": failed to resolve image to digest: Get '
          '"https://index.docker.io/v2/": dial tcp 3.219.239.5:443: i/o timeout'], "network"),
    ],
)
def test_round3_status_families(lines: list[str], category: str) -> None:
    assert classify({"evidence": lines, "pods": []}).category == category


@pytest.mark.parametrize(
    ("log", "category"),
    [
        # Ray: the memory monitor's summary (host memory), a node that died under actors or tasks
        ("(raylet) node_manager.cc:3049: 10 Workers (tasks / actors) killed due to memory pressure (OOM), 0 Workers "
         "crashed due to other reasons at node (ID: e5d9, IP: 10.0.62.231)", "oom"),
        ("ray.exceptions.RayTaskError: Task failed due to the node dying.\n\nThe node (IP: 10.0.1.2, node ID: ab12) "
         "where this task was running crashed unexpectedly.", "infrastructure"),
        # ...unless Ray says the node was preempted (ActorDiedError.preempted; the line below the exception's)
        ("Traceback (most recent call last):\n  File \"train.py\", line 9, in <module>\n    ray.get(ref)\n"
         "ray.exceptions.ActorDiedError: The actor died because its node has died. Node Id: 9337f5\n"
         "\tthe actor's node was preempted: spot termination", "preemption"),
        # a preempted TPU as TensorFlow and the TPU runtime say it
        ("INFO:tensorflow:ShutdownHook: lame workers found: HeartbeatManager(/job:worker/replica:0/task:3)",
         "preemption"),
        ("ERROR: the TPU was preempted, restarting from the last checkpoint", "preemption"),
        # credentials refused, beyond the exception types
        ("tensorflow.python.framework.errors_impl.UnauthenticatedError: Could not authenticate with GCS",
         "permissions"),
        ("io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: GET at: "
         "https://kubernetes.default.svc/api/v1/namespaces/ml/pods. Message: Forbidden!Configured service account "
         "doesn't have access. Service account may have been revoked.", "permissions"),
        ('psycopg2.OperationalError: connection to server at "db" (10.0.0.5), port 5432 failed: FATAL:  password '
         'authentication failed for user "trainer"', "permissions"),
        ("requests.exceptions.HTTPError: HTTP status code 403 returned by https://mlflow.internal/api/2.0/mlflow/runs",
         "permissions"),
        # an input that is missing, in loaders' own words (not a missing column, not a missing executable)
        ("ValueError: File /data/sft/train.jsonl not found.", "data-missing"),
        ("java.io.FileNotFoundException: No files matched spec: gs://acme-features/2026-11-21/*.avro",
         "data-missing"),
        ("ValueError: Dataset column 'label' not found in ['text', 'score']", "schema-drift"),
        # a schema that changed: Hugging Face datasets, pyarrow
        ("datasets.exceptions.DatasetGenerationCastError: An error occurred while generating the dataset\n\n"
         "All the data files must have the same columns, but at some point there are 1 new columns ({'hint'})",
         "schema-drift"),
        ("ValueError: Column to remove ['label'] not in the dataset. Current columns in the dataset: ['text']",
         "schema-drift"),
        # packages that do not fit each other; an import wrapper that names its cause on the next line
        ("TypeError: Descriptors cannot be created directly.\nIf this call came from a _pb2.py file, your generated "
         "code is out of date and must be regenerated with protoc >= 3.19.0.", "dependency"),
        ("pkg_resources.ContextualVersionConflict: (numpy 2.0.1, Requirement.parse('numpy<2'), {'tensorflow'})",
         "dependency"),
        ("RuntimeError: Error building extension 'fused_adam'", "dependency"),
        ("RuntimeError: Failed to import transformers.trainer because of the following error (look up to see its "
         "traceback):\nNo module named 'deepspeed'", "dependency"),
        ("RuntimeError: Failed to import transformers.trainer because of the following error (look up to see its "
         "traceback):", "unknown"),
        # a tensor shape mismatch printed without its exception line (TensorFlow graph errors, PyTorch)
        ("Node: 'model/dense/MatMul'\nMatrix size-incompatible: In[0]: [32,784], In[1]: [128,10]\n"
         "\t [[{{node model/dense/MatMul}}]] [Op:__inference_train_function_912]", "code-bug"),
        ("size mismatch for fc.weight: copying a param with shape torch.Size([10, 512]) from checkpoint, the shape "
         "in current model is torch.Size([2, 512]).", "code-bug"),
    ],
)
def test_round3_log_families(log: str, category: str) -> None:
    assert classify(context_with_log(log + "\n")).category == category


def test_a_tqdm_bar_with_no_total_glued_onto_the_next_output_is_cut_off() -> None:
    log = "Generating train split: 173687 examples [00:04, 39483.40 examples/s]TypeError: 'NoneType' object is " \
          "not subscriptable\n"
    result = classify(context_with_log(log))
    assert result.category == "code-bug"
    assert result.evidence == ["train/main: TypeError: 'NoneType' object is not subscriptable"]


# --- the fallback: only the code's own programming errors are `code-bug` ---------------------------------------


def test_a_type_error_in_the_pipelines_own_code_is_a_code_bug(tmp_path: Path) -> None:
    log = run_failing("""
        def scale(features, factor):
            return [f * factor for f in features]
        print(scale(None, 2))
    """, tmp_path)
    result = classify(context_with_log(log))
    assert result.category == "code-bug"
    assert result.evidence == ["train/main: TypeError: 'NoneType' object is not iterable"]


def test_a_librarys_own_exception_is_unknown_not_a_code_bug(tmp_path: Path) -> None:
    """A library's own error type says the library (or the service behind it) failed, not why: `unknown` with the
    evidence, never "fix the code"."""
    log = run_failing("""
        class ClientError(Exception):
            pass
        raise ClientError("An error occurred (ThrottlingException) when calling the PutObject operation")
    """, tmp_path)
    result = classify(context_with_log(log))
    assert result.category == "unknown"
    assert result.evidence == ["node train: Error (exit code 1)"]  # the status evidence goes to the owner


@pytest.mark.parametrize(
    ("line", "category"),
    [
        # a vague RuntimeError, a bare Exception, a Java error behind Py4J, a library's own type: no root cause
        ("RuntimeError: Job 1394 failed: see the driver log", "unknown"),
        ("Exception: pipeline step returned a non-zero status", "unknown"),
        ("py4j.protocol.Py4JJavaError: An error occurred while calling o123.save.", "unknown"),
        ("mlflow.exceptions.MlflowException: Run 'abc' not active", "unknown"),
        # a ValueError or RuntimeError whose message says the code's tensors disagree is the code's
        ("RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and "
         "cpu!", "code-bug"),
        ("ValueError: Expected input batch_size (60) to match target batch_size (10).", "code-bug"),
        ("RuntimeError: Error(s) in loading state_dict for ResNet:", "code-bug"),
        # the cause a wrapper names
        ("ray.exceptions.RayTaskError(AttributeError): ray::Trainer.train() (pid=1, ip=10.0.0.1)", "code-bug"),
        ("AssertionError", "code-bug"),
        ("UnboundLocalError: local variable 'loss' referenced before assignment", "code-bug"),
    ],
)
def test_the_fallback_takes_programming_errors_only(line: str, category: str) -> None:
    log = f'Traceback (most recent call last):\n  File "/app/train.py", line 9, in <module>\n    main()\n{line}\n'
    assert classify(context_with_log(log)).category == category


# --- round 4 of the rules: error families, each with other tools' spellings and a look-alike -------------------


@pytest.mark.parametrize(
    ("log", "category"),
    [
        # torch's CPU allocator, TH (torch7 lib/TH/THGeneral.c) and c10 (c10/core/impl/alloc_cpu.cpp): host memory
        ("RuntimeError: $ Torch: not enough memory: you tried to allocate 72GB. Buy new RAM!", "oom"),
        ("nn/THNN.lua:109: $ Torch: not enough memory: you tried to reallocate 11GB. Buy new RAM!", "oom"),
        ("RuntimeError: [enforce fail at alloc_cpu.cpp:83] data. DefaultCPUAllocator: not enough memory: you tried "
         "to allocate 12000000000 bytes.", "oom"),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "gpu-oom"),  # the GPU's
        # torch's shared-memory tensors in /dev/shm (DataLoader workers)
        ("RuntimeError: unable to write to file </torch_76_3625483894> at /pytorch/aten/src/TH/THAllocator.c:383",
         "distributed"),
        ("RuntimeError: unable to write to file </torch_739_144252761_4>: No space left on device (28)",
         "distributed"),
        ("RuntimeError: unable to mmap 4096 bytes from file </torch_12_34>: Cannot allocate memory (12)",
         "distributed"),
        # TensorFlow's Example parser: the records lack a feature the parse spec requires
        ("InvalidArgumentError: Feature: img_raw (data type: string) is required but could not be found.",
         "schema-drift"),
        ("W tensorflow/core/framework/op_kernel.cc:1830] OP_REQUIRES failed at example_parsing_ops.cc:98 : "
         "INVALID_ARGUMENT: Feature: roadgraph_samples/dir (data type: float) is required but could not be found.",
         "schema-drift"),
        # pyarrow's schema checks and Arrow's JSON reader
        ("ValueError: Schema in s3://lake/events/part.1.parquet was different.", "schema-drift"),
        ("ValueError: Schema at index 2 was different:", "schema-drift"),
        ("pyarrow.lib.ArrowTypeError: Item has schema\nuser: int64\nwhich does not match expected schema\nuser: "
         "string", "schema-drift"),
        ("ArrowInvalid: JSON parse error: Column(/ner/[]) changed from number to string in row 0", "schema-drift"),
        # a missing input in Hugging Face datasets, Keras and HDF5
        ("datasets.exceptions.DataFilesNotFoundError: No (supported) data files found in /data/mmmu", "data-missing"),
        ("OSError: No file or directory found at gs://bucket/models/churn/7", "data-missing"),
        ("OSError: Unable to open file (unable to open file: name = './ckpt/vgg16.h5', errno = 2, error message = "
         "'No such file or directory', flags = 0, o_flags = 0)", "data-missing"),
        # the step's entry script is not in the image (CPython's own message), unlike a data file it opens
        ("python: can't open file '/var/mnist.py': [Errno 2] No such file or directory", "dependency"),
        ("/usr/bin/python3.10: can't open file '/app/train.py': [Errno 2] No such file or directory", "dependency"),
        ("FileNotFoundError: [Errno 2] No such file or directory: '/data/train.csv'", "data-missing"),
        # NumPy 2 under a module compiled for NumPy 1, wrapped over lines as numpy prints it
        ("A module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.0.0 as it may crash.", "dependency"),
        # a launcher's, a CI runner's and Ray Tune's own time limits
        ("Exception: Timeout waiting for kubeflow.org/tfjobs mnist-1 in namespace ml to enter one of the conditions "
         "['Succeeded', 'Failed'].", "timeout"),
        ("ERROR: Job failed: execution took longer than 3600 seconds", "timeout"),
        ("INFO stopper.py:350 -- Reached timeout of 180 seconds. Stopping all trials.", "timeout"),
        ("urllib3.exceptions.ReadTimeoutError: Read timed out waiting for the response", "network"),  # not a limit
        # Ray's autoscaler and pending-task warning: no node type for the request; with a GPU in it, no GPU
        ("WARNING resource_demand_scheduler.py:838 -- The autoscaler could not find a node type to satisfy the "
         "request: [{'CPU': 1.0}]. Please specify a node type with the necessary resources.", "unschedulable"),
        ("WARNING resource_demand_scheduler.py:838 -- The autoscaler could not find a node type to satisfy the "
         "request: [{'GPU': 1.0}].", "gpu-unschedulable"),
        ("WARNING worker.py:1245 -- The actor or task with ID ff01 cannot be scheduled right now.\n"
         "  | Required resources for this actor or task: {GPU: 1.000000}", "gpu-unschedulable"),
        # a GPU that dropped off the bus (nvidia-smi), like an Xid
        ("Unable to determine the device handle for GPU0000:03:00.0: Unknown Error", "infrastructure"),
    ],
)
def test_round4_families(log: str, category: str) -> None:
    assert classify(context_with_log(log + "\n")).category == category


@pytest.mark.parametrize(
    ("status", "category"),
    [
        # tkestack/gpu-admission's quota filter, like HAMi's reason codes: no GPU for the pod
        ("Warning  FailedScheduling  3s  default-scheduler  0/2 nodes are available: 2 ExceedsGPUQuota.",
         "gpu-unschedulable"),
        ("Warning  FailedScheduling  3s  default-scheduler  0/2 nodes are available: 2 Insufficient cpu.",
         "unschedulable"),
        # dstack's termination reason for a spot instance the cloud took back
        ("Run failed with error code INTERRUPTED_BY_NO_CAPACITY. Check CLI and server logs for more details.",
         "preemption"),
        # older kubelets' sandbox event ("Failed create pod sandbox: %v"), and the newer spelling
        ("Warning  FailedCreatePodSandBox  6m  kubelet, 10.0.0.8  Failed create pod sandbox: rpc error: code = "
         "Unknown desc = failed to set up sandbox container network", "infrastructure"),
        ("failed create pod sandbox", "infrastructure"),
        # a container-runtime call that ran out of time is the node's, a pull that timed out is the network's
        ("Warning  Failed  10m  kubelet, 10.104.110.86  Error: context deadline exceeded", "infrastructure"),
        ("rpc error: code = DeadlineExceeded desc = context deadline exceeded", "infrastructure"),
        ("Warning  Failed  2m  kubelet  Failed to pull image \"ghcr.io/acme/train:1\": rpc error: code = Unknown "
         "desc = failed to pull and unpack image: dial tcp 140.82.112.33:443: i/o timeout", "network"),
    ],
)
def test_round4_status_families(status: str, category: str) -> None:
    assert classify({"pattern": "failure_triage", "evidence": [status], "pods": []}).category == category


def test_a_key_error_that_hugging_face_datasets_raised_for_a_column_is_schema_drift() -> None:
    frames = ('Traceback (most recent call last):\n'
              '  File "/app/sft.py", line 40, in tokenize\n'
              '    return tokenizer(element["text"])\n'
              '  File "/usr/lib/python3.11/site-packages/datasets/formatting/formatting.py", line 277, in __getitem__\n'
              '    value = self.data[key]\n')
    result = classify(context_with_log(frames + "KeyError: 'text'\n"))
    assert result.category == "schema-drift"
    assert result.evidence == ["train/main: KeyError: 'text' (raised by datasets)"]
    # the same key looked up in the pipeline's own dict is the code's
    own = frames.rsplit('  File "/usr/lib', 1)[0] + "KeyError: 'text'\n"
    assert classify(context_with_log(own)).category == "code-bug"


# --- rounds 4 and 5: families as the other tools print them -------------------------------------------------------
# As for round 3: the other spellings of each family added for a round-4 or round-5 case (cited in classify.py), and
# the look-alikes that must stay out.


@pytest.mark.parametrize(
    ("lines", "category"),
    [
        # batch systems' time limits: Moab, Tekton
        (["MOAB_INFO:  job exceeded wallclock limit"], "timeout"),
        (['PipelineRun "train-run-x7" was timed out'], "timeout"),
        # Google Batch's reserved exit code for a Spot VM preemption, and the Pipelines API's preemption as Cromwell
        # reads it (JES code 14); code 13 is an unexpected termination, preemption only on a preemptible VM: unknown
        (['Task state is updated from RUNNING to FAILED on zones/us-central1-a/instances/123 due to Spot VM '
          'preemption with exit code 50001.'], "preemption"),
        (["Process `align (3)` terminated with an error exit status (50001)"], "preemption"),
        (["Process `align (3)` terminated with an error exit status (500)"], "unknown"),
        (["Task wf.align:NA:1 failed. The job was stopped before the command finished. PAPI error code 10. 14: VM "
          "ggp-1 stopped unexpectedly."], "preemption"),
        (["Task wf.align:NA:1 failed. The job was stopped before the command finished. PAPI error code 10. 13: VM "
          "ggp-1 stopped unexpectedly."], "unknown"),
        # kube-scheduler deletes a running pod only to preempt it; another deleter says nothing
        (['{"kind":"Event","verb":"delete","user":{"username":"system:kube-scheduler","groups":["system:authenticated"'
          ']},"objectRef":{"resource":"pods","name":"train-0"}}'], "preemption"),
        (['{"kind":"Event","verb":"delete","user":{"username":"system:serviceaccount:kube-system:generic-garbage-'
          'collector"},"objectRef":{"resource":"pods","name":"train-0"}}'], "unknown"),
        # the kubelet's eviction manager, before and since structured logging
        (['I0913 15:20:47.884 eviction_manager.go:346] "Eviction manager: attempting to reclaim" '
          'resourceName="ephemeral-storage"'], "eviction"),
        # the kubelet admitting a pod whose GPUs are taken; the same for CPUs is no GPU shortage
        (["Reason:  OutOfnvidia.com/gpu"], "gpu-unschedulable"),
        (["Reason:  OutOfcpu"], "unschedulable"),
        # Google Cloud's quota metrics: a GPU metric is a GPU shortage, a CPU metric is not
        (["The following quota metrics exceed quota limits: aiplatform.googleapis.com/"
          "custom_model_training_nvidia_a100_gpus"], "gpu-unschedulable"),
        (["The following quota metrics exceed quota limits: aiplatform.googleapis.com/custom_model_training_cpus"],
         "unknown"),
        (["sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification"],
         "gpu-unschedulable"),
        # the autoscaler's verdict is a hint: what it says decides only when the scheduler said nothing
        (["pod didn't trigger scale-up: 2 Insufficient nvidia.com/gpu"], "gpu-unschedulable"),
        (["pod didn't trigger scale-up: 2 Insufficient cpu"], "unschedulable"),
        (["0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
          "pod didn't trigger scale-up: 2 Insufficient nvidia.com/gpu"], "unschedulable"),
        # an exit code 137 reported as a field is the hint it is as a sentence
        (["lastFailureInfo:", "exitCode: 137"], "oom"),
        # kubectl's message for a container waiting on an image that does not come
        (['Error from server (BadRequest): container "main" in pod "train-0" is waiting to start: trying and '
          "failing to pull image"], "image-pull"),
    ],
)
def test_round5_status_families(lines: list[str], category: str) -> None:
    assert classify({"evidence": lines, "pods": []}).category == category


@pytest.mark.parametrize(
    ("log", "category"),
    [
        ("=>> PBS: job killed: walltime 3605 exceeded limit 3600", "timeout"),
        ("Caused by:\n  Process exceeded running time limit (2h)", "timeout"),
        ("submitit.core.utils.UncompletedJobError: Job not requeued because: timed-out and not checkpointable.",
         "timeout"),
        ("I 09-12 22:49:49 controller.py:545] Cluster is preempted or failed. Recovering...", "preemption"),
        ("jaxlib.xla_extension.XlaRuntimeError: Resource exhausted: Out of memory while trying to allocate "
         "2147483648 bytes.", "gpu-oom"),
        ("[rank1]:[E528 08:52:46.16 ProcessGroupGloo.cpp:145] Gloo connectFullMesh failed with "
         "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:144] no error", "distributed"),
        ("RuntimeError: DataLoader worker (pid 47) is killed by signal: Bus\nerror. It is possible that dataloader's "
         "workers are out of shared\nmemory.", "distributed"),
        ("train.py: error: the following arguments are required: --data-dir", "code-bug"),
        ("cannot import name 'cached_download' from 'huggingface_hub' (/usr/lib/python3/huggingface_hub/__init__.py)",
         "dependency"),
        ('F0316 10:22:06.071 main.go:119] Failed to collect logs: open /var/log/metrics.log: no such file or directory',
         "data-missing"),
        ("OSError: data/train_features.csv not found.", "data-missing"),
        ("ValueError: The features can't be aligned because the key label of features {'label': Value(dtype='int64')}"
         " has unexpected type - Value(dtype='string')", "schema-drift"),
        ("pyarrow.lib.ArrowInvalid: Unable to merge: Field user_id has incompatible types: int64 vs string",
         "schema-drift"),
        ("ValueError: Schema in partition[day=14, hour=9] s3://bucket/events/day=14/part-0.parquet was different.",
         "schema-drift"),
        # MPICH's report of a SIGKILLed rank
        ("=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n=   PID 92248 RUNNING AT node-3\n"
         "=   EXIT CODE: 9", "oom"),
    ],
)
def test_round5_log_families(log: str, category: str) -> None:
    assert classify(context_with_log(log + "\n")).category == category


# --- round 6: families as the other tools print them --------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "category"),
    [
        (["Job exceeded its walltime limit. Job was aborted"], "timeout"),
        # GNU timeout's status for a command it timed out is a hint; any other status says nothing
        (["exit status 124"], "timeout"),
        (["exit status 125"], "unknown"),
        (['<a n="MyType"><s>JobEvictedEvent</s></a>'], "preemption"),
        (["11/06/2019 14:54:53  L    Simulation: preempting job"], "preemption"),
        (["(ReqNodeNotAvail, UnavailableNodes:gpu-[01-04])"], "unschedulable"),
        (["failed to save outputs: Error response from daemon: No such container: 77f84d93"], "infrastructure"),
        # Kubernetes' RBAC refusal, for any verb
        (['User "system:serviceaccount:ml:pipeline-runner" cannot patch resource "workflows" in API group '
          '"argoproj.io" in the namespace "ml"'], "permissions"),
    ],
)
def test_round6_status_families(lines: list[str], category: str) -> None:
    assert classify({"evidence": lines, "pods": []}).category == category


@pytest.mark.parametrize(
    ("log", "category"),
    [
        ("modal.exception.FunctionTimeoutError: Task's current input in-abc hit its timeout of 600s", "timeout"),
        ("The task with ID 00ab is infeasible and cannot currently be executed. It requires {CPU,1.000000},"
         "{GPU,2.000000} for execution and {CPU,1.000000},{GPU,2.000000} for placement.", "gpu-unschedulable"),
        # ...the same for CPUs only is no GPU shortage
        ("The task with ID 00ab is infeasible and cannot currently be executed. It requires {CPU,64.000000} for "
         "execution and {CPU,64.000000} for placement.", "unknown"),
        ("Error: No available node types can fulfill resource request {'GPU': 4.0, 'CPU': 1.0}. Add suitable node "
         "types to this cluster to resolve this issue.", "gpu-unschedulable"),
        (" {'CPU': 1.0, 'GPU': 1.0} * 2 (PACK): 1+ pending placement groups", "gpu-unschedulable"),
        ('{"level":"ERROR","logger":"controller.provisioner","message":"could not schedule pod, incompatible with '
         'nodepool \\"gpu\\", no instance type satisfied resources {\\"cpu\\":\\"4\\",\\"nvidia.com/gpu\\":\\"4\\"} '
         'and requirements karpenter.sh/nodepool In [gpu]"}', "gpu-unschedulable"),
        ('{"level":"ERROR","logger":"controller.provisioner","message":"could not schedule pod, incompatible with '
         'nodepool \\"default\\", incompatible requirements, label \\"team\\" does not have known values"}',
         "unschedulable"),
        ("[2024-01-01 10:00:00,000 C 149 149] node_manager.cc:170: This node has beem marked as dead.",
         "infrastructure"),
        ("mlflow.exceptions.MlflowException: Run 'a1b2c3d4e5' not found", "data-missing"),
        ("mlflow.exceptions.RestException: RESOURCE_DOES_NOT_EXIST: Registered Model with name=fraud not found",
         "data-missing"),
        ("curl: Couldn't resolve host 'minio.ml.svc'", "network"),
        ("Failed to access the Metadata store. Exception: 'DNS resolution failed'", "network"),
        ("E xla_util.cc:88] RESOURCE_EXHAUSTED: Attempting to reserve 12.5G at the bottom of memory.", "gpu-oom"),
        # zsh's job control reporting a SIGKILLed job, as bash's "line N: PID Killed"
        ("[2]    4711 killed     python train.py --epochs 10", "oom"),
        # a plain-text tqdm bar that the kernel's "Killed" was glued onto
        ("map:  65% 2207000/3382137 [03:08<01:16, 15381.54 examples/s]Killed", "oom"),
        # buildkit fetching a pull token for a base image from the registry's token service
        ("ERROR: failed to solve: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
         "image-pull"),
        # an error line by itself continues on the lines below it (NCCL's "Last error:")
        ("torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1691, unhandled cuda error\n"
         "ncclUnhandledCudaError: Call to CUDA function failed.\nLast error:\nCuda failure 2 'out of memory'",
         "gpu-oom"),
        # ...but not onto another error line
        ("ValueError: could not convert string to float: 'n/a'\nKeyError: 'label'", "code-bug"),
    ],
)
def test_round6_log_families(log: str, category: str) -> None:
    assert classify(context_with_log(log + "\n")).category == category
