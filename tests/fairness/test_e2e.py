"""End to end: the generated `fairness-audit` WorkflowTemplate on the local runner, from the calendar event
through the Sensor, against a real MLflow server (aliases, a legacy stage, datasets on disk and as run
artifacts, a real sklearn model predicting through pyfunc), a real bare git remote with model cards and a
policy, and the GitHub stand-in: one PR with the digest and the model-card check commented on it; bad input per
model is a line in it; the same calendar tick delivered again is skipped by the guard (one audit per week); after
merging, a manual rerun with unchanged data opens nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import run_workflow
from hera_flows.steps.fairness.card import previous_record
from tests.support.mlflow_models import register_run_version, unique_model_name

pytestmark = pytest.mark.slow

POLICY = """---
thresholds:
  dp_difference: 0.02
  eo_difference: 0.02
limits:
  max_dp_difference: 0.15
---
# Fairness policy

Cards are refreshed when a disparity moves by more than the thresholds above.
"""


def _frame(seed: int, rows: int = 600, with_features: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sex": rng.choice(["F", "M"], rows), "race": rng.choice(["a", "b", "c"], rows),
        "label": (rng.random(rows) < 0.4).astype(int),
    })
    frame["pred"] = np.where(rng.random(rows) < 0.2, 1 - frame["label"], frame["label"])
    frame.loc[frame["sex"] == "F", "pred"] = np.where(rng.random(int((frame["sex"] == "F").sum())) < 0.3, 1,
                                                      frame.loc[frame["sex"] == "F", "pred"])
    if with_features:
        features = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["f0", "f1", "f2", "f3"])
        frame = pd.concat([features, frame.drop(columns=["pred"])], axis=1)
    return frame


@pytest.fixture()
def world(tmp_path, mlflow_server, make_gitops_remote, github_api):  # noqa: ANN001, ANN201
    client = mlflow_server.client()
    data = tmp_path / "data"
    data.mkdir()
    names = {k: unique_model_name(f"fair-{k}") for k in ("csv", "pyfunc", "missing", "nolabel")}

    # 1. CSV on disk with precomputed predictions; alias production
    _frame(1).to_csv(data / "csv.csv", index=False)
    client.create_registered_model(names["csv"], tags={"fairness.dataset": str(data / "csv.csv"),
                                                       "fairness.prediction_column": "pred"})
    v = register_run_version(mlflow_server.uri, names["csv"], seed=1)
    client.set_registered_model_alias(names["csv"], "production", v.version)

    # 2. parquet logged in the version's run at the default path; predictions by the real model (pyfunc)
    v = register_run_version(mlflow_server.uri, names["pyfunc"], seed=2, alias="champion")
    _frame(2, with_features=True).to_parquet(data / "eval.parquet")
    # the client API, not the fluent one: another test may have left a different active experiment behind
    client.log_artifact(v.run_id, str(data / "eval.parquet"), artifact_path="evaluation")

    # 3. a dataset that does not exist (legacy stage selection)
    client.create_registered_model(names["missing"], tags={"fairness.dataset": str(data / "nope.parquet")})
    v = register_run_version(mlflow_server.uri, names["missing"], seed=3)
    client.transition_model_version_stage(names["missing"], v.version, "Production")

    # 4. no label column, and one attribute the data lacks, via version tags
    _frame(4).drop(columns=["label"]).to_csv(data / "nolabel.csv", index=False)
    register_run_version(mlflow_server.uri, names["nolabel"], seed=4, alias="production",
                         tags={"fairness.dataset": str(data / "nolabel.csv"), "fairness.prediction_column": "pred"})

    hand_written = "# Model card\n\nHand-written intro that must survive.\n"
    remote = make_gitops_remote(files={
        "README.md": "gitops\n",
        "model-cards/POLICY.md": POLICY,
        f"model-cards/{names['csv']}.md": hand_written,
        ".github/workflows/ci.yml": "on: push\n",
    })
    config = {
        "repository": {"url": remote.url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
        "mlflow": {"tracking_uri": mlflow_server.uri},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
        "patterns": {
            "promotion": {"enabled": False},
            "fairness_audit": {
                "enabled": True, "aliases": ["production", "champion"], "stages": ["Production"],
                "parallelism": 2, "max_models": 1000,
                "evaluation": {"sensitive_attributes": ["sex", "race", "age_group"], "intersections": [["sex", "race"]],
                               "min_group_count": 20},
            },
        },
    }
    generated = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), generated)
    return {"names": names, "remote": remote, "github": github_api, "generated": generated, "tmp": tmp_path,
            "hand_written": hand_written}


def _run(world, name: str, manual: dict[str, str] | None = None):  # noqa: ANN001, ANN202
    """The calendar tick through the Sensor, or a hand-submitted run with ``manual`` parameters (no event)."""
    fixture = Path(__file__).resolve().parents[3] / "shared/fixtures/argo-events/calendar_event.json"
    event = None if manual else json.dumps(json.loads(fixture.read_text()), separators=(",", ":"))
    return run_workflow("fairness-audit", generated=world["generated"], event=event, overrides=manual,
                        secrets={"forge": {"token": world["github"].token}}, workdir=world["tmp"] / f"run-{name}",
                        state_dir=world["tmp"] / "state", echo=False)


def _mine(world, results: list[dict]) -> dict[str, dict]:
    wanted = set(world["names"].values())
    return {r["model"]: r for r in results if r["model"] in wanted}


def test_weekly_audit_opens_one_pr_and_is_idempotent(world) -> None:  # noqa: ANN001
    names, remote, github = world["names"], world["remote"], world["github"]
    first = _run(world, "first")
    assert first.phase == "Succeeded", [(t.name, t.phase, t.message, t.log[-2000:]) for t in first.tasks.values()
                                        if t.phase != "Succeeded"]
    assert first.tasks["audit"].phase == "Succeeded"  # bad models did not fail the fan-out
    branch = "model-card-refresh/2026-w47"  # the fixture's eventTime is 2026-11-22 (ISO week 47)
    assert branch in remote.branches()
    changed = set(remote.git("diff", "--name-only", "main", branch).split())
    assert f"model-cards/{names['csv']}.md" in changed and f"model-cards/{names['pyfunc']}.md" in changed
    assert f"model-cards/{names['missing']}.md" not in changed and f"model-cards/{names['nolabel']}.md" not in changed
    assert all(path.startswith("model-cards/") for path in changed)

    card = remote.read(f"model-cards/{names['csv']}.md", branch)
    assert card.startswith(world["hand_written"])
    record = previous_record(card)
    assert record["week"] == "2026-W47" and set(record["attributes"]) == {"sex", "race", "sex & race"}
    frame = _frame(1)
    female = frame[frame["sex"] == "F"]
    assert record["attributes"]["sex"]["groups"]["F"][0] == len(female)
    assert abs(record["attributes"]["sex"]["groups"]["F"][1] - female["pred"].mean()) < 1e-6

    [pull] = github.pulls()
    assert pull["title"] == "Weekly model-card refresh — 2026-11-22" and pull["head"] == branch
    body = pull["body"]
    assert names["missing"] in body and "does not exist" in body
    assert names["nolabel"] in body and "no label column 'label'" in body
    assert "'age\\_group' is not in the evaluation dataset" in body  # escaped for markdown
    assert first.outputs["pr-url"].endswith(f"/pull/{pull['number']}")
    assert first.outputs["decision"] == "proceed"
    # the smoke step re-read both refreshed cards and the report step commented the result on the PR
    assert first.outputs["smoke-result"] == "passed", first.tasks["smoke"].outputs.get("report")
    [comment] = github.comments(pull["number"])
    assert "Model-card check" in comment["body"] and "2 card(s) checked" in comment["body"]

    # The same tick delivered again (Sensor redelivery, a second EventSource replica): the guard finds the week
    # claimed; the run ends Succeeded after the guard and touches nothing.
    head = remote.head(branch)
    requests = len(github.requests)
    again = _run(world, "again")
    assert again.phase == "Succeeded", again.message
    assert again.outputs["decision"] == "skipped-duplicate" and "2026-W47" in again.outputs["reason"]
    assert [name for name, task in again.tasks.items() if task.phase == "Succeeded"] == ["guard"]
    labels = json.loads((world["tmp"] / "state" / "workflow-labels" / f"{again.workflow_name}.json").read_text())
    assert labels["hera-flows.io/decision"] == "skipped-duplicate"  # the guard labelled its own run
    assert len(github.requests) == requests and remote.head(branch) == head

    # Merge the refresh; a manual rerun of the same week (not blocked by the claim) with unchanged data moves
    # nothing: no change, no PR.
    remote.git("update-ref", "refs/heads/main", head)
    for pr in github.repos["acme/ml-gitops"].pulls.values():
        pr["state"] = "closed"  # merged
    third = _run(world, "unchanged", manual={"manual": "true", "date": "2026-11-22"})
    assert third.phase == "Succeeded", third.message
    assert third.outputs["decision"] == "proceed"
    assert third.tasks["agent"].outputs["changed"] == "false"
    assert third.outputs["pr-url"] == "" and third.outputs["smoke-result"] == ""
    assert len(github.requests_to("POST", r"/pulls$")) == 1
