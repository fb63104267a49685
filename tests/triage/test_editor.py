"""The builtin triage editor (clear-cut fixes by round-trip YAML editing, or issue.json) and the smoke step's
schema check of the changed WorkflowTemplate (vendored Argo schemas)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.steps.triage import editor as agent
from hera_flows.steps.triage import smoke
from tests.conftest import ROOT
from tests.support.settings import triage_options

PIPELINE = """\
# Recommender training pipeline. Owned by @ml-recsys.
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: recommender-train
  labels:
    mlops.hera-flows/triage: enabled
spec:
  entrypoint: main
  templates:
    - name: main
      dag:
        tasks:
          - {name: prepare-data, template: prepare-data}
          - {name: train, template: train, depends: prepare-data}
    - name: prepare-data
      container:
        image: registry.example.com/ml/prepare:2.1
        command: [python, prepare.py]
    - name: train
      container:
        image: registry.example.com/ml/fraud-scorer:v7.0.3   # pinned by the release process
        command: [python, train.py]
        resources:
          requests: {cpu: "4", memory: 6Gi}
          limits:
            memory: 8Gi  # raised in March after the embeddings grew
            nvidia.com/gpu: 1
"""


def repo_with(tmp_path: Path, text: str = PIPELINE) -> Path:
    repo = tmp_path / "workspace" / "repo"
    (repo / "pipelines" / "recsys").mkdir(parents=True)
    (repo / "pipelines" / "recsys" / "recommender-train.yaml").write_text(text)
    (repo / "pipelines" / "other.yaml").write_text("kind: WorkflowTemplate\nmetadata: {name: other}\nspec: {}\n")
    return repo


def context(category: str, **workflow: Any) -> dict[str, Any]:
    return {
        "pattern": "failure_triage",
        "workflow": {"name": "recommender-train-8xk2p", "namespace": "ml-training", "uid": "3f6c",
                     "phase": "Failed", "template": "recommender-train", "owner": "@ml-recsys", **workflow},
        "failing_templates": ["train"],
        "classification": {"category": category, "means": "why", "evidence": [f"evidence of {category}"],
                           "remediation": "do something"},
        "pods": [{"step": "train", "logs": {"main": {"tail": "Traceback (most recent call last):\n  File \"t.py\"\n"
                                                              "KeyError: 'label'\n```\n# not a heading\n"}}}],
        "notes": [],
    }


def test_oom_raises_the_limit_by_half_keeping_every_other_byte(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    summary = agent.triage(repo, context("oom"), triage_options())
    text = (repo / "pipelines/recsys/recommender-train.yaml").read_text()
    assert text == PIPELINE.replace("memory: 8Gi  # raised", "memory: 12Gi  # raised")
    assert "12Gi" in summary and "cc @ml-recsys" in summary
    assert not (repo.parent / "issue.json").exists()
    assert smoke.check_files({"pipelines/recsys/recommender-train.yaml": text})[0] == "passed"


@pytest.mark.parametrize(("limit", "expected"), [("48Gi", "64Gi"), ("1000Mi", "1500Mi"), ("3G", "4292Mi"),
                                                 ("700Mi", "1050Mi")])
def test_memory_rule(limit: str, expected: str) -> None:
    assert agent.raise_memory(limit, 1.5, "64Gi") == (expected, "")


def test_at_the_cap_an_issue_is_opened(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, PIPELINE.replace("memory: 8Gi", "memory: 64Gi"))
    agent.triage(repo, context("oom"), triage_options())
    issue = json.loads((repo.parent / "issue.json").read_text())
    assert "already at the configured cap" in issue["body"]
    assert (repo / "pipelines/recsys/recommender-train.yaml").read_text() == \
        PIPELINE.replace("memory: 8Gi", "memory: 64Gi")


def test_image_pull_pins_the_configured_known_good_reference(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    good = "registry.example.com/ml/fraud-scorer@sha256:" + "ab" * 32
    agent.triage(repo, context("image-pull"), triage_options(images={"registry.example.com/ml/fraud-scorer": good}))
    text = (repo / "pipelines/recsys/recommender-train.yaml").read_text()
    assert f"image: {good}   # pinned by the release process" in text
    assert smoke.check_files({"p.yaml": text})[0] == "passed"


def test_image_pull_without_a_known_good_reference_is_an_issue(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    agent.triage(repo, context("image-pull"), triage_options())
    assert "no known-good reference" in json.loads((repo.parent / "issue.json").read_text())["body"]


def test_infrastructure_adds_a_retry_strategy_that_validates(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    agent.triage(repo, context("infrastructure"), triage_options())
    text = (repo / "pipelines/recsys/recommender-train.yaml").read_text()
    train = yaml.safe_load(text)["spec"]["templates"][2]
    assert train["retryStrategy"] == {"limit": "3", "retryPolicy": "Always",
                                      "backoff": {"duration": "30s", "factor": "2", "cap": "600s"}}
    assert "# raised in March" in text
    assert smoke.check_files({"p.yaml": text})[0] == "passed"
    # a second failure after retries is not a flake any more
    agent.triage(repo, context("infrastructure"), triage_options())
    assert "already has a retryStrategy" in json.loads((repo.parent / "issue.json").read_text())["body"]


def test_code_bug_is_an_issue_for_the_owner_with_evidence_and_a_fenced_log(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    summary = agent.triage(repo, context("code-bug"), triage_options())
    issue = json.loads((repo.parent / "issue.json").read_text())
    assert issue["title"] == "[failure-triage] recommender-train: code-bug in recommender-train-8xk2p"
    assert issue["labels"] == ["failure-triage", "triage:code-bug"]
    body = issue["body"]
    assert body.startswith("## Training pipeline failure: code-bug\n\n@ml-recsys:")
    assert "`evidence of code-bug`" in body and "do something" in body
    assert "````text\nTraceback" in body  # the fence is longer than the ``` inside the log
    assert "\n# not a heading\n" in body.split("````text", 1)[1]
    assert "issue" in summary and (repo / "pipelines/recsys/recommender-train.yaml").read_text() == PIPELINE


def test_a_missing_template_is_an_issue(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    agent.triage(repo, context("oom", template="no-such-pipeline"), triage_options())
    assert "no WorkflowTemplate named" in json.loads((repo.parent / "issue.json").read_text())["body"]


def test_an_odd_owner_value_is_not_a_mention(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    agent.triage(repo, context("timeout", owner="team <x@y> @everyone"), triage_options())
    body = json.loads((repo.parent / "issue.json").read_text())["body"]
    assert "`team <x@y> @everyone`" in body and "\n@" not in body


# --- smoke -------------------------------------------------------------------------------------------------------


def test_smoke_fails_on_an_unknown_field_and_skips_without_templates() -> None:
    broken = PIPELINE.replace("      container:\n        image: registry.example.com/ml/prepare",
                              "      container:\n        imagePolicy: x\n"
                              "        image: registry.example.com/ml/prepare")
    result, report = smoke.check_files({"pipelines/x.yaml": broken})
    assert result == "failed" and "imagePolicy" in report and "v3.7.18" in report and "v4.1.2" in report
    assert smoke.check_files({"README.md": "# hi"})[0] == "skipped"


def test_vendored_workflow_schemas_are_current() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "vendor_workflow_schemas.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    raw = json.loads(gzip.decompress((ROOT / "hera_flows/schemas" / smoke.SCHEMA_FILES["v4.1.2"]).read_bytes()))
    assert raw["root"] in raw["definitions"]


def test_preemption_reruns_the_step_with_a_retry_strategy(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    summary = agent.triage(repo, context("preemption"), triage_options())
    train = yaml.safe_load((repo / "pipelines/recsys/recommender-train.yaml").read_text())["spec"]["templates"][2]
    assert train["retryStrategy"]["retryPolicy"] == "Always" and "node was reclaimed" in summary
    assert not (repo.parent / "issue.json").exists()


def test_an_eviction_requests_the_memory_limit(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    agent.triage(repo, context("eviction"), triage_options())
    text = (repo / "pipelines/recsys/recommender-train.yaml").read_text()
    train = yaml.safe_load(text)["spec"]["templates"][2]
    assert train["container"]["resources"]["requests"] == {"cpu": "4", "memory": "8Gi"}
    assert "# raised in March" in text and smoke.check_files({"p.yaml": text})[0] == "passed"
    # already requesting the whole limit: the node is too small, a person decides
    agent.triage(repo, context("eviction"), triage_options())
    assert "already requests its whole memory limit" in json.loads((repo.parent / "issue.json").read_text())["body"]


@pytest.mark.parametrize("category", ["gpu-oom", "distributed", "permissions", "dependency", "schema-drift",
                                      "unschedulable"])
def test_the_new_classes_without_a_clear_cut_fix_are_owner_issues(tmp_path: Path, category: str) -> None:
    from hera_flows.steps.triage.classify import REMEDIATIONS

    repo = repo_with(tmp_path)
    ctx = context(category)
    ctx["classification"]["remediation"] = REMEDIATIONS[category]
    agent.triage(repo, ctx, triage_options())
    issue = json.loads((repo.parent / "issue.json").read_text())
    assert issue["labels"] == ["failure-triage", f"triage:{category}"] and REMEDIATIONS[category] in issue["body"]
    assert (repo / "pipelines/recsys/recommender-train.yaml").read_text() == PIPELINE


def test_shared_memory_mounts_a_memory_backed_dev_shm_and_checks_against_the_argo_schema(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    ctx = context("distributed")
    ctx["classification"]["cause"] = "shared-memory"
    summary = agent.triage(repo, ctx, triage_options())
    text = (repo / "pipelines/recsys/recommender-train.yaml").read_text()
    train = yaml.safe_load(text)["spec"]["templates"][2]
    assert train["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]
    assert train["container"]["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
    assert "# pinned by the release process" in text and "# raised in March" in text
    assert smoke.check_files({"p.yaml": text})[0] == "passed"
    assert "`/dev/shm`" in summary and not (repo.parent / "issue.json").exists()
    # a second run finds the mount in place: a person decides (bigger sizeLimit, fewer workers)
    agent.triage(repo, ctx, triage_options())
    assert "already mounts a volume at `/dev/shm`" in json.loads((repo.parent / "issue.json").read_text())["body"]


def test_a_nccl_failure_without_a_shared_memory_cause_is_an_owner_issue(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    agent.triage(repo, context("distributed"), triage_options())
    assert json.loads((repo.parent / "issue.json").read_text())["labels"][-1] == "triage:distributed"
    assert (repo / "pipelines/recsys/recommender-train.yaml").read_text() == PIPELINE


@pytest.mark.parametrize(("evidence", "named"), [
    ("train/main: botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the GetObject "
     "operation: Access Denied", "AWS API operation `GetObject`"),
    ('train/main: User: arn:aws:sts::1:assumed-role/train/x is not authorized to perform: s3:ListBucket on resource: '
     '"arn:aws:s3:::features" because no identity-based policy allows it',
     "AWS IAM action `s3:ListBucket` on `arn:aws:s3:::features`"),
    ("train/main: google.api_core.exceptions.Forbidden: 403 GET https://storage.googleapis.com/x: "
     "sa@p.iam.gserviceaccount.com does not have storage.objects.get access to the Google Cloud Storage object.",
     "Google Cloud IAM permission `storage.objects.get`"),
    ('event train: pods is forbidden: User "system:serviceaccount:ml:default" cannot create resource "pods" in API '
     'group "" in the namespace "ml"', 'Kubernetes RBAC `create resource "pods"`'),
    ("train/main: PermissionError: [Errno 13] Permission denied: '/data/out/model.pt'",
     "file-system access to `/data/out/model.pt`"),
])
def test_an_access_denied_issue_names_the_missing_permission(tmp_path: Path, evidence: str, named: str) -> None:
    repo = repo_with(tmp_path)
    ctx = context("permissions")
    ctx["classification"]["evidence"] = [evidence]
    agent.triage(repo, ctx, triage_options())
    body = json.loads((repo.parent / "issue.json").read_text())["body"]
    assert f"### Missing permission\n\nThe error names the {named}" in body


def test_an_access_denied_issue_without_a_named_permission_says_so(tmp_path: Path) -> None:
    repo = repo_with(tmp_path)
    agent.triage(repo, context("permissions"), triage_options())
    assert "The error does not name the permission" in json.loads((repo.parent / "issue.json").read_text())["body"]
