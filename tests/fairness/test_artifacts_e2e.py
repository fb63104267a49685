"""End to end through an artifact repository (issue 13 items 1, 2 and 4): the generated `fairness-audit` template
with `artifacts.repository` on the local runner, against a real MLflow server and a real S3 server (SeaweedFS):
the registry is listed once, fanned out in shards (`models_per_pod`), every shard's results land under the run's
prefix and reach the fan-in as one folder, the context and the published cards travel as objects, and one PR
carries every refreshed card with a digest too long for the description split into a file the description links.
One evaluation set is read from an ``s3://`` URI through MLflow, with the S3 credentials from the MLflow Secret.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import run_workflow
from tests.fairness.test_e2e import POLICY, _frame
from tests.support.fixtures_s3 import artifacts_secret, artifacts_section
from tests.support.mlflow_models import unique_model_name

pytestmark = pytest.mark.slow
MODELS = 64  # enough that the digest outgrows the PR description
PER_POD = 20


@pytest.fixture()
def world(tmp_path, mlflow_server, s3_server, s3_bucket, make_gitops_remote, github_api):  # noqa: ANN001, ANN201
    client = mlflow_server.client()
    data = tmp_path / "data"
    data.mkdir()
    prefix = unique_model_name("scale")
    _frame(7).to_csv(data / "eval.csv", index=False)
    s3_server.client().put_object(Bucket=s3_bucket, Key="datasets/eval.csv", Body=(data / "eval.csv").read_bytes())
    names = []
    for i in range(MODELS):
        name = f"{prefix}-{i:02d}"
        dataset = f"s3://{s3_bucket}/datasets/eval.csv" if i == 0 else str(data / "eval.csv")
        client.create_registered_model(name, tags={"fairness.dataset": dataset, "fairness.prediction_column": "pred"})
        client.create_model_version(name, source=f"s3://models/{name}/1")
        client.set_registered_model_alias(name, "production", "1")
        names.append(name)
    remote = make_gitops_remote(files={"README.md": "gitops\n", "model-cards/POLICY.md": POLICY})
    config = {
        "repository": {"url": remote.url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
        "mlflow": {"tracking_uri": mlflow_server.uri, "credentials_secret": "mlflow-credentials"},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
        "artifacts": artifacts_section(s3_server, s3_bucket),
        "patterns": {
            "promotion": {"enabled": False},
            "fairness_audit": {"enabled": True, "aliases": ["production"], "stages": [], "parallelism": 2,
                               "models_per_pod": PER_POD,
                               "evaluation": {"sensitive_attributes": ["sex", "race"], "min_group_count": 20}},
        },
    }
    generated = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), generated)
    secrets = {"forge": {"token": github_api.token},
               **artifacts_secret(s3_server),
               # what an audit pod needs to read s3:// datasets through MLflow on a real platform
               "mlflow-credentials": s3_server.env()}
    yield {"names": names, "remote": remote, "github": github_api, "generated": generated, "tmp": tmp_path,
           "secrets": secrets, "s3": s3_server, "bucket": s3_bucket}
    for name in names:  # the registry is the session's: other audits must not find these production models
        client.delete_registered_model(name)


def test_a_registry_audited_in_shards_through_the_artifact_repository(world) -> None:  # noqa: ANN001
    fixture = Path(__file__).resolve().parents[3] / "shared/fixtures/argo-events/calendar_event.json"
    event = json.dumps(json.loads(fixture.read_text()), separators=(",", ":"))
    result = run_workflow("fairness-audit", generated=world["generated"], event=event, secrets=world["secrets"],
                          workdir=world["tmp"] / "run", state_dir=world["tmp"] / "state", echo=False)
    assert result.phase == "Succeeded", [(t.name, t.phase, t.message, t.log[-1500:]) for t in result.tasks.values()
                                         if t.phase != "Succeeded"]

    # ceil(64 / 20) = 4 audit pods, each writing its shard's results under the run's prefix
    run = result.workflow_name
    keys = {o["Key"] for o in world["s3"].client().list_objects_v2(Bucket=world["bucket"], Prefix=f"hera-flows/{run}/")
            .get("Contents", [])}
    shards = [f"{i:05d}" for i in range(4)]
    assert {f"hera-flows/{run}/list-models/models.json", f"hera-flows/{run}/collect/context.json",
            f"hera-flows/{run}/agent/files.json",
            *(f"hera-flows/{run}/list-models/shards/{s}.json" for s in shards),
            *(f"hera-flows/{run}/audit/{s}.json" for s in shards)} == keys
    assert result.tasks["list-models"].outputs["shard-ids"] == json.dumps(shards, separators=(",", ":"))

    # every model reached the fan-in; the one reading s3:// went through MLflow with the Secret's credentials
    body = world["s3"].client().get_object(Bucket=world["bucket"], Key=f"hera-flows/{run}/collect/context.json")
    context = json.loads(body["Body"].read())
    mine = {r["model"]: r for r in context["results"] if r["model"] in world["names"]}
    assert set(mine) == set(world["names"])
    assert all(not r["error"] and r["rows"] == 600 for r in mine.values()), [r["error"] for r in mine.values()]
    assert mine[world["names"][0]]["dataset"].startswith("s3://")

    # one PR with every card; the digest is a file of the branch, linked from the description
    branch = "model-card-refresh/2026-w47"
    changed = set(world["remote"].git("diff", "--name-only", "main", branch).split())
    assert {f"model-cards/{n}.md" for n in world["names"]} <= changed
    assert "model-cards/digests/2026-W47.md" in changed
    digest = world["remote"].read("model-cards/digests/2026-W47.md", branch)
    assert all(f"`model-cards/{n}.md`" in digest for n in world["names"])
    [pull] = world["github"].pulls()
    assert "| card refreshed (moved past the thresholds) |" in pull["body"]
    link = f"{world['github'].url}/acme/ml-gitops/blob/model-card-refresh/2026-w47/model-cards/digests/2026-W47.md"
    assert f"]({link})" in pull["body"], pull["body"][:3000]
    assert len(pull["body"]) < 16_000
    # the smoke test read every card from the files artifact (no 64 KiB cap): all checked, none skipped
    assert result.outputs["smoke-result"] == "passed", result.tasks["smoke"].outputs.get("report", "")[-2000:]
    report = result.tasks["smoke"].outputs["report"]
    assert f"{MODELS} card(s) checked, 0 not checked" in report

    # deleting the Workflow (its TTL) lets Argo's artifact GC delete everything the run stored, the shards folder
    # included (its key ends with "/": docs/upstream-facts.md#workflows-artifacts)
    assert result.delete_artifacts is not None
    assert result.delete_artifacts() == len(keys)
    assert not world["s3"].client().list_objects_v2(Bucket=world["bucket"], Prefix=f"hera-flows/{run}/").get("Contents")
