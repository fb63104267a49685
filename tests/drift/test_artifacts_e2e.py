"""Drift end to end through an artifact repository (issue 13 item 1): the generated `drift-remediation` template with
`artifacts.repository` on the local runner against a real S3 server (SeaweedFS), a real MLflow server, a real bare
git remote and the GitHub stand-in. One Alertmanager group with two drifting features of one model: each key's
chain writes its context and its published files under the run's prefix (`context/<branch>/`, `agent/<branch>/`),
and the agent pod, review and smoke of that chain read them as files. The model's params file makes the context
larger than the parameter path's bound (96 KiB), which would leave the file's content out; here it reaches the
agent whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hera_flows.config import PARAMETER_CONTEXT_BYTES, parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import run_workflow
from tests.drift.test_e2e import PARAMS
from tests.support.drift_events import alertmanager_event
from tests.support.fixtures_gitops import create_gitops_remote
from tests.support.fixtures_s3 import artifacts_secret, artifacts_section
from tests.support.mlflow_models import register_run_version, unique_model_name

pytestmark = pytest.mark.slow

FEATURES = ("amount", "merchant")


def _group(model: str) -> str:
    """One Alertmanager group holding an alert per feature."""
    events = [json.loads(alertmanager_event(model, feature)) for feature in FEATURES]
    first = events[0]
    first["body"]["alerts"] = [e["body"]["alerts"][0] for e in events]
    return json.dumps(first, separators=(",", ":"))


def test_every_key_of_a_group_hands_its_context_on_as_objects(tmp_path: Path, mlflow_server, github_api, s3_server,
                                                             s3_bucket) -> None:  # noqa: ANN001
    model = unique_model_name("fraud")
    register_run_version(mlflow_server.uri, model, alias="champion", seed=1, metrics={"auc": 0.91})
    lookups = "".join(f"  lookup_{i:05d}: {'x' * 40}\n" for i in range(2500))  # ~150 KB of lookup tables
    params = PARAMS + "lookups:\n" + lookups
    remote = create_gitops_remote(tmp_path / "remote", {"README.md": "# ml-gitops\n",
                                                        f"pipelines/{model}/params.yaml": params})
    config = {
        "namespace": "mlops-automation",
        "repository": {"url": remote.url, "slug": "acme/ml-gitops", "base_branch": "main"},
        "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
        "mlflow": {"tracking_uri": mlflow_server.uri},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
        "artifacts": artifacts_section(s3_server, s3_bucket),
        "patterns": {"promotion": {"enabled": False},
                     "drift": {"enabled": True, "monitor": {"enabled": False}, "sources": ["alertmanager"]}},
    }
    generated = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), generated)
    secrets = {"forge": {"token": github_api.token},
               **artifacts_secret(s3_server)}

    result = run_workflow("drift-remediation", generated=generated, event=_group(model), event_name="alertmanager",
                          secrets=secrets, workdir=tmp_path / "run", state_dir=tmp_path / "state", echo=False)

    comments = [c["body"] for p in github_api.pulls() for c in github_api.comments(p["number"])]
    assert result.phase == "Succeeded", (comments, [(t.name, t.phase, t.message, t.log[-1500:])
                                                    for t in result.tasks.values() if t.phase == "Failed"])
    assert result.outputs["count"] == "2"
    branches = sorted(b for b in remote.branches() if b.startswith("drift/"))
    assert len(branches) == 2
    prefix = f"hera-flows/{result.workflow_name}"
    client = s3_server.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{prefix}/").get("Contents", [])}
    assert keys == {f"{prefix}/{task}/{branch}/{name}" for branch in branches
                    for task, name in (("context", "context.json"), ("agent", "files.json"))}

    for branch, feature in zip(branches, sorted(FEATURES), strict=True):
        assert f"-{feature}-" in branch
        text = client.get_object(Bucket=s3_bucket, Key=f"{prefix}/context/{branch}/context.json")["Body"].read()
        context = json.loads(text)
        # larger than a parameter carries, and whole: the params file's content is there
        assert len(text) > PARAMETER_CONTEXT_BYTES and len(context["pipeline"]["params"]["lookups"]) == 2500
        assert context["branch"] == branch and context["event"]["feature"] == feature and "notes" not in context
        files = client.get_object(Bucket=s3_bucket, Key=f"{prefix}/agent/{branch}/files.json")["Body"].read()
        assert f"pipelines/{model}/params.yaml" in files.decode()

    # each chain's agent pod read its own key's context from its artifact
    seen = sorted(json.loads(p.read_text())["event"]["feature"]
                  for p in (tmp_path / "run").glob("pods/*agent-*/volumes/workspace/context.json"))
    assert seen == sorted(FEATURES)
    # review read it (the PR body carries the evidence), smoke read the files artifact
    pulls = github_api.pulls()
    assert sorted(p["head"] for p in pulls) == branches
    assert all("threshold 0.2" in p["body"] for p in pulls)
    assert json.loads(result.outputs["smoke-results"]) == ["passed", "passed"]
