"""The builtin promotion agent on realistic GitOps repositories: exact diffs, KServe schema validity, idempotency."""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.cli import main as cli_main
from hera_flows.steps import builtin_agent as builtin
from hera_flows.steps.common import StepError
from hera_flows.steps.gitrepo import run_git
from hera_flows.steps.model_cards import end_marker, start_marker
from hera_flows.steps.promotion.editor import promote
from tests.support.settings import generated_flags, promotion_options

FRAUD = """\
# Fraud detector: the online scoring service.
# Promotions arrive as pull requests from hera-flows; review the metrics in model-cards/.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud-detector
  namespace: risk   # production namespace
  labels:
    team: "risk"
  annotations:
    serving.kserve.io/deploymentMode: "RawDeployment"
    hera-flows.io/mlflow-model: fraud-detector
    hera-flows.io/mlflow-version: "6"

spec:
  predictor:
    # Scale between one and three pods.
    minReplicas: 1
    maxReplicas: 3   # raise before Black Friday
    serviceAccountName: fraud-detector-sa
    model:
      modelFormat:
        name: sklearn
      protocolVersion: v2
      runtime: kserve-mlserver
      runtimeVersion: '1.3.5'   # pinned, see RUNBOOK.md
      storageUri: "s3://mlflow-artifacts/1/models/m-6a1f/artifacts"

      resources:
        requests: {cpu: "500m", memory: 1Gi}
        limits:
          cpu: "1"
          memory: 2Gi
"""

# Two documents, the InferenceService second, found by name; no annotations, replicas or resources yet.
CHURN = """\
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: churn-model   # same name as the model, different kind
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: churn-model
spec:
  predictor:
    serviceAccountName: churn-model
    model:
      modelFormat: {name: mlflow}
      storageUri: gs://ml/churn/1
"""

# The older framework-specific predictor form.
LEGACY = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
spec:
  predictor:
    sklearn:
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
      resources:
        limits: {cpu: "1", memory: 1Gi}
"""


def context(model: str = "fraud-detector", version: str = "7", **deployment: Any) -> dict[str, Any]:
    storage = (
        "s3://mlflow-artifacts/1/models/m-7b2e/artifacts" if model == "fraud-detector" else f"gs://ml/{model}/{version}"
    )
    return {
        "pattern": "promotion",
        "model": model,
        "version": version,
        "alias": "champion",
        "model_version": {
            "name": model, "version": version, "source": "models:/m-7b2e", "run_id": "4f1c0a9e2b7d",
            "model_id": "m-7b2e", "storage_uri": storage, "tags": {}, "aliases": ["champion"],
            "description": "Gradient boosting, retrained on October data", "creation_timestamp": 1760000000000,
        },
        "metrics": {"roc_auc": 0.9412, "accuracy": 0.9123, "f1": 0.8},
        "params": {"max_depth": "6"},
        "deployment": {"runtime_version": None, "gpu_type": None, "gpu_count": None, "replica_min": None,
                       "replica_max": None, "cpu": None, "memory": None, **deployment},
        "serving": {"manifest_path": "inference/fraud-detector.yaml", "current_version": "6",
                    "current_storage_uri": "s3://mlflow-artifacts/1/models/m-6a1f/artifacts",
                    "metrics": {"roc_auc": 0.93, "accuracy": 0.9123}},
        "deltas": {
            "accuracy": {"new": 0.9123, "old": 0.9123, "delta": 0.0},
            "f1": {"new": 0.8, "old": None, "delta": None},
            "roc_auc": {"new": 0.9412, "old": 0.93, "delta": 0.0112},
        },
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "workspace" / "repo"
    (root / "inference" / "batch").mkdir(parents=True)
    (root / "inference" / "fraud-detector.yaml").write_text(FRAUD)
    (root / "inference" / "batch" / "churn.yaml").write_text(CHURN)
    (root / "inference" / "iris.yml").write_text(LEGACY)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    return root


def commit_all(root: Path) -> None:
    run_git(["init", "--quiet", "--initial-branch=main"], cwd=root)
    run_git(["add", "--all"], cwd=root)
    run_git(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "base"], cwd=root)


# What generate writes for the promotion's agent container; a test's own flags come after and win.
AGENT_FLAGS = generated_flags("agent-builtin", template="mlflow-promotion")


def run_agent(root: Path, ctx: dict[str, Any], *flags: str) -> str:
    workspace = root.parent
    (workspace / "context.json").write_text(json.dumps(ctx))
    assert builtin.main([*AGENT_FLAGS, f"--workspace={workspace}", *flags]) == 0
    return (workspace / "summary.md").read_text(encoding="utf-8")


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def line_diff(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


# --- KServe v0.20.0 schema: the step image's validator, which tests/promotion/test_kserve_schema.py proves is the
# official CRD schema from ../shared (strict: unknown fields are errors, as with kubectl's strict validation) -----


@pytest.fixture
def isvc_problems():
    from hera_flows.steps.promotion.kserve import validate_inference_service

    return validate_inference_service


def test_the_schema_check_rejects_broken_manifests(isvc_problems):
    good = yaml.safe_load(FRAUD)
    assert isvc_problems(good) == []
    bad = copy.deepcopy(good)
    bad["spec"]["predictor"]["minReplicas"] = "two"
    bad["spec"]["predictor"]["model"]["resources"]["limits"]["cpu"] = "lots"
    bad["spec"]["predictor"]["model"]["storageURI"] = "typo"
    assert len(isvc_problems(bad)) == 3


# --- the promotion edits ----------------------------------------------------------------------------------------


def test_all_tags_change_exactly_the_intended_lines(repo: Path, isvc_problems):
    ctx = context(runtime_version="1.4.0", replica_min=2, replica_max=6, gpu_type="NVIDIA-A100-SXM4-80GB",
                  gpu_count=2, cpu="2", memory="4Gi")
    before = snapshot(repo)
    summary = run_agent(repo, ctx)

    after_text = (repo / "inference" / "fraud-detector.yaml").read_text()
    assert line_diff(FRAUD, after_text) == (
        [
            '    hera-flows.io/mlflow-version: "6"',
            "    minReplicas: 1",
            "    maxReplicas: 3   # raise before Black Friday",
            "      runtimeVersion: '1.3.5'   # pinned, see RUNBOOK.md",
            '      storageUri: "s3://mlflow-artifacts/1/models/m-6a1f/artifacts"',
            '        requests: {cpu: "500m", memory: 1Gi}',
            '          cpu: "1"',
            "          memory: 2Gi",
        ],
        [
            '    hera-flows.io/mlflow-version: "7"',
            "    minReplicas: 2",
            "    maxReplicas: 6   # raise before Black Friday",
            "      runtimeVersion: '1.4.0'   # pinned, see RUNBOOK.md",
            '      storageUri: "s3://mlflow-artifacts/1/models/m-7b2e/artifacts"',
            '        requests: {cpu: "2", memory: 4Gi, nvidia.com/gpu: 2}',
            '          cpu: "2"',
            "          memory: 4Gi",
            "          nvidia.com/gpu: 2",
            "    nodeSelector:",
            "      nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB",
        ],
    )
    doc = yaml.safe_load(after_text)
    assert isvc_problems(doc) == []
    assert doc["spec"]["predictor"]["model"]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 2},
        "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 2},
    }
    # Only the manifest and the new model card differ; CI config and other manifests are untouched.
    changed = {p for p in set(before) | set(snapshot(repo)) if before.get(p) != snapshot(repo).get(p)}
    assert changed == {"inference/fraud-detector.yaml", "model-cards/fraud-detector.md"}
    assert "`spec.predictor.maxReplicas`: `3` → `6` — `deployment.replica_max` from the model version's tags." \
        in summary
    assert '`spec.predictor.nodeSelector["nvidia.com/gpu.product"]`: (absent) → `NVIDIA-A100-SXM4-80GB`' in summary
    assert "`model-cards/fraud-detector.md`: created, with the entry for this version." in summary


def test_without_deployment_tags_only_the_model_reference_changes(repo: Path, isvc_problems):
    summary = run_agent(repo, context())

    after_text = (repo / "inference" / "fraud-detector.yaml").read_text()
    assert line_diff(FRAUD, after_text) == (
        ['    hera-flows.io/mlflow-version: "6"',
         '      storageUri: "s3://mlflow-artifacts/1/models/m-6a1f/artifacts"'],
        ['    hera-flows.io/mlflow-version: "7"',
         '      storageUri: "s3://mlflow-artifacts/1/models/m-7b2e/artifacts"'],
    )
    assert isvc_problems(yaml.safe_load(after_text)) == []
    assert "Already as required (left untouched):" in summary
    assert '- `metadata.annotations["hera-flows.io/mlflow-model"]` = `fraud-detector`' in summary


def test_gpu_type_alone_means_one_gpu_and_the_selector_key_is_configurable(repo: Path, isvc_problems):
    run_agent(repo, context(model="churn-model", version="2", gpu_type="L4"),
              "--gpu-node-selector-key=cloud.google.com/gke-accelerator")

    after_text = (repo / "inference" / "batch" / "churn.yaml").read_text()
    service_account, isvc = yaml.safe_load_all(after_text)
    assert isvc_problems(isvc) == []
    assert isvc["spec"]["predictor"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "L4"}
    # No requests in the manifest: only the limit is set (Kubernetes defaults requests to limits for GPUs).
    assert isvc["spec"]["predictor"]["model"]["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    # The first document is byte-identical.
    assert after_text.split("---\n")[1] == CHURN.split("---\n")[1]
    assert line_diff(CHURN, after_text) == ([
        "      storageUri: gs://ml/churn/1",
    ], [
        "  annotations:",
        "    hera-flows.io/mlflow-model: churn-model",
        '    hera-flows.io/mlflow-version: "2"',
        "      storageUri: gs://ml/churn-model/2",
        "      resources:",
        "        limits:",
        "          nvidia.com/gpu: 1",
        "    nodeSelector:",
        "      cloud.google.com/gke-accelerator: L4",
    ])


def test_a_logged_model_version_without_run(repo: Path):
    ctx = context(model="churn-model", version="1")
    ctx["model_version"].update(run_id=None, model_id="m-b8842657d05c4ff6a9600a5b862f45fa",
                                source="models:/m-b8842657d05c4ff6a9600a5b862f45fa", description=None)
    ctx["serving"] = {"manifest_path": "inference/batch/churn.yaml", "current_version": None,
                      "current_storage_uri": None, "metrics": None}
    ctx["deltas"] = {}
    ctx["metrics"] = {}
    summary = run_agent(repo, ctx)

    card = (repo / "model-cards" / "churn-model.md").read_text()
    assert "- Logged model: `m-b8842657d05c4ff6a9600a5b862f45fa`" in card
    assert "Run:" not in card
    assert "No metrics were logged for this version." in card
    assert "served version" not in summary and "## Metrics" not in summary


def test_framework_predictors_are_edited_in_place(repo: Path, isvc_problems):
    run_agent(repo, context(model="iris", version="3", cpu="2", memory="3Gi"))

    after_text = (repo / "inference" / "iris.yml").read_text()
    doc = yaml.safe_load(after_text)
    assert isvc_problems(doc) == []
    assert doc["spec"]["predictor"]["sklearn"] == {
        "storageUri": "gs://ml/iris/3",
        "resources": {"limits": {"cpu": "2", "memory": "3Gi"}, "requests": {"cpu": "2", "memory": "3Gi"}},
    }
    assert '        limits: {cpu: "2", memory: 3Gi}' in after_text.splitlines()


def test_running_twice_gives_identical_bytes(repo: Path):
    commit_all(repo)
    ctx = context(runtime_version="1.4.0", gpu_type="A100", cpu="2")
    first_summary = run_agent(repo, ctx)
    first = snapshot(repo)
    second_summary = run_agent(repo, ctx)

    assert snapshot(repo) == first
    assert second_summary == first_summary  # compared with the base commit, not with the first run's output
    assert "`spec.predictor.model.storageUri`: `s3://mlflow-artifacts/1/models/m-6a1f/artifacts` →" in second_summary


def test_running_twice_without_git_gives_identical_files(repo: Path):
    run_agent(repo, context(replica_max=4))
    first = snapshot(repo)
    summary = run_agent(repo, context(replica_max=4))

    assert snapshot(repo) == first
    assert "the entry for this version was already up to date" in summary


def test_the_model_card_entry_is_added_then_replaced_in_place(repo: Path):
    cards = repo / "model-cards"
    cards.mkdir()
    hand_written = (
        "# Fraud detector\n\nOwner: risk team. Do not deploy on Fridays.\n\n"
        f"{start_marker('6')}\n## Version 6 — promoted as `champion`\n\nold entry\n{end_marker('6')}\n\n"
        "## Notes\n\nHand-written notes stay.\n"
    )
    (cards / "fraud-detector.md").write_text(hand_written)

    run_agent(repo, context())
    card = (cards / "fraud-detector.md").read_text()
    assert card.startswith(hand_written + "\n" + start_marker("7") + "\n## Version 7 — promoted as `champion`\n")
    assert card.endswith(end_marker("7") + "\n")
    assert "| roc\\_auc | 0.9412 | 0.93 | +0.0112 |" in card
    assert "| f1 | 0.8 | — | — |" in card
    assert "| Metric | New (v7) | Previous (v6) | Delta |" in card
    rows = [line.split(" | ")[0] for line in card.splitlines() if line.startswith("| ") and "Metric" not in line]
    assert rows == ["| accuracy", "| f1", "| roc\\_auc"]  # sorted by metric name

    # A redelivered event with corrected metrics replaces the entry, it does not add a second one.
    ctx = context()
    ctx["deltas"]["roc_auc"] = {"new": 0.95, "old": 0.93, "delta": 0.02}
    summary = run_agent(repo, ctx)
    replaced = (cards / "fraud-detector.md").read_text()
    assert replaced.count(start_marker("7")) == 1 and replaced.count(end_marker("7")) == 1
    assert "| roc\\_auc | 0.95 | 0.93 | +0.02 |" in replaced and "0.9412 | 0.93" not in replaced
    assert replaced.startswith(hand_written)
    assert "`model-cards/fraud-detector.md`: replaced the entry for this version." in summary  # no git: vs. the file


def test_hostile_registry_values_cannot_break_the_card(repo: Path):
    ctx = context()
    evil = f"x | y\n{end_marker('7')}\n<script>`"
    ctx["deltas"] = {evil: {"new": 1.0, "old": 0.5, "delta": 0.5}}
    ctx["model_version"]["source"] = "models:/``` <!-- x -->"
    run_agent(repo, ctx)
    run_agent(repo, ctx)

    card = (repo / "model-cards" / "fraud-detector.md").read_text()
    assert card.count(end_marker("7")) == 1 and card.count(start_marker("7")) == 1
    table = [line for line in card.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4  # header, separator, the hostile metric and the three others
    assert all(line.replace("\\|", "").count("|") == 5 for line in table)
    assert "<script>" not in card and "<!-- x" not in card


def test_the_cli_runs_the_step(repo: Path, capsys):
    workspace = repo.parent
    (workspace / "context.json").write_text(json.dumps(context()))
    assert cli_main(["step", "agent-builtin", "--pattern=promotion", f"--workspace={workspace}",
                     "--inference-dir=inference", "--model-cards-dir=docs/cards",
                     "--gpu-node-selector-key=nvidia.com/gpu.product"]) == 0
    assert (repo / "docs" / "cards" / "fraud-detector.md").is_file()

    (workspace / "context.json").write_text("{not json")
    assert cli_main(["step", "agent-builtin", *AGENT_FLAGS, f"--workspace={workspace}"]) == 1
    assert "is not readable JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ctx_update", "argv", "message"),
    [
        ({}, ["--pattern=no-such-pattern"], "no editor for pattern 'no-such-pattern'"),
        ({"model": "unknown-model"}, [], "Seldon Model for model 'unknown-model' under inference/"),
        ({}, ["--pattern=promotion", "--inference-dir=manifests"], "under manifests/"),
        ({"pattern": "drift"}, [], "is for pattern 'drift'"),
        ({"deployment": {"cpu": "lots"}}, [], "tag cpu='lots' is invalid: expected a Kubernetes quantity"),
        ({"deployment": {"gpu_type": "A100 80GB"}}, [], "expected a Kubernetes label value"),
        ({"deployment": {"replica_min": 5, "replica_max": 2}}, [], "replica_min must not exceed replica_max"),
        ({"deployment": {"replica_min": "three"}}, [], "whole number"),
        ({"model_version": {"storage_uri": ""}}, [], "storage_uri"),
        ({"version": "7/../../x"}, [], "not a model registry version"),
    ],
)
def test_bad_input_is_a_clear_step_error(repo: Path, ctx_update, argv, message):
    workspace = repo.parent
    ctx = {**context(), **ctx_update}
    (workspace / "context.json").write_text(json.dumps(ctx))
    before = snapshot(repo)
    with pytest.raises(StepError, match=message):
        builtin.main([*AGENT_FLAGS, f"--workspace={workspace}", *argv])
    assert snapshot(repo) == before
    assert not (workspace / "summary.md").exists()


def test_a_missing_manifest_names_the_folder(tmp_path: Path):
    with pytest.raises(StepError, match=r"under models/serving/"):
        promote(tmp_path, context(), promotion_options(inference_dir="models/serving"))


def test_a_broken_model_card_fails_before_anything_is_written(repo: Path):
    (repo / "model-cards").mkdir()
    (repo / "model-cards" / "fraud-detector.md").write_text(f"# Card\n\n{start_marker('7')}\nhalf an entry\n")
    before = snapshot(repo)
    with pytest.raises(StepError, match="without <!-- /hera-flows:promotion v7 -->"):
        promote(repo, context(), promotion_options())
    assert snapshot(repo) == before


def test_gpu_count_without_gpu_type_changes_no_resources_and_says_so(repo: Path):
    summary = run_agent(repo, context(gpu_count=0))

    after = yaml.safe_load((repo / "inference" / "fraud-detector.yaml").read_text())
    original = yaml.safe_load(FRAUD)
    assert after["spec"]["predictor"]["model"]["resources"] == original["spec"]["predictor"]["model"]["resources"]
    assert "nodeSelector" not in after["spec"]["predictor"]
    assert "## Notes\n\n- The gpu_count tag is set without gpu_type, so GPU resources were left unchanged.\n" in summary


def test_the_metrics_table_is_in_the_pr_once_not_again_in_the_agents_summary(repo: Path):
    """Issue 14 item 7: the PR's own Metrics section shows the table; the builtin summary (its "What changed")
    must not repeat it."""
    from hera_flows.steps.promotion import pr as pr_body

    ctx = context()
    summary = run_agent(repo, ctx)
    assert "| Metric |" not in summary and "## Metrics" not in summary
    text = pr_body.promotion_body(ctx, summary=summary, refused=[], dedupe_key="fraud-detector@v7", branch="b")
    assert text.count("| Metric |") == 1, text
