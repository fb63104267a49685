"""Publish never loses work and never pushes more than the run's change (issue 16 items 2, 3, 8), against a real
bare git remote:

- a reviewer's commit on the branch survives a redelivered event (the change goes on top, or publish refuses);
- a base branch that moves while the agent works is not reverted by the PR (the change is a diff against the
  commit prepare cloned), and a conflict is refused with a clear reason;
- each run may change only its own files (the model's manifest and card), never a dotfile.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hera_flows.cli import run_step
from tests.support.fixtures_git import BARE_REMOTE_FILES
from tests.support.fixtures_gitops import GitopsRemote
from tests.support.fixtures_workspace import (
    ALLOWED,
    BRANCH,
    NEW_CARD,
    NEW_MANIFEST,
    run_prepare,
    run_publish,
    tree,
    write,
)
from tests.support.settings import generated_flags

PROMOTION_FLAGS = generated_flags("publish", template="mlflow-promotion")  # the pattern and its editor settings


def publish_as_promotion(remote: GitopsRemote, ws: Path) -> tuple[int, dict[str, str]]:
    """publish as the generated agent pod calls it: with the pattern and its editor's settings."""
    code = run_step([
        "publish", *PROMOTION_FLAGS, f"--repo-url={remote.url}", "--base-branch=main", f"--workspace={ws}",
        f"--allowed-paths={ALLOWED}", "--author-name=hera-flows bot", "--author-email=bot@hera-flows.invalid",
        f"--outputs={ws / 'out'}",
    ])
    out = ws / "out"
    return code, {p.name: p.read_text(encoding="utf-8") for p in out.iterdir() if p.is_file()}


def redeliver(remote: GitopsRemote, tmp_path: Path, name: str, files: dict[str, str]) -> tuple[int, dict[str, str]]:
    ws = tmp_path / name
    assert run_prepare(remote, ws) == 0
    write(ws / "repo", files)
    return run_publish(remote, ws)


# ------------------------------------------------------------------------------------ item 2: reviewers' commits


def test_a_redelivered_event_keeps_a_reviewers_commit(workspace: Path, bare_remote: GitopsRemote,
                                                      tmp_path: Path) -> None:
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert run_publish(bare_remote, workspace)[0] == 0
    reviewer = bare_remote.commit_files({"model-cards/fraud-detector.md": "# reviewed by a human\n"},
                                        "Reviewer: tighten the card", branch=BRANCH)

    code, out = redeliver(bare_remote, tmp_path, "ws-2", {"inference/fraud-detector.yaml": NEW_MANIFEST,
                                                          "model-cards/other.md": "new\n"})
    assert code == 0 and out["update"] == "added" and out["blocked"] == ""
    ancestry = bare_remote.git("rev-list", BRANCH).split()
    assert reviewer in ancestry  # never force-pushed away
    assert bare_remote.git("rev-parse", f"{BRANCH}^").strip() == reviewer  # our commit sits on top of theirs
    files = tree(bare_remote, BRANCH)
    assert files["model-cards/fraud-detector.md"] == "# reviewed by a human\n"
    assert files["model-cards/other.md"] == "new\n"
    assert json.loads(out["changes"]) == [{"path": "model-cards/other.md", "kind": "added"}]


def test_a_conflicting_reviewer_commit_is_refused_not_overwritten(workspace: Path, bare_remote: GitopsRemote,
                                                                  tmp_path: Path) -> None:
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert run_publish(bare_remote, workspace)[0] == 0
    reviewer = bare_remote.commit_files(
        {"inference/fraud-detector.yaml": NEW_MANIFEST.replace("/7", "/7-reviewed")}, "Reviewer fix", branch=BRANCH)

    code, out = redeliver(bare_remote, tmp_path, "ws-2", {
        "inference/fraud-detector.yaml": NEW_MANIFEST.replace("/7", "/8")})
    assert code == 0 and out["changed"] == "false" and out["update"] == "blocked"
    assert "inference/fraud-detector.yaml" in out["blocked"] and "others pushed" in out["blocked"]
    assert bare_remote.head(BRANCH) == reviewer


def test_a_branch_of_only_our_commits_is_rebuilt_on_the_new_base(workspace: Path, bare_remote: GitopsRemote,
                                                                  tmp_path: Path) -> None:
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert run_publish(bare_remote, workspace)[0] == 0
    new_base = bare_remote.commit_files({"README.md": "# v2\n"}, "Team edits the README")
    code, out = redeliver(bare_remote, tmp_path, "ws-2", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert code == 0 and out["update"] == "rebuilt"
    assert bare_remote.git("rev-parse", f"{BRANCH}^").strip() == new_base
    message = bare_remote.git("log", "-1", "--format=%B", BRANCH)
    assert "Published-by: hera-flows" in message and "Hera-Flows-Base: " in message


def test_a_commit_that_only_looks_like_ours_is_kept(workspace: Path, bare_remote: GitopsRemote,
                                                    tmp_path: Path) -> None:
    """The trailer alone does not make a commit ours: author and committer must be the publish identity too."""
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert run_publish(bare_remote, workspace)[0] == 0
    forged = bare_remote.commit_files({"README.md": "# edited\n"}, "Looks automated\n\nPublished-by: hera-flows",
                                      branch=BRANCH)
    code, out = redeliver(bare_remote, tmp_path, "ws-2", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert code == 0 and out["update"] in ("added", "unchanged")
    assert forged in bare_remote.git("rev-list", BRANCH).split()


# ------------------------------------------------------------------------------------ item 3: a base that moved


def test_a_base_branch_that_moved_during_the_run_is_not_reverted(workspace: Path, bare_remote: GitopsRemote) -> None:
    """Reproduction from the review: a promotion merged and a new InferenceService added on main while the agent
    ran came back as a downgrade and a deletion."""
    moved = bare_remote.commit_files({
        "model-cards/fraud-detector.md": "# Model card: fraud-detector\n\n- Version: 6 (merged meanwhile)\n",
        "inference/churn.yaml": "kind: InferenceService\nmetadata: {name: churn}\n",
    }, "Merged while the agent worked")
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})

    code, out = run_publish(bare_remote, workspace)
    assert code == 0 and out["changed"] == "true"
    assert bare_remote.git("rev-parse", f"{BRANCH}^").strip() == moved
    diff = bare_remote.git("diff", "--name-status", "main", BRANCH).split("\n")
    assert [line for line in diff if line] == ["M\tinference/fraud-detector.yaml"]
    assert json.loads(out["changes"]) == [{"path": "inference/fraud-detector.yaml", "kind": "modified"}]


def test_a_conflict_with_the_moved_base_is_refused(workspace: Path, bare_remote: GitopsRemote) -> None:
    bare_remote.commit_files({"inference/fraud-detector.yaml": NEW_MANIFEST.replace("/7", "/9")}, "someone promoted v9")
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    code, out = run_publish(bare_remote, workspace)
    assert code == 0 and out["update"] == "blocked" and out["changed"] == "false"
    assert "changes on main since the agent started" in out["blocked"]
    assert BRANCH not in bare_remote.branches()


def test_a_tampered_base_commit_record_fails_clearly(workspace: Path, bare_remote: GitopsRemote,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "base-commit").write_text("not a commit\n")
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert run_publish(bare_remote, workspace)[0] == 1
    assert "does not hold the base commit" in capsys.readouterr().err
    (workspace / "base-commit").write_text("0" * 40 + "\n")
    assert run_publish(bare_remote, workspace)[0] == 1
    assert "cannot be fetched" in capsys.readouterr().err
    assert BRANCH not in bare_remote.branches()


# ------------------------------------------------------------------------------------ item 8: the run's own files


def test_a_run_may_change_only_its_own_files(workspace: Path, bare_remote: GitopsRemote) -> None:
    bare_remote.commit_files({"inference/churn.yaml": "kind: InferenceService\nmetadata: {name: churn}\n"}, "churn")
    ws = workspace.parent / "ws-own"
    assert run_prepare(bare_remote, ws) == 0
    write(ws / "repo", {
        "inference/fraud-detector.yaml": NEW_MANIFEST,
        "model-cards/fraud-detector.md": NEW_CARD,
        "inference/churn.yaml": "kind: InferenceService\nmetadata: {name: churn}\nspec: {storageUri: s3://evil}\n",
        "inference/kustomization.yaml": "resources: [https://evil.example/base]\n",
        "inference/.gitattributes": "*.yaml -diff\n",
    })
    code, out = publish_as_promotion(bare_remote, ws)
    assert code == 0
    refused = {r["path"]: r["reason"] for r in json.loads(out["refused"])}
    assert set(refused) == {"inference/churn.yaml", "inference/kustomization.yaml", "inference/.gitattributes"}
    assert "not one of this run's files" in refused["inference/churn.yaml"]
    assert "dotfiles" in refused["inference/.gitattributes"]
    assert tree(bare_remote, BRANCH) == {**BARE_REMOTE_FILES, "inference/churn.yaml": bare_remote.read(
        "inference/churn.yaml", "main"), "inference/fraud-detector.yaml": NEW_MANIFEST,
        "model-cards/fraud-detector.md": NEW_CARD}


def test_the_generated_agent_pod_passes_the_pattern_to_publish() -> None:
    import yaml

    from tests.conftest import ROOT

    for name, pattern in (("mlflow-promotion", "promotion"), ("drift-remediation", "drift"),
                          ("failure-triage", "triage"), ("fairness-audit", "fairness")):
        doc = yaml.safe_load((ROOT / "generated" / "workflowtemplates" / f"{name}.yaml").read_text())
        [agent] = [t for t in doc["spec"]["templates"] if "containerSet" in t]
        main = next(c for c in agent["containerSet"]["containers"] if c["name"] == "main")
        assert f"--pattern={pattern}" in main["args"], name
        assert "HF_PARAM_CONTEXT" in {e["name"] for e in main["env"]}, name


def test_the_branch_of_a_merged_pull_request_is_reused(workspace: Path, bare_remote: GitopsRemote,
                                                       tmp_path: Path) -> None:
    """Every commit of the branch is already on main (its PR was merged, the branch kept): a new change rebuilds
    it on main."""
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    assert run_publish(bare_remote, workspace)[0] == 0
    bare_remote.git("update-ref", "refs/heads/main", bare_remote.head(BRANCH))  # merged fast-forward
    code, out = redeliver(bare_remote, tmp_path, "ws-2", {"model-cards/fraud-detector.md": NEW_CARD})
    assert code == 0 and out["update"] == "rebuilt"
    assert bare_remote.git("rev-parse", f"{BRANCH}^").strip() == bare_remote.head("main")
