"""End to end: a real MLflow server promotes a real model, MLflow's real signed webhook delivery is wrapped the
way Argo Events delivers it, and the generated `mlflow-promotion` WorkflowTemplate runs on the local runner —
guard, MLflow context, builtin agent, publish to a bare git remote, PR on a GitHub stand-in, smoke test against
a KServe stand-in, report comment. Bad input ends each run with a clear message and no branch or PR."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import RunResult, run_workflow
from tests.support.go_json import argo_event_data
from tests.support.mlflow_models import evaluation_table, register_run_version, unique_model_name

pytestmark = pytest.mark.slow

WEBHOOK_SECRET = "e2e-webhook-secret"
BRANCH_PREFIX = "model-promotion/"


@dataclass
class Setup:
    generated: Path
    secrets: dict[str, dict[str, str]]
    model: str
    remote: Any
    github: Any
    kserve: Any
    mlflow: Any
    receiver: Any
    tmp: Path

    def run(self, *, event: str | None = None, overrides: dict[str, str] | None = None, name: str) -> RunResult:
        return run_workflow(
            "mlflow-promotion",
            generated=self.generated,
            event=event,
            overrides=overrides,
            secrets=self.secrets,
            workdir=self.tmp / f"run-{name}",
            state_dir=self.tmp / "state",
            echo=False,
        )

    def promote(self, version: str, alias: str = "champion") -> str:
        """Set the alias in MLflow and return the Argo Events event data of the delivery MLflow sends."""
        self.receiver.clear()
        self.mlflow.client().set_registered_model_alias(self.model, alias, version)
        [request] = self.receiver.wait_for(1)
        return argo_event_data(request.headers, request.body)

    def branches(self) -> list[str]:
        return [b for b in self.remote.branches() if b.startswith(BRANCH_PREFIX)]


def _generate(tmp: Path, *, remote_url: str, api_url: str, mlflow_uri: str, smoke_url: str) -> Path:
    config = {
        "namespace": "mlops-automation",
        "repository": {"url": remote_url, "slug": "acme/ml-gitops", "base_branch": "main"},
        "forge": {"api_url": api_url, "token_secret": {"name": "forge", "key": "token"}},
        "mlflow": {"tracking_uri": mlflow_uri},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
        "patterns": {
            "promotion": {
                "webhook_secret": {"name": "mlflow-webhook", "key": "secret"},
                "smoke": {"endpoint": smoke_url, "protocol": "v2", "max_latency_ms": 5000,
                          "served_version": {"wait_seconds": 1}},
            }
        },
    }
    out = tmp / "out"
    write(render(parse_config(yaml.safe_dump(config))), out)
    return out


@pytest.fixture()
def setup(tmp_path, mlflow_server, webhook_receiver, make_gitops_remote, github_api, kserve_server) -> Setup:
    model = unique_model_name("fraud")
    client = mlflow_server.client()
    current = register_run_version(mlflow_server.uri, model, seed=1, metrics={"accuracy": 0.9, "f1": 0.7})
    remote = make_gitops_remote(fraud_model=model, fraud_version=current.version, fraud_storage_uri=current.storage_uri)
    webhook = client.create_webhook(
        name=f"promotion-{model}", url=webhook_receiver.url_for("/mlflow"),
        events=["model_version_alias.created"], secret=WEBHOOK_SECRET,
    )
    generated = _generate(
        tmp_path, remote_url=remote.url, api_url=github_api.url, mlflow_uri=mlflow_server.uri,
        smoke_url=kserve_server.url,
    )
    secrets = {"mlflow-webhook": {"secret": WEBHOOK_SECRET}, "forge": {"token": github_api.token}}
    yield Setup(generated, secrets, model, remote, github_api, kserve_server, mlflow_server, webhook_receiver, tmp_path)
    client.delete_webhook(webhook.webhook_id)


def test_a_real_promotion_becomes_a_pr_with_the_manifest_change(setup: Setup) -> None:
    candidate = register_run_version(
        setup.mlflow.uri, setup.model, seed=2, metrics={"accuracy": 0.93, "f1": 0.75},
        tags={"replica_min": "3", "replica_max": "8", "runtime_version": "1.7.0"},
        run_tags={"replica_max": "5", "memory": "3Gi"}, evaluation=evaluation_table(seed=2),
    )
    event = setup.promote(candidate.version)
    setup.kserve.served_version = candidate.version  # staging rolled out the branch

    result = setup.run(event=event, name="promote")

    assert result.phase == "Succeeded", [
        (t.name, t.phase, t.message, t.log[-1500:]) for t in result.tasks.values() if t.phase != "Succeeded"
    ]
    assert [t.phase for t in result.tasks.values()] == ["Succeeded"] * 8  # confirm-claims after review, record
    assert result.exit_handler is not None and result.exit_handler.phase == "Succeeded"
    branch = f"{BRANCH_PREFIX}{setup.model}-v{candidate.version}"
    assert setup.branches() == [branch]

    manifest = setup.remote.read("inference/fraud-detector.yaml", branch)
    doc = yaml.safe_load(manifest)
    model_spec = doc["spec"]["predictor"]["model"]
    assert model_spec["storageUri"] == candidate.storage_uri
    assert model_spec["runtimeVersion"] == "1.7.0"
    assert (doc["spec"]["predictor"]["minReplicas"], doc["spec"]["predictor"]["maxReplicas"]) == (3, 8)
    assert doc["metadata"]["annotations"]["hera-flows.io/mlflow-version"] == candidate.version
    assert "# Managed by the platform team." in manifest and "# pinned; bump deliberately" in manifest
    changed = set(setup.remote.git("diff", "--name-only", "main", branch).split())
    card_path = f"model-cards/{setup.model}.md"  # cards are named after the registered model
    assert changed == {"inference/fraud-detector.yaml", card_path}
    card = setup.remote.read(card_path, branch)
    assert f"Version {candidate.version}" in card and "0.93" in card
    assert "Expected calibration error (10 bins)" in card and "| sex | Demographic-parity difference |" in card
    assert f"| `memory` | `3Gi` | run {candidate.run_id} tags |" in card
    assert "| `replica_max` | `8` | model version tags |" in card  # the version's tag wins over the run's

    [pull] = setup.github.pulls()
    assert pull["head"] == branch and pull["base"] == "main" and pull["state"] == "open"
    assert setup.model in pull["title"] and "- [ ]" in pull["body"]
    assert "### Evaluation set" in pull["body"] and "### Deployment settings" in pull["body"]
    assert f"the tags of `run {candidate.run_id}`" in pull["body"]  # why memory changed, in the summary
    assert result.outputs["pr-url"] == f"https://github.com/acme/ml-gitops/pull/{pull['number']}"
    assert result.outputs["smoke-result"] == "passed"
    assert len(setup.kserve.inference_requests) >= 1
    [report] = [c["body"] for c in setup.github.comments(pull["number"]) if "smoke" in c["body"].lower()]
    assert f"| Served version | ✅ passed | serves `{candidate.version}`" in report


def test_staging_still_serving_the_previous_version_fails_the_run_with_a_clear_message(setup: Setup) -> None:
    previous = setup.kserve.served_version = "1"  # the version the InferenceService served before
    candidate = register_run_version(setup.mlflow.uri, setup.model, seed=10)

    result = setup.run(event=setup.promote(candidate.version), name="stale-staging")

    assert result.phase == "Failed"
    assert result.outputs["smoke-result"] == "failed"
    assert result.tasks["report"].phase == "Failed"
    [pull] = setup.github.pulls()
    [report] = [c["body"] for c in setup.github.comments(pull["number"]) if "smoke" in c["body"].lower()]
    assert (f"staging still serves version '{previous}', not the promoted version '{candidate.version}' after 1 s"
            in report)


def test_a_second_event_for_the_same_version_updates_the_same_pr(setup: Setup) -> None:
    candidate = register_run_version(setup.mlflow.uri, setup.model, seed=3)
    first = setup.run(event=setup.promote(candidate.version, "champion"), name="first")
    assert first.phase == "Succeeded", first.message
    second = setup.run(event=setup.promote(candidate.version, "production"), name="second")
    assert second.phase == "Succeeded", second.message

    pulls = setup.github.pulls()
    assert len(pulls) == 1
    assert second.outputs["pr-url"] == first.outputs["pr-url"]
    assert len(setup.branches()) == 1
    assert len(setup.github.requests_to("POST", r"/pulls$")) == 1
    assert len(setup.github.requests_to("PATCH", r"/pulls/\d+$")) == 1


def _assert_nothing_published(setup: Setup) -> None:
    assert setup.branches() == []
    assert setup.github.pulls() == []


def test_replayed_delivery_is_rejected(setup: Setup) -> None:
    candidate = register_run_version(setup.mlflow.uri, setup.model, seed=4)
    event = setup.promote(candidate.version)
    first = setup.run(event=event, name="first")
    assert first.phase == "Succeeded", first.message
    pulls_before = setup.github.pulls()

    commits_before = setup.remote.head(setup.branches()[0])

    replay = setup.run(event=event, name="replay")

    # rejected at the guard: the run ends Succeeded with the decision and reason, and nothing else runs
    assert replay.phase == "Succeeded"
    assert replay.outputs["decision"] == "rejected" and "already processed" in replay.outputs["reason"]
    assert setup.github.pulls() == pulls_before
    assert setup.remote.head(setup.branches()[0]) == commits_before


def test_bad_signature_stops_at_the_guard(setup: Setup) -> None:
    candidate = register_run_version(setup.mlflow.uri, setup.model, seed=5)
    event = setup.promote(candidate.version)
    tampered = event.replace(f'"version":"{candidate.version}"', f'"version":"{int(candidate.version) + 100}"')
    assert tampered != event

    result = setup.run(event=tampered, name="tampered")

    assert result.phase == "Succeeded"
    assert result.outputs["decision"] == "rejected" and "signature" in result.outputs["reason"].lower()
    assert all(t.phase in ("Skipped", "Omitted") for name, t in result.tasks.items() if name != "guard")
    _assert_nothing_published(setup)


def test_unknown_model_stops_at_the_context(setup: Setup) -> None:
    result = setup.run(overrides={"manual": "true", "model-name": "no-such-model", "version": "1"}, name="unknown")

    assert result.phase == "Failed"
    assert result.tasks["guard"].phase == "Succeeded"
    assert result.tasks["context"].phase == "Failed" and "no-such-model" in result.tasks["context"].message
    _assert_nothing_published(setup)


def test_missing_manifest_stops_at_the_context(setup: Setup) -> None:
    stray = unique_model_name("stray")
    version = register_run_version(setup.mlflow.uri, stray, seed=6)
    result = setup.run(overrides={"manual": "true", "model-name": stray, "version": version.version}, name="missing")

    assert result.phase == "Failed"
    assert result.tasks["context"].phase == "Failed"
    assert "InferenceService" in result.tasks["context"].message and "inference" in result.tasks["context"].message
    _assert_nothing_published(setup)


def test_the_cli_runs_an_event_file(setup: Setup, tmp_path: Path, capsys) -> None:
    from hera_flows.cli import main

    candidate = register_run_version(setup.mlflow.uri, setup.model, seed=7)
    event_file = tmp_path / "event.json"
    event_file.write_text(setup.promote(candidate.version))
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text(yaml.safe_dump(setup.secrets))

    code = main(["run", "mlflow-promotion", "--event", str(event_file), "--secrets", str(secrets_file),
                 "--generated", str(setup.generated), "--workdir", str(tmp_path / "cli-run")])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "Succeeded" in out and "output pr-url: http" in out
    assert json.loads(event_file.read_text())["body"]["data"]["version"] == candidate.version


def test_a_failing_staging_endpoint_is_reported_on_the_pr_and_fails_the_run(setup: Setup) -> None:
    setup.kserve.status = 404  # the staging endpoint does not serve the model
    candidate = register_run_version(setup.mlflow.uri, setup.model, seed=8)

    result = setup.run(event=setup.promote(candidate.version), name="smoke-fails")

    assert result.phase == "Failed"
    assert result.tasks["smoke"].phase == "Succeeded" and result.outputs["smoke-result"] == "failed"
    assert result.tasks["report"].phase == "Failed" and "smoke test failed" in result.tasks["report"].message
    [pull] = setup.github.pulls()
    comments = setup.github.comments(pull["number"])
    assert any("failed" in c["body"].lower() for c in comments)


AGENT_SCRIPT = '''
import os, pathlib, re
prompt = pathlib.Path(os.environ["HF_PROMPT_FILE"]).read_text()
assert "untrusted" in prompt.lower()
context = pathlib.Path(os.environ["HF_CONTEXT_FILE"]).read_text()
assert "HF_FORGE_TOKEN" not in os.environ  # the agent holds no forge token
manifest = pathlib.Path("inference/fraud-detector.yaml")
import json
uri = json.loads(context)["model_version"]["storage_uri"]
manifest.write_text(re.sub(r"storageUri: .*", "storageUri: " + uri, manifest.read_text()))
pathlib.Path(".github/workflows/ci.yml").write_text("hijacked: true\\n")  # outside the allow-list
pathlib.Path(os.environ["HF_SUMMARY_FILE"]).write_text("Pointed storageUri at the new version.\\n")
'''


def test_a_command_agent_gets_the_contract_files_and_only_allowed_changes_ship(setup: Setup, tmp_path: Path) -> None:
    import shutil
    import sys

    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT)
    generated = tmp_path / "command-agent"
    settings = {
        "repository": {"url": setup.remote.url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": setup.github.url, "token_secret": {"name": "forge", "key": "token"}},
        "mlflow": {"tracking_uri": setup.mlflow.uri},
        "agent": {"kind": "command", "image": "example.com/coding-agent:1", "secret": "agent-credentials",
                  "command": [shutil.which("python3") or sys.executable, str(script)]},
        "patterns": {"promotion": {"webhook_secret": {"name": "mlflow-webhook", "key": "secret"},
                                   "smoke": {"endpoint": setup.kserve.url}}},
    }
    write(render(parse_config(yaml.safe_dump(settings))), generated)
    candidate = register_run_version(setup.mlflow.uri, setup.model, seed=9)
    result = run_workflow(
        "mlflow-promotion", generated=generated, event=setup.promote(candidate.version),
        secrets={**setup.secrets, "agent-credentials": {"ANTHROPIC_API_KEY": "not-a-real-key"}},
        workdir=tmp_path / "run", state_dir=tmp_path / "state", echo=False,
    )

    assert result.phase == "Succeeded", [(t.name, t.message, t.log[-800:]) for t in result.tasks.values()]
    branch = f"{BRANCH_PREFIX}{setup.model}-v{candidate.version}"
    changed = set(setup.remote.git("diff", "--name-only", "main", branch).split())
    assert changed == {"inference/fraud-detector.yaml"}  # the CI edit was refused, not pushed
    [pull] = setup.github.pulls()
    assert ".github/workflows/ci.yml" in pull["body"]  # the refusal is visible to the reviewer


def test_a_model_served_by_seldon_gets_its_seldon_model_edited_and_smoke_tested_through_the_mesh(
    setup: Setup, make_gitops_remote, tmp_path: Path
) -> None:
    from hera_flows.local.standins.seldon import start_seldon
    from hera_flows.steps.promotion import seldon

    current = register_run_version(setup.mlflow.uri, setup.model, seed=11)
    remote = make_gitops_remote(fraud_model=setup.model, fraud_version=current.version,
                                fraud_storage_uri=current.storage_uri, fraud_target="seldon")
    mesh, stop = start_seldon("fraud-detector")
    try:
        generated = _generate(tmp_path / "seldon", remote_url=remote.url, api_url=setup.github.url,
                              mlflow_uri=setup.mlflow.uri, smoke_url=mesh.url)
        candidate = register_run_version(setup.mlflow.uri, setup.model, seed=12, tags={"replica_max": "9"})
        result = run_workflow("mlflow-promotion", generated=generated, event=setup.promote(candidate.version),
                              secrets=setup.secrets, workdir=tmp_path / "run", state_dir=tmp_path / "state",
                              echo=False)
    finally:
        stop()

    assert result.phase == "Succeeded", [(t.name, t.message, t.log[-800:]) for t in result.tasks.values()]
    branch = f"{BRANCH_PREFIX}{setup.model}-v{candidate.version}"
    manifest = remote.read("inference/fraud-detector.yaml", branch)
    doc = yaml.safe_load(manifest)
    assert (doc["kind"], doc["spec"]["storageUri"], doc["spec"]["maxReplicas"]) == (
        "Model", candidate.storage_uri, 9)
    assert "# the Server must support the mlflow runtime" in manifest and seldon.validate(doc) == []
    assert result.outputs["smoke-result"] == "passed"
    assert all(r.headers["Seldon-Model"] == "fraud-detector" for r in mesh.inference_requests)
    [pull] = setup.github.pulls()
    assert "Seldon Model" in pull["body"]
    [report] = [c["body"] for c in setup.github.comments(pull["number"]) if "smoke" in c["body"].lower()]
    assert "| Seldon Model `inference/fraud-detector.yaml` | ✅ passed |" in report
