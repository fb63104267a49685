"""prepare-workspace -> (an agent edits files) -> publish, against a real bare git repository on disk.

The hostile-agent tests plant git hooks, a core.fsmonitor command and a core.hooksPath in the agent's checkout
that would write marker files if any git command ever ran there, plus symlinks, a FIFO and edits outside the
allow-list; publish must push only the allowed regular files and trigger none of the traps.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hera_flows.cli import run_step
from hera_flows.steps import gitrepo, publish
from hera_flows.steps.allowlist import AllowList, parse_patterns
from hera_flows.steps.common import StepError, TransientError
from tests.support.fixtures_git import BARE_REMOTE_FILES
from tests.support.fixtures_gitops import GitopsRemote
from tests.support.fixtures_workspace import (
    BRANCH,
    NEW_CARD,
    NEW_MANIFEST,
    TITLE,
    commit_count,
    make_context,
    run_prepare,
    run_publish,
    tree,
    write,
)
from tests.support.settings import generated_flags

# ---------------------------------------------------------------------------------------------------------
# allow-list matcher


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("inference/**", "inference/fraud.yaml", True),
        ("inference/**", "inference/team/a/fraud.yaml", True),
        ("inference/**", "inference", False),  # the folder's contents, not a file named like the folder
        ("inference/**", "inference-old/x.yaml", False),
        ("inference/**", "other/inference/x.yaml", False),
        ("model-cards/*.md", "model-cards/fraud.md", True),
        ("model-cards/*.md", "model-cards/sub/fraud.md", False),  # '*' never crosses '/'
        ("model-cards/*.md", "model-cards/fraud.md.bak", False),
        ("model-cards/*.md", "model-cards/.md", True),
        ("model-cards/?.md", "model-cards/a.md", True),
        ("model-cards/?.md", "model-cards/ab.md", False),
        ("**/*.yaml", "x.yaml", True),  # '**' spans zero folders too
        ("**/*.yaml", "a/b/c/x.yaml", True),
        ("**/*.yaml", "a/b/c/x.yml", False),
        ("a/**/b.txt", "a/b.txt", True),
        ("a/**/b.txt", "a/x/y/b.txt", True),
        ("a/**/b.txt", "a/x/y/c.txt", False),
        ("README.md", "README.md", True),
        ("README.md", "docs/README.md", False),
        ("inference/", "inference/x.yaml", True),  # a trailing '/' means the folder's contents
        ("a.b/[x].yaml", "a.b/[x].yaml", True),  # everything but * and ? is literal
        ("a.b/[x].yaml", "a.b/x.yaml", False),
        ("inference/*", "inference/.hidden", True),
    ],
)
def test_allowlist_matching(pattern: str, path: str, expected: bool) -> None:
    assert AllowList.parse(pattern).allows(path) is expected


def test_allowlist_parsing_and_folder_pruning() -> None:
    allow = AllowList.parse(" inference/** , model-cards/*.md,,")
    assert allow.patterns == ("inference/**", "model-cards/*.md")
    assert allow.allows("model-cards/x.md") and not allow.allows("README.md")
    assert allow.may_contain("inference") and allow.may_contain("inference/deep/er")
    assert allow.may_contain("model-cards") and not allow.may_contain("model-cards/sub")
    assert not allow.may_contain("node_modules") and not allow.may_contain(".github")
    assert AllowList.parse("**/x").may_contain("anything/at/all")
    for bad in ("/etc/**", "../x", "a/../b", "a//b", "a/**b", "a\\b", "a/./b"):
        with pytest.raises(StepError):
            parse_patterns(bad)
    with pytest.raises(ValueError):
        allow.allows("../inference/x")


# ---------------------------------------------------------------------------------------------------------
# prepare-workspace


def test_prepare_lays_out_the_agent_contract(workspace: Path, bare_remote: GitopsRemote) -> None:
    repo = workspace / "repo"
    assert ((repo / "inference" / "fraud-detector.yaml").read_text()
            == BARE_REMOTE_FILES["inference/fraud-detector.yaml"])
    head = gitrepo.run_git(["rev-parse", "HEAD"], cwd=repo).stdout.strip()
    assert head == bare_remote.head("main")
    assert gitrepo.run_git(["branch", "--show-current"], cwd=repo).stdout.strip() == BRANCH
    context_text = (workspace / "context.json").read_text()
    assert json.loads(context_text) == make_context()
    assert context_text == json.dumps(make_context(), indent=2, sort_keys=True) + "\n"
    prompt = (workspace / "prompt.md").read_text()
    assert "`inference/**`" in prompt and "`model-cards/**`" in prompt
    assert "s3://models/fraud-detector/7" in prompt
    assert (workspace / "out").is_dir() and not any((workspace / "out").iterdir())
    # The token-free checkout: nothing credential-like in its config.
    assert "HF_GIT_TOKEN" not in (repo / ".git" / "config").read_text()
    # Its objects are copies, never hard links into the remote the agent must not be able to modify.
    objects = [p for p in (repo / ".git" / "objects").rglob("*") if p.is_file()]
    assert objects and all(p.stat().st_nlink == 1 for p in objects)


def test_prepare_is_repeatable_and_rejects_bad_input(
    workspace: Path, bare_remote: GitopsRemote, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "repo" / "stray.txt").write_text("left by an earlier attempt")
    assert run_prepare(bare_remote, workspace) == 0  # a retried container starts from a fresh clone
    assert not (workspace / "repo" / "stray.txt").exists()

    monkeypatch.setenv("HF_PARAM_CONTEXT", "{not json")
    assert run_prepare(bare_remote, workspace) == 1
    assert "context parameter is not valid JSON" in capsys.readouterr().err

    monkeypatch.setenv("HF_PARAM_CONTEXT", json.dumps(make_context()))
    monkeypatch.setenv("HF_PARAM_BRANCH", "bad..branch")
    assert run_prepare(bare_remote, workspace) == 1
    assert "not a valid git branch name" in capsys.readouterr().err


def test_prepare_uses_the_prompt_module(
    tmp_path: Path, bare_remote: GitopsRemote, step_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_render(pattern: str, context: dict[str, Any], allowed: list[str] | None,
                    settings: dict[str, Any], *, files: dict[str, str], template: str | None) -> str:
        calls.append((pattern, context, allowed, settings))
        assert files["summary_file"] == str(tmp_path / "ws" / "summary.md") and template is None
        return "PROMPT"

    monkeypatch.setattr("hera_flows.steps.prompts.render_prompt", fake_render)
    assert run_prepare(bare_remote, tmp_path / "ws", allowed="inference/**,model-cards/*.md") == 0
    # the prompt gets the pattern's editor settings as configured (here config/flows.yaml's)
    settings = {"inference_dir": "inference", "model_cards_dir": "model-cards",
                "gpu_node_selector_key": "nvidia.com/gpu.product"}
    assert calls == [("promotion", make_context(), ["inference/**", "model-cards/*.md"], settings)]
    assert (tmp_path / "ws" / "prompt.md").read_text() == "PROMPT"


# ---------------------------------------------------------------------------------------------------------
# publish


def test_publish_pushes_exactly_the_agents_change(workspace: Path, bare_remote: GitopsRemote) -> None:
    base_head = bare_remote.head("main")
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST, "model-cards/fraud-detector.md": NEW_CARD,
                               "inference/extra/canary.yaml": "kind: ConfigMap\n"})
    (workspace / "summary.md").write_text("Pointed the InferenceService at version 7.\n")

    code, out = run_publish(bare_remote, workspace)
    assert code == 0
    assert out["changed"] == "true" and out["branch"] == BRANCH
    assert bare_remote.head(BRANCH) == out["commit"]
    expected = dict(BARE_REMOTE_FILES, **{
        "inference/fraud-detector.yaml": NEW_MANIFEST, "model-cards/fraud-detector.md": NEW_CARD,
        "inference/extra/canary.yaml": "kind: ConfigMap\n",
    })
    assert tree(bare_remote, BRANCH) == expected
    assert bare_remote.git("rev-parse", f"{BRANCH}^").strip() == base_head  # one commit on top of the base
    assert bare_remote.head("main") == base_head  # the base branch is never touched
    log = bare_remote.git("log", "-1", "--format=%an <%ae>%n%cn%n%s", BRANCH).splitlines()
    assert log == ["hera-flows bot <bot@hera-flows.invalid>", "hera-flows bot", TITLE]
    assert json.loads(out["files"]) == {
        "inference/extra/canary.yaml": "kind: ConfigMap\n",
        "inference/fraud-detector.yaml": NEW_MANIFEST,
        "model-cards/fraud-detector.md": NEW_CARD,
    }
    assert json.loads(out["refused"]) == []
    assert out["summary"] == "Pointed the InferenceService at version 7.\n"


def test_publish_with_the_builtin_agent(workspace: Path, bare_remote: GitopsRemote) -> None:
    """The real chain: prepare -> agent-builtin -> publish; the branch holds exactly the agent's files."""
    agent_flags = generated_flags("agent-builtin", template="mlflow-promotion")
    assert run_step(["agent-builtin", *agent_flags, f"--workspace={workspace}"]) == 0
    edited = {p: (workspace / "repo" / p).read_text() for p in ("inference/fraud-detector.yaml",)}
    assert "s3://models/fraud-detector/7" in edited["inference/fraud-detector.yaml"]
    code, out = run_publish(bare_remote, workspace)
    assert code == 0 and out["changed"] == "true"
    branch_files = tree(bare_remote, BRANCH)
    assert branch_files["inference/fraud-detector.yaml"] == edited["inference/fraud-detector.yaml"]
    assert branch_files["README.md"] == BARE_REMOTE_FILES["README.md"]
    assert set(json.loads(out["files"])) <= {"inference/fraud-detector.yaml", "model-cards/fraud-detector.md"}
    assert "fraud-detector" in out["summary"]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``folder`` with its size and modification time in nanoseconds."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def plant_traps(repo: Path, markers: Path) -> list[Path]:
    """Everything an agent could leave in .git to make a later git command run its code; returns the markers."""
    markers.mkdir()
    hooks_dir = repo / ".git" / "hooks"
    evil_hooks = repo / ".git" / "evil-hooks"
    evil_hooks.mkdir()
    expected = []
    for folder in (hooks_dir, evil_hooks):
        for hook in ("pre-commit", "post-checkout", "commit-msg", "pre-push", "post-commit", "reference-transaction",
                     "pre-auto-gc", "post-index-change"):
            marker = markers / f"{folder.name}-{hook}"
            script = folder / hook
            script.write_text(f"#!/bin/sh\necho planted > '{marker}'\nexit 0\n")
            script.chmod(0o755)
            expected.append(marker)
    fsmonitor = repo / ".git" / "fsmonitor.sh"
    fsmonitor.write_text(f"#!/bin/sh\necho planted > '{markers / 'fsmonitor'}'\nexit 1\n")
    fsmonitor.chmod(0o755)
    expected.append(markers / "fsmonitor")
    with (repo / ".git" / "config").open("a") as config:
        config.write(
            "[core]\n"
            f"\tfsmonitor = {fsmonitor}\n"
            f"\thooksPath = {evil_hooks}\n"
            f"\tsshCommand = sh -c 'echo planted > {markers / 'ssh'}'\n"
            "[commit]\n\tgpgSign = true\n"
        )
    expected.append(markers / "ssh")
    return expected


def test_publish_ignores_a_hostile_checkout(workspace: Path, bare_remote: GitopsRemote, tmp_path: Path) -> None:
    repo = workspace / "repo"
    markers = plant_traps(repo, tmp_path / "markers")
    write(repo, {
        "inference/fraud-detector.yaml": NEW_MANIFEST,
        ".github/workflows/ci.yml": "name: ci\non: [push]\njobs: {exfiltrate: {runs-on: ubuntu-latest}}\n",
        "README.md": "# owned\n",
        "scripts/new-tool.sh": "#!/bin/sh\n",
    })
    (workspace / "outside.txt").write_text("the agent may write next to the checkout; it is never published\n")
    (repo / "model-cards" / "fraud-detector.md").unlink()  # an allowed deletion
    git_dir_before = snapshot(repo / ".git")

    code, out = run_publish(bare_remote, workspace)
    assert code == 0 and out["changed"] == "true"
    assert [m for m in markers if m.exists()] == []
    assert snapshot(repo / ".git") == git_dir_before  # no git command touched the agent's checkout (not even the index)
    branch = tree(bare_remote, BRANCH)
    expected = dict(BARE_REMOTE_FILES, **{"inference/fraud-detector.yaml": NEW_MANIFEST})
    del expected["model-cards/fraud-detector.md"]
    assert branch == expected
    refused = {r["path"]: r["reason"] for r in json.loads(out["refused"])}
    assert set(refused) == {".github/workflows/ci.yml", "README.md", "scripts/"}
    assert "outside the allowed paths" in refused["README.md"]
    assert json.loads(out["files"]) == {"inference/fraud-detector.yaml": NEW_MANIFEST,
                                        "model-cards/fraud-detector.md": ""}

    # Control: the traps are live — plain git in that checkout does run the planted code.
    subprocess.run(["git", "commit", "--allow-empty", "-q", "-m", "x", "--no-gpg-sign"], cwd=repo, check=False,
                   capture_output=True, env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull})
    assert (markers[0].parent / "evil-hooks-pre-commit").exists()


def test_publish_refuses_symlinks_fifos_and_links_out(
    workspace: Path, bare_remote: GitopsRemote, tmp_path: Path
) -> None:
    repo = workspace / "repo"
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("token=hunter2\n")
    (repo / "inference" / "stolen.yaml").symlink_to(secret_file)
    (repo / "inference" / "alias.yaml").symlink_to("fraud-detector.yaml")
    outside_dir = tmp_path / "elsewhere"
    outside_dir.mkdir()
    (outside_dir / "payload.yaml").write_text("kind: Secret\n")
    (repo / "inference" / "linked-dir").symlink_to(outside_dir, target_is_directory=True)
    os.mkfifo(repo / "inference" / "pipe.yaml")
    write(repo, {"model-cards/fraud-detector.md": NEW_CARD})

    code, out = run_publish(bare_remote, workspace)
    assert code == 0 and out["changed"] == "true"
    refused = {r["path"]: r["reason"] for r in json.loads(out["refused"])}
    assert {"inference/stolen.yaml", "inference/alias.yaml", "inference/linked-dir",
            "inference/pipe.yaml"} == set(refused)
    assert "symbolic link" in refused["inference/stolen.yaml"]
    assert "not a regular file" in refused["inference/pipe.yaml"]
    assert tree(bare_remote, BRANCH) == dict(BARE_REMOTE_FILES, **{"model-cards/fraud-detector.md": NEW_CARD})
    assert "hunter2" not in out["files"]


def test_publish_refuses_a_symlinked_checkout(workspace: Path, bare_remote: GitopsRemote, tmp_path: Path) -> None:
    real = tmp_path / "real-repo"
    (workspace / "repo").rename(real)
    (workspace / "repo").symlink_to(real, target_is_directory=True)
    code, _ = run_publish(bare_remote, workspace)
    assert code == 1
    assert bare_remote.branches() == ["main"]


def test_publish_without_change_pushes_nothing(workspace: Path, bare_remote: GitopsRemote) -> None:
    # Edits that cancel out, a new empty folder and a rewrite with identical bytes are no change.
    (workspace / "repo" / "inference" / "empty").mkdir()
    write(workspace / "repo", {"inference/fraud-detector.yaml": BARE_REMOTE_FILES["inference/fraud-detector.yaml"]})
    code, out = run_publish(bare_remote, workspace)
    assert code == 0
    assert out["changed"] == "false" and out["commit"] == "" and json.loads(out["files"]) == {}
    assert bare_remote.branches() == ["main"]


def test_an_issue_request_pushes_nothing_and_is_passed_on(workspace: Path, bare_remote: GitopsRemote) -> None:
    # The agent edits a file but also asks for an issue: the issue wins, the edit is discarded.
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    issue = {"title": "  Upstream   data bug\n", "body": "Column `amount` is null in 40% of rows.",
             "labels": ["data-quality", "data-quality"]}
    (workspace / "issue.json").write_text(json.dumps(issue))
    code, out = run_publish(bare_remote, workspace)
    assert code == 0
    assert out["changed"] == "false" and out["commit"] == "" and bare_remote.branches() == ["main"]
    assert json.loads(out["issue"]) == {"title": "Upstream data bug", "body": issue["body"], "labels": ["data-quality"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "must hold a JSON object"),
        ('{"title": "", "body": "x"}', "'title' must be a non-empty string"),
        ('{"title": "t", "body": 3}', "'body' must be a non-empty markdown string"),
        ('{"title": "t", "body": "b", "labels": ["ok", "$(rm -rf /)"]}', "'labels' must be a list of plain"),
    ],
)
def test_a_malformed_issue_request_fails_clearly(
    workspace: Path, bare_remote: GitopsRemote, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "issue.json").write_text(content)
    code, _ = run_publish(bare_remote, workspace)
    assert code == 1 and message in capsys.readouterr().err
    assert bare_remote.branches() == ["main"]


def test_a_symlinked_issue_request_is_ignored(workspace: Path, bare_remote: GitopsRemote, tmp_path: Path) -> None:
    outside = tmp_path / "planted.json"
    outside.write_text(json.dumps({"title": "t", "body": "b"}))
    (workspace / "issue.json").symlink_to(outside)
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    code, out = run_publish(bare_remote, workspace)
    assert code == 0 and out["changed"] == "true" and out["issue"] == ""


def test_publish_only_refused_changes_is_no_change(workspace: Path, bare_remote: GitopsRemote) -> None:
    write(workspace / "repo", {"README.md": "# changed\n"})
    code, out = run_publish(bare_remote, workspace)
    assert code == 0 and out["changed"] == "false"
    assert [r["path"] for r in json.loads(out["refused"])] == ["README.md"]
    assert bare_remote.branches() == ["main"]


def test_publish_twice_adds_no_commit(workspace: Path, bare_remote: GitopsRemote) -> None:
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    _, first = run_publish(bare_remote, workspace)
    head = bare_remote.head(BRANCH)
    code, second = run_publish(bare_remote, workspace)
    assert code == 0 and second["changed"] == "true"
    assert second["commit"] == first["commit"] == bare_remote.head(BRANCH) == head
    assert commit_count(bare_remote, BRANCH) == 2


def test_redelivery_rebuilds_the_branch_on_the_fresh_base(
    workspace: Path, bare_remote: GitopsRemote, tmp_path: Path
) -> None:
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    _, first = run_publish(bare_remote, workspace)
    new_base = bare_remote.commit_files({"README.md": "# ml-serving v2\n"}, "Team edits the README")

    # The redelivered event: a fresh workspace from the new base, the same agent edit.
    ws2 = tmp_path / "workspace-2"
    assert run_prepare(bare_remote, ws2) == 0
    write(ws2 / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    code, second = run_publish(bare_remote, ws2)
    assert code == 0 and second["commit"] != first["commit"]
    assert bare_remote.git("rev-parse", f"{BRANCH}^").strip() == new_base
    assert tree(bare_remote, BRANCH)["README.md"] == "# ml-serving v2\n"
    assert tree(bare_remote, BRANCH)["inference/fraud-detector.yaml"] == NEW_MANIFEST


def test_push_with_a_stale_lease_is_transient(
    workspace: Path, bare_remote: GitopsRemote, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    someone_else = bare_remote.commit_files({"inference/other.yaml": "x: 1\n"}, "someone else", branch=BRANCH)
    # Publish looked at the branch before that push: its lease names the branch as absent.
    monkeypatch.setattr(gitrepo, "remote_branch_head", lambda *a, **k: None)
    code, _ = run_publish(bare_remote, workspace)
    assert code == TransientError.exit_code
    assert "changed on the remote while publishing" in capsys.readouterr().err
    assert bare_remote.head(BRANCH) == someone_else


def test_files_output_caps_and_binary(
    workspace: Path, bare_remote: GitopsRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "MAX_FILES_OUTPUT_BYTES", 2000)
    big = "# notes\n" + "x" * 3000 + "\n"
    write(workspace / "repo", {
        "inference/fraud-detector.yaml": NEW_MANIFEST,
        "model-cards/big.md": big,
        "model-cards/plot.png": b"\x89PNG\r\n\x1a\n\x00\x00binary",
    })
    (workspace / "summary.md").write_text("s" * (publish.MAX_SUMMARY_CHARS + 500))
    code, out = run_publish(bare_remote, workspace)
    assert code == 0
    files = json.loads(out["files"])
    assert files == {"inference/fraud-detector.yaml": NEW_MANIFEST, "model-cards/big.md": "",
                     "model-cards/plot.png": ""}
    assert tree(bare_remote, BRANCH)["model-cards/big.md"] == big  # capped in the output only, pushed in full
    assert bare_remote.git("cat-file", "-s", f"{BRANCH}:model-cards/plot.png").strip() == "16"
    assert len(out["summary"]) < publish.MAX_SUMMARY_CHARS + 100 and out["summary"].endswith("(summary truncated)\n")


def test_outputs_planted_as_symlinks_are_replaced(workspace: Path, bare_remote: GitopsRemote, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original\n")
    (workspace / "out" / "changed").symlink_to(victim)
    (workspace / "out" / "files").mkdir()
    (workspace / "summary.md").unlink(missing_ok=True)
    (workspace / "summary.md").symlink_to(victim)
    write(workspace / "repo", {"inference/fraud-detector.yaml": NEW_MANIFEST})
    code, out = run_publish(bare_remote, workspace)
    assert code == 0
    assert victim.read_text() == "original\n"
    assert not (workspace / "out" / "changed").is_symlink() and out["changed"] == "true"
    assert out["summary"] == ""  # a symlinked summary is not followed


def test_gitignored_and_oddly_named_files(workspace: Path, bare_remote: GitopsRemote) -> None:
    bare_remote.commit_files({".gitignore": "*.tmp\n"}, "ignore temp files")
    ws = workspace.parent / "ws-ignore"
    assert run_prepare(bare_remote, ws) == 0
    write(ws / "repo", {"inference/scratch.tmp": "temp\n", "inference/bad\nname.yaml": "x\n",
                        "inference/fraud-detector.yaml": NEW_MANIFEST})
    code, out = run_publish(bare_remote, ws)
    assert code == 0
    refused = {r["path"]: r["reason"] for r in json.loads(out["refused"])}
    assert refused["inference/scratch.tmp"] == "ignored by the repository's .gitignore"
    assert refused["inference/bad\\nname.yaml"] == "the file name contains control characters"
    assert sorted(bare_remote.files(BRANCH)) == sorted([*BARE_REMOTE_FILES, ".gitignore"])


def test_publish_rejects_bad_configuration(workspace: Path, bare_remote: GitopsRemote, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_PARAM_BRANCH", "main")
    assert run_publish(bare_remote, workspace)[0] == 1
    assert "base branch" in capsys.readouterr().err
    monkeypatch.setenv("HF_PARAM_BRANCH", "--upload-pack=evil")
    assert run_publish(bare_remote, workspace)[0] == 1
    monkeypatch.setenv("HF_PARAM_BRANCH", BRANCH)
    assert run_publish(bare_remote, workspace, allowed="../**")[0] == 1
    assert bare_remote.branches() == ["main"]


def test_scan_keeps_unchanged_base_symlinks(tmp_path: Path) -> None:
    """A symlink the base branch itself holds is not a change (and an agent's edit to its target is)."""
    from tests.support.fixtures_gitops import git

    remote_root = tmp_path / "r"
    seed = tmp_path / "seed"
    git("init", "-q", "--initial-branch=main", str(seed))
    write(seed, {"inference/a.yaml": "a: 1\n"})
    (seed / "inference" / "current.yaml").symlink_to("a.yaml")
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    git("init", "-q", "--bare", str(remote_root))
    git("push", "-q", str(remote_root), "HEAD:refs/heads/main", cwd=seed)
    clone = tmp_path / "clone"
    gitrepo.clone(str(remote_root), clone, "main")
    agent = tmp_path / "agent"
    gitrepo.clone(str(remote_root), agent, "main")
    (agent / "inference" / "a.yaml").write_text("a: 2\n")
    result = publish.scan(agent, clone, AllowList.parse("inference/**"))
    assert [(c.path, c.kind) for c in result.changes] == [("inference/a.yaml", "modified")]
    assert result.refused == []
    assert stat.S_ISLNK(os.lstat(agent / "inference" / "current.yaml").st_mode)
