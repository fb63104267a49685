"""`make demo`: the four patterns, end to end, on this machine — visibly.

    python -m hera_flows.local.demo [--workdir DIR] [--bodies DIR] [--summary-json FILE] [--agent claude-code|codex]

What runs for real: an MLflow server (sqlite store) started here, a scikit-learn model trained and registered in
it, MLflow's own signed webhook delivery when an alias is set, the generated WorkflowTemplates (rendered from a
temporary copy of config/flows.yaml) run step by step by the local runner with the builtin agent, and bare git
repositories the steps clone and push branches to. What cannot run on a laptop is a thin stand-in
(hera_flows/local/standins/): GitHub's REST API (the PR "that would be opened" is printed from it), the
Kubernetes API the triage steps read, a KServe staging endpoint, and the Argo Events webhook EventSource (the
receiver here wraps MLflow's delivery exactly as Argo Events would; the generated Sensor's filters and
parameter mapping then run locally).

Acts: 1. promotion (alias `champion` set -> PR), 2. drift (Alertmanager alert -> PR; the same alert inside the
cooldown is skipped; an alert pointing at an upstream data bug -> `data-quality` issue), 3. failure triage (a
failed training workflow, OOMKilled -> PR raising its memory; a Kubeflow Pipelines run with a bug in its code ->
issue for the owner), 4. fairness audit (the Monday 06:00 calendar tick -> model-card refresh PR). A summary
table ends it. Every PR and issue is printed whole and saved, title and body, to the folder the summary names
(``--bodies``; by default ``bodies/`` in the work folder, or a kept temporary folder when the work folder is
removed).

``--agent claude-code`` (or ``codex``; ``make demo AGENT=claude-code``) runs the real coding-agent CLI (installed by
``make agents``) in the agent container instead of the builtin editor. The model is a scripted stand-in
(hera_flows/local/scripted_agent.py) that asks the CLI for the change the builtin editor would make; the CLI
reads and edits the checkout with its own tools under hera-flows' permission flags, and each PR says so.

Everything it starts it stops, on success, error, Ctrl-C or SIGTERM: the MLflow server's whole process group,
the stand-in servers, and the temporary folder (unless ``--workdir`` was given). The committed output
(generated/, eventsources/, sensors/) is never touched.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MODEL = "fraud-detector"
WEBHOOK_SECRET = "demo-webhook-secret"
FORGE_SECRET = "hera-flows-forge"
GITOPS_SLUG = "acme/ml-gitops"
PIPELINES_SLUG = "acme/ml-pipelines"


class DemoError(Exception):
    """Something the demo needs is missing or a step of the story did not happen."""


@dataclass
class Outcome:
    """One row of the summary table."""

    pattern: str
    event: str
    workflow: str
    phase: str
    decision: str
    result: str
    ok: bool


# --- output ------------------------------------------------------------------------------------------------------

BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() \
    else ("", "", "", "", "")


def say(line: str = "") -> None:
    print(line, flush=True)


def banner(title: str) -> None:
    say()
    say(f"{BOLD}{'=' * 100}{RESET}")
    say(f"{BOLD}{title}{RESET}")
    say(f"{BOLD}{'=' * 100}{RESET}")


def note(line: str) -> None:
    say(f"{DIM}--{RESET} {line}")


# --- git ---------------------------------------------------------------------------------------------------------

def git(*args: str, cwd: Path | None = None) -> str:
    """Plain git with user/system configuration ignored (the demo's own seeding commits)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
           "GIT_AUTHOR_NAME": "Platform team", "GIT_AUTHOR_EMAIL": "platform@example.com",
           "GIT_COMMITTER_NAME": "Platform team", "GIT_COMMITTER_EMAIL": "platform@example.com"}
    result = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", *args],
                            cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise DemoError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class BareRepo:
    path: Path

    @property
    def url(self) -> str:
        return str(self.path)

    def branches(self, prefix: str = "") -> list[str]:
        refs = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=self.path).split()
        return [b for b in refs if b.startswith(prefix) and b != "main"]

    def diff(self, branch: str) -> str:
        return git("diff", "main", branch, cwd=self.path)


def bare_repo(root: Path, files: dict[str, str]) -> BareRepo:
    """A bare repository whose main branch holds ``files`` (the layout from examples/) in one commit."""
    bare, seed = root / "remote.git", root / "seed"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("init", "--quiet", "--initial-branch=main", str(seed))
    for relative, content in files.items():
        target = seed / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "Initial layout", cwd=seed)
    git("push", "--quiet", str(bare), "HEAD:refs/heads/main", cwd=seed)
    shutil.rmtree(seed)
    return BareRepo(bare)


def example_files(*folders: str) -> dict[str, str]:
    files: dict[str, str] = {"README.md": "# GitOps repository (hera-flows demo)\n"}
    for folder in folders:
        base = EXAMPLES / folder / "gitops-repo"
        for path in sorted(base.rglob("*")):
            if path.is_file():
                files[str(path.relative_to(base))] = path.read_text(encoding="utf-8")
    return files


# --- the demo ----------------------------------------------------------------------------------------------------

AGENT_SECRET = "hera-flows-agent"
AGENT_BIN = ROOT / ".agents" / "node_modules" / ".bin"


class Demo:
    def __init__(self, workdir: Path, agent: str | None = None, bodies: Path | None = None) -> None:
        self.workdir = workdir
        self.bodies = bodies or workdir / "bodies"
        self.saved: list[Path] = []
        self.agent = agent
        self.pattern = ""
        self.stack = contextlib.ExitStack()
        self.outcomes: list[Outcome] = []
        self.generated = workdir / "rendered"
        self.state = workdir / "state"
        self.runs = 0

    # -- services ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        from hera_flows.local.mlflow_server import WebhookReceiver, start_mlflow_server, stop_mlflow_server
        from hera_flows.local.standins.github import GitHubStandIn
        from hera_flows.local.standins.kserve import start_kserve
        from hera_flows.local.standins.kube import start_triage_kube

        banner("Starting what a cluster would provide")
        started = time.monotonic()
        self.mlflow = start_mlflow_server(self.workdir / "mlflow")
        self.stack.callback(stop_mlflow_server, self.mlflow)
        self.stack.callback(note, "stopping the MLflow server (its whole process group) and the stand-ins")
        note(f"MLflow server (sqlite store)       {self.mlflow.uri}  pid {self.mlflow.process.pid}, "
             f"up in {time.monotonic() - started:.1f}s, log {self.mlflow.log_path}")
        self.receiver = WebhookReceiver()
        self.stack.callback(self.receiver.close)
        note(f"webhook EventSource stand-in       {self.receiver.url_for('/mlflow')}")
        self.github = GitHubStandIn().start()
        self.stack.callback(self.github.stop)
        for slug in (GITOPS_SLUG, PIPELINES_SLUG):
            self.github.add_repo(slug)
        note(f"GitHub REST API stand-in           {self.github.url}  (repos {GITOPS_SLUG}, {PIPELINES_SLUG})")
        self.kserve, stop = start_kserve(MODEL)
        self.stack.callback(stop)
        note(f"KServe staging endpoint stand-in   {self.kserve.url}")
        self.kube, stop = start_triage_kube()
        self.stack.callback(stop)
        note(f"Kubernetes API stand-in (triage)   {self.kube.host}")
        self.gitops = bare_repo(self.workdir / "gitops", example_files("promotion", "drift", "fairness"))
        self.pipelines = bare_repo(self.workdir / "pipelines", {
            "README.md": "# ML pipelines\n",
            "pipelines/fraud-detector-training.yaml":
                (EXAMPLES / "training" / "fraud-detector-training.yaml").read_text(encoding="utf-8"),
        })
        if self.agent:
            self.start_model()
        note(f"GitOps repository (bare git)       {self.gitops.url}  seeded from examples/*/gitops-repo")
        note(f"pipelines repository (bare git)    {self.pipelines.url}  seeded from examples/training")

    def start_model(self) -> None:
        """The scripted model for the real agent CLI, and the CLI (and the Node.js it runs on) on PATH."""
        from hera_flows.local.scripted_agent import ScriptedClaude, ScriptedCodex, plan

        cli = {"claude-code": "claude", "codex": "codex"}[self.agent or ""]
        if not (AGENT_BIN / cli).exists():
            raise DemoError(f"the {self.agent} CLI is not installed: run `make agents` (npm, from the dev extra)")
        os.environ["PATH"] = os.pathsep.join([str(AGENT_BIN), str(Path(sys.executable).parent),
                                              os.environ.get("PATH", "/usr/bin:/bin")])

        def planner(workspace: Path) -> Any:
            import importlib

            from hera_flows import catalog

            record = catalog.pattern(self.pattern)
            module = importlib.import_module(f"hera_flows.patterns.{record.config_key}")
            return plan(workspace, record.id, module.editor_settings(self.cfg))

        self.model = ScriptedClaude(planner) if self.agent == "claude-code" \
            else ScriptedCodex(planner, api_key="sk-demo-openai-standin")
        self.model.start()
        self.stack.callback(self.model.stop)
        note(f"model API stand-in ({self.agent})    {self.model.url}  scripted: it asks for the builtin editor's "
             "change; the real CLI makes it")

    def close(self) -> None:
        self.stack.close()

    # -- configuration ----------------------------------------------------------------------------------------
    def render(self) -> None:
        """A temporary copy of config/flows.yaml pointed at the local services, rendered into the work folder."""
        from hera_flows.config import parse_config
        from hera_flows.generate import render, write

        config = yaml.safe_load((ROOT / "config" / "flows.yaml").read_text(encoding="utf-8"))
        config["repository"] = {"url": self.gitops.url, "slug": GITOPS_SLUG, "base_branch": "main"}
        config["forge"] = {"kind": "github", "api_url": self.github.url,
                           "token_secret": {"name": FORGE_SECRET, "key": "token"}}
        config["mlflow"] = {"tracking_uri": self.mlflow.uri}
        config["workflow"] = {**config.get("workflow", {}), "retry": {"limit": 1, "backoff_seconds": 1},
                              # the example failure is from 2026-11: accept it whatever today is
                              "ttl_seconds_after_success": 10**9, "ttl_seconds_after_failure": 10**9}
        patterns = config["patterns"]
        patterns["promotion"]["smoke"]["endpoint"] = self.kserve.url
        patterns["drift"]["monitor"]["enabled"] = False
        triage = patterns["failure_triage"]
        triage["repository"] = {"url": self.pipelines.url, "slug": PIPELINES_SLUG, "base_branch": "main"}
        triage["max_event_age_seconds"] = 10**9
        if self.agent:
            key = "ANTHROPIC_API_KEY" if self.agent == "claude-code" else "OPENAI_API_KEY"
            config["agent"] = {"kind": self.agent, "base_url": self.model.url, "max_turns": 40,
                               "timeout_seconds": 300, "api_key_secret": {"name": AGENT_SECRET, "key": key}}
        path = self.workdir / "flows.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.cfg = parse_config(path.read_text(encoding="utf-8"))
        write(render(self.cfg), self.generated)
        note(f"configuration: a copy of config/flows.yaml pointed at the services above -> {path}")
        note(f"rendered manifests (never the committed ones)  -> {self.generated}")

    # -- running ----------------------------------------------------------------------------------------------
    def run(self, template: str, event: str, event_name: str | None = None) -> Any:
        from hera_flows import catalog
        from hera_flows.local.runner import run_workflow

        self.runs += 1
        self.pattern = next(p.id for p in catalog.PATTERNS if template in p.templates)
        named = f" --event-name {event_name}" if event_name else ""
        say(f"{BOLD}$ hera-flows run {template} --event <event>{named}{RESET}   (the local runner: one process per "
            "step)")
        secrets = {FORGE_SECRET: {"token": self.github.token}, "mlflow-webhook": {"secret": WEBHOOK_SECRET}}
        if self.agent:
            secrets[AGENT_SECRET] = {"ANTHROPIC_API_KEY": self.model.api_key or "",
                                     "OPENAI_API_KEY": self.model.api_key or ""}
        return run_workflow(template, generated=self.generated, event=event, event_name=event_name,
                            secrets=secrets,
                            workdir=self.workdir / "runs" / f"{self.runs:02d}-{template}", state_dir=self.state,
                            echo=True)

    def save_body(self, kind: str, slug: str, number: int, title: str, labels: list[str], body: str) -> Path:
        """The whole PR or issue as the forge holds it, as a markdown file in the bodies folder."""
        self.bodies.mkdir(parents=True, exist_ok=True)
        name = f"{len(self.saved) + 1:02d}-{self.pattern or 'demo'}-{kind}-{slug.split('/')[-1]}-{number}.md"
        path = self.bodies / name
        header = f"<!-- {kind} #{number} on github.com/{slug}; labels: {', '.join(labels) or '-'} -->\n"
        path.write_text(f"{header}# {title}\n\n{body}", encoding="utf-8")
        self.saved.append(path)
        return path

    def show_body(self, body: str, path: Path) -> None:
        for line in body.splitlines():
            say(f"  | {line}")
        note(f"saved whole to {path}")

    def show_issue(self, number: int, slug: str) -> None:
        issue = self.github.repos[slug].issues[number]
        labels = self.github.labels(number, slug=slug)
        say()
        say(f"{BOLD}The issue that would be opened on github.com/{slug}:{RESET}")
        say(f"  #{number} {issue['title']}")
        say(f"  labels: {', '.join(labels) or '-'}")
        self.show_body(issue["body"] or "", self.save_body("issue", slug, number, issue["title"], labels,
                                                           issue["body"] or ""))

    def show_pull(self, number: int, repo: BareRepo, *, diff_lines: int = 40) -> None:
        slug = GITOPS_SLUG if repo is self.gitops else PIPELINES_SLUG
        pull = self.github.repos[slug].pulls[number]
        labels = self.github.labels(number, slug=slug)
        say()
        say(f"{BOLD}The pull request that would be opened on github.com/{slug}:{RESET}")
        say(f"  #{number} {pull['title']}")
        say(f"  {pull['head']} -> {pull['base']}   labels: {', '.join(labels) or '-'}")
        self.show_body(pull["body"] or "", self.save_body("pr", slug, number, pull["title"], labels,
                                                          pull["body"] or ""))
        for comment in self.github.comments(number, slug=slug):
            say(f"  comment: {comment['body'].splitlines()[0]}")
        diff = repo.diff(pull["head"]).splitlines()
        say(f"{BOLD}git diff main {pull['head']}{RESET}")
        for line in diff[:diff_lines]:
            say(f"  {line}")
        if len(diff) > diff_lines:
            say(f"  ... ({len(diff) - diff_lines} more lines)")

    def record(self, pattern: str, event: str, result: Any, decision: str, outcome: str, ok: bool) -> None:
        self.outcomes.append(Outcome(pattern, event, result.workflow_name, result.phase, decision, outcome, ok))
        mark = f"{GREEN}OK{RESET}" if ok else f"{RED}UNEXPECTED{RESET}"
        say(f"{BOLD}=> {pattern}: {result.phase}, {outcome}{RESET} [{mark}]")
        if not ok:
            for task in result.tasks.values():
                if task.phase == "Failed":
                    say(f"   {task.name}: {task.message}")

    # -- act 1 ------------------------------------------------------------------------------------------------
    def promotion(self) -> None:
        from hera_flows.local.standins.go_json import argo_event_data

        banner("1. Model promotion: an alias set in MLflow becomes a PR")
        client = self.mlflow.client()
        serving = register_version(self.mlflow.uri, seed=1, c=0.05)
        note(f"trained and registered {MODEL} v{serving['version']} (accuracy {serving['metrics']['accuracy']:.3f}): "
             "what production serves today")
        manifest = self.gitops_file("inference/fraud-detector.yaml")
        manifest = manifest.replace('hera-flows.io/mlflow-version: "6"',
                                    f'hera-flows.io/mlflow-version: "{serving["version"]}"')
        manifest = "\n".join(
            line.split("storageUri:")[0] + f"storageUri: {serving['storage_uri']}" if "storageUri:" in line else line
            for line in manifest.splitlines()
        ) + "\n"
        self.commit_gitops({"inference/fraud-detector.yaml": manifest}, f"serve {MODEL} v{serving['version']}")
        webhook = client.create_webhook(name="hera-flows-promotion", url=self.receiver.url_for("/mlflow"),
                                        events=["model_version_alias.created"], secret=WEBHOOK_SECRET)
        self.stack.callback(_quietly, client.delete_webhook, webhook.webhook_id)
        note(f"MLflow webhook {webhook.webhook_id} -> {self.receiver.url_for('/mlflow')} (model_version_alias.created, "
             "HMAC-signed)")
        candidate = register_version(self.mlflow.uri, seed=2, c=1.0,
                                     tags={"replica_min": "3", "replica_max": "8", "runtime_version": "1.7.0"})
        note(f"trained and registered {MODEL} v{candidate['version']} (accuracy "
             f"{candidate['metrics']['accuracy']:.3f}), deployment tags replica_min=3 replica_max=8 "
             "runtime_version=1.7.0")
        self.receiver.clear()
        client.set_registered_model_alias(MODEL, "champion", candidate["version"])
        note(f"set alias champion -> v{candidate['version']}; waiting for MLflow's webhook delivery ...")
        [request] = self.receiver.wait_for(1, timeout=30)
        signature = request.header("X-MLflow-Signature") or ""
        note(f"MLflow delivered POST {request.path}: X-MLflow-Signature {signature[:18]}..., "
             f"delivery id {request.header('X-MLflow-Delivery-Id')}, {len(request.body)} bytes")
        event = argo_event_data(request.headers, request.body)
        note("wrapped as the Argo Events webhook event ({\"header\": ..., \"body\": ...}, Go's JSON); "
             "the generated Sensor filters it and maps the parameters")
        result = self.run("mlflow-promotion", event)
        pulls = self.github.pulls(slug=GITOPS_SLUG)
        ok = result.phase == "Succeeded" and len(pulls) == 1 and bool(result.outputs.get("pr-url"))
        if pulls:
            self.show_pull(pulls[0]["number"], self.gitops)
        self.record("promotion", f"alias champion -> v{candidate['version']} (MLflow webhook)", result,
                    "proceed", f"PR opened: {result.outputs.get('pr-url') or '-'} (smoke test "
                    f"{result.outputs.get('smoke-result') or '-'})", ok)

    # -- act 2 ------------------------------------------------------------------------------------------------
    def drift(self) -> None:
        banner("2. Drift remediation: an Alertmanager alert becomes a retraining PR; a second one is held back")
        event = (EXAMPLES / "drift" / "event.alertmanager-firing.json").read_text(encoding="utf-8")
        note("event: examples/drift/event.alertmanager-firing.json (PSI of 'amount' 0.52 > 0.2, critical; "
             "a 'warning' alert in the same group is filtered)")
        result = self.run("drift-remediation", event, "alertmanager")
        pulls = [p for p in self.github.pulls(slug=GITOPS_SLUG) if p["head"].startswith("drift/")]
        ok = result.phase == "Succeeded" and len(pulls) == 1 and result.outputs.get("decision") == "proceed"
        if pulls:
            self.show_pull(pulls[0]["number"], self.gitops)
        self.record("drift", "Alertmanager: amount PSI 0.52", result, result.outputs.get("decision", "-"),
                    f"PR opened: {', '.join(_urls(result, 'pr-urls')) or '-'}", ok)

        say()
        note("the same alert fires again a minute later: inside the 6 h cooldown of fraud-detector@amount")
        again = self.run("drift-remediation", event, "alertmanager")
        decision = again.outputs.get("decision", "-")
        still = [p for p in self.github.pulls(slug=GITOPS_SLUG) if p["head"].startswith("drift/")]
        ok = again.phase == "Succeeded" and decision == "skipped-cooldown" and len(still) == 1
        self.record("drift", "the same alert again (inside the cooldown)", again, decision,
                    f"skipped: {again.outputs.get('reason') or '-'}", ok)

        say()
        note("event: examples/drift/event.alertmanager-data-bug.json (41% missing values in 'merchant', threshold 5%): "
             "an upstream data bug, which retraining would only learn")
        bug = self.run("drift-remediation", (EXAMPLES / "drift" / "event.alertmanager-data-bug.json").read_text(
            encoding="utf-8"), "alertmanager")
        issues = [i for i in self.github.issues(slug=GITOPS_SLUG)
                  if "data-quality" in self.github.labels(i["number"], slug=GITOPS_SLUG)]
        if issues:
            self.show_issue(issues[0]["number"], GITOPS_SLUG)
        issue_urls = _urls(bug, "issue-urls")
        ok = bug.phase == "Succeeded" and len(issues) == 1 and len(issue_urls) == 1 and not _urls(bug, "pr-urls")
        self.record("drift", "Alertmanager: merchant missing values 41%", bug, bug.outputs.get("decision", "-"),
                    f"issue opened: {', '.join(issue_urls) or '-'} (data-quality)", ok)

    # -- act 3 ------------------------------------------------------------------------------------------------
    def triage(self) -> None:
        from hera_flows.local import eventsource
        from hera_flows.local.standins.kube import pod_for_node

        banner("3. Failure triage: a training workflow killed for memory becomes a PR raising the limit")
        example = json.loads((EXAMPLES / "triage" / "event.workflow-failed-oom.json").read_text(encoding="utf-8"))
        workflow = example["body"]
        meta = workflow["metadata"]
        note(f"training run {meta['namespace']}/{meta['name']} of examples/training/fraud-detector-training.yaml "
             "failed: its train pod was OOMKilled")
        template = yaml.safe_load((EXAMPLES / "training" / "fraud-detector-training.yaml").read_text(encoding="utf-8"))
        template["metadata"]["namespace"] = meta["namespace"]
        self.kube.add_workflow(workflow)
        self.kube.add_template(template)
        node_id = next(n for n, node in workflow["status"]["nodes"].items() if node.get("type") == "Pod")
        pod = pod_for_node(workflow, node_id, main={"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}})
        self.kube.add_pod(pod, logs={"main": "loading s3://acme-ml/fraud/transactions/ (90 days)\n"
                                             "building features: 41,250,112 rows\nfitting gradient boosting ...\n"})
        note("the Kubernetes API stand-in now holds that Workflow, its WorkflowTemplate, its pod and the pod's log")
        source = yaml.safe_load(
            (self.generated / "eventsources" / "workflow-failures.yaml").read_text(encoding="utf-8"))
        delivered = eventsource.delivering_events(source, workflow, "ADD")
        if not delivered:
            raise DemoError("the generated workflow-failures EventSource does not deliver the example workflow")
        event = eventsource.event_data(workflow, "ADD", source["spec"]["resource"][delivered[0]])
        note(f"the generated EventSource's label selector and field filters deliver it (event '{delivered[0]}', ADD)")
        kubeconfig = self.kube.write_kubeconfig(self.workdir / "kubeconfig")
        with _env("KUBECONFIG", str(kubeconfig)):
            result = self.run("failure-triage", event)
        pulls = self.github.pulls(slug=PIPELINES_SLUG)
        issues = self.github.issues(slug=PIPELINES_SLUG)
        if pulls:
            self.show_pull(pulls[0]["number"], self.pipelines)
        ok = result.phase == "Succeeded" and bool(pulls or issues)
        where = f"PR opened: {result.outputs.get('pr-url')}" if pulls else \
            f"issue opened: {result.outputs.get('issue-url') or '-'}"
        self.record("failure-triage", f"workflow {meta['name']} Failed (OOMKilled)", result,
                    result.outputs.get("category", "-"), where, ok)
        say()
        self.triage_kfp(source)

    def triage_kfp(self, source: dict[str, Any]) -> None:
        """A Kubeflow Pipelines run (no opt-in label, no WorkflowTemplate) whose code raised: an owner issue."""
        from hera_flows.local import eventsource
        from hera_flows.local.standins.kube import pod_for_node

        run = json.loads((EXAMPLES / "triage" / "event.kfp-run-failed.json").read_text(encoding="utf-8"))["body"]
        meta = run["metadata"]
        note(f"Kubeflow Pipelines run {meta['namespace']}/{meta['name']} (pipeline/runid "
             f"{meta['labels']['pipeline/runid'][:8]}..., no opt-in label) failed: its train-model task raised")
        executor = next(n for n, node in run["status"]["nodes"].items()
                        if node.get("displayName") == "executor" and node.get("phase") == "Failed")
        pod = pod_for_node(run, executor, main={"state": {"terminated": {"reason": "Error", "exitCode": 1}}})
        self.kube.add_workflow(run)
        self.kube.add_pod(pod, logs={"main": (
            "I1122 02:07:58 launcher_v2.go:93] downloading input artifact dataset\n"
            "training on ['plan', 'tenure']\nTraceback (most recent call last):\n"
            "  File \"/tmp/tmp.k2/ephemeral_component.py\", line 14, in train_model\n"
            "    labels = frame[\"churned\"]\nKeyError: 'churned'\n")})
        delivered = eventsource.delivering_events(source, run, "ADD")
        if not delivered:
            raise DemoError("the generated workflow-failures EventSource does not deliver the example KFP run")
        note(f"delivered by the KFP watch '{delivered[0]}' (selector: label pipeline/runid exists)")
        with _env("KUBECONFIG", str(self.workdir / "kubeconfig")):
            result = self.run("failure-triage", eventsource.event_data(run, "ADD",
                                                                       source["spec"]["resource"][delivered[0]]))
        issues = self.github.issues(slug=PIPELINES_SLUG)
        if issues:
            self.show_issue(issues[0]["number"], PIPELINES_SLUG)
        ok = result.phase == "Succeeded" and len(issues) == 1 and bool(result.outputs.get("issue-url"))
        self.record("failure-triage", f"KFP run {meta['name']} Failed (KeyError)", result,
                    result.outputs.get("category", "-"),
                    f"issue opened: {result.outputs.get('issue-url') or '-'} (owner tagged)", ok)

    # -- act 4 ------------------------------------------------------------------------------------------------
    def fairness(self) -> None:
        banner("4. Fairness audit: the weekly calendar event refreshes the model cards in one PR")
        dataset = self.workdir / "data" / "fraud-detector-eval.csv"
        write_evaluation_set(dataset)
        client = self.mlflow.client()
        client.set_registered_model_tag(MODEL, "fairness.dataset", str(dataset))
        client.set_registered_model_tag(MODEL, "fairness.prediction_column", "pred")
        note(f"{MODEL}'s evaluation set (600 rows with sex, race, age_group, label and predictions): {dataset}, "
             "named by the registered-model tag fairness.dataset")
        event = (EXAMPLES / "fairness" / "event.calendar.json").read_text(encoding="utf-8")
        note("event: examples/fairness/event.calendar.json (the tick the calendar EventSource sends at the schedule "
             f"{self.cfg.patterns.fairness_audit.schedule!r} ({self.cfg.patterns.fairness_audit.timezone}): "
             "Monday 06:00)")
        result = self.run("fairness-audit", event)
        pulls = [p for p in self.github.pulls(slug=GITOPS_SLUG) if p["head"].startswith("model-card-refresh/")]
        if pulls:
            self.show_pull(pulls[0]["number"], self.gitops, diff_lines=30)
        ok = result.phase == "Succeeded" and len(pulls) == 1
        self.record("fairness-audit", "calendar: weekly audit", result, "proceed",
                    f"PR opened: {result.outputs.get('pr-url') or '-'}", ok)

    # -- act 5 ------------------------------------------------------------------------------------------------
    def rollback(self) -> None:
        banner("5. Rollback: an SLI alert soon after the promotion merged becomes a revert PR")
        promoted = [p for p in self.github.pulls(slug=GITOPS_SLUG) if p["head"].startswith("model-promotion/")]
        if not promoted:
            raise DemoError("the rollback act reverts the promotion of act 1: run it too (--only promotion --only "
                            "rollback)")
        work = self.workdir / "gitops" / "merge"
        git("clone", "--quiet", "--", self.gitops.url, str(work))
        git("merge", "--no-ff", "--quiet", "-m", f"Merge pull request #{promoted[0]['number']} from "
            f"{promoted[0]['head']}", f"origin/{promoted[0]['head']}", cwd=work)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
        shutil.rmtree(work)
        note(f"a reviewer merged PR #{promoted[0]['number']} (the promotion of act 1): production serves it now")
        event = (EXAMPLES / "rollback" / "event.alertmanager-sli.json").read_text(encoding="utf-8")
        note("event: examples/rollback/event.alertmanager-sli.json (ModelErrorRateHigh, critical: 4.2 % errors "
             "against a 0.1 % SLO) from Alertmanager, minutes after the merge")
        result = self.run("model-rollback", event)
        pulls = [p for p in self.github.pulls(slug=GITOPS_SLUG) if p["head"].startswith("model-rollback/")]
        if pulls:
            self.show_pull(pulls[0]["number"], self.gitops)
        ok = result.phase == "Succeeded" and len(pulls) == 1
        self.record("rollback", "Alertmanager: ModelErrorRateHigh", result, result.outputs.get("decision") or "-",
                    f"PR opened: {result.outputs.get('pr-url') or '-'}", ok)

    # -- helpers ----------------------------------------------------------------------------------------------
    def gitops_file(self, path: str) -> str:
        return git("show", f"main:{path}", cwd=self.gitops.path)

    def commit_gitops(self, files: dict[str, str], message: str) -> None:
        work = self.workdir / "gitops" / "edit"
        git("clone", "--quiet", "--", self.gitops.url, str(work))
        for relative, content in files.items():
            (work / relative).write_text(content, encoding="utf-8")
        git("commit", "--quiet", "-am", message, cwd=work)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
        shutil.rmtree(work)

    def summary(self) -> None:
        banner("Summary")
        rows = [("pattern", "event", "workflow", "phase", "decision", "result")]
        rows += [(o.pattern, o.event, o.workflow, o.phase, o.decision, o.result) for o in self.outcomes]
        widths = [min(52, max(len(r[i]) for r in rows)) for i in range(5)]
        for i, row in enumerate(rows):
            say("  ".join(cell[:52].ljust(widths[j]) for j, cell in enumerate(row[:5])) + "  " + row[5])
            if i == 0:
                say("  ".join("-" * w for w in widths) + "  " + "-" * 6)
        failed = [o for o in self.outcomes if not o.ok]
        say()
        say(f"{len(self.outcomes) - len(failed)}/{len(self.outcomes)} as expected. Nothing was sent anywhere: the "
            "PRs live in the GitHub stand-in, the branches in bare repositories under the work folder.")
        if self.saved:
            say(f"Full PR and issue bodies ({len(self.saved)}): {self.bodies}")


def _quietly(function: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(Exception):
        function(*args)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def register_version(tracking_uri: str, *, seed: int, c: float, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Train a small scikit-learn classifier, log it in an MLflow run and register it as a new version of MODEL."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # the registry's progress lines would drown the story
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(800, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] - 0.25 * x[:, 2] + rng.normal(size=800) > 0).astype(int)
    model = LogisticRegression(C=c, max_iter=200).fit(x[:600], y[:600])
    predicted, scores = model.predict(x[600:]), model.predict_proba(x[600:])[:, 1]
    metrics = {"accuracy": float(accuracy_score(y[600:], predicted)), "f1": float(f1_score(y[600:], predicted)),
               "roc_auc": float(roc_auc_score(y[600:], scores))}
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = client.get_experiment_by_name(MODEL)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(MODEL)
    if not client.search_registered_models(filter_string=f"name='{MODEL}'"):
        client.create_registered_model(MODEL)
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as scratch, \
            mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{MODEL}-{seed}") as run:
        mlflow.log_params({"C": c, "max_iter": 200, "seed": seed})
        mlflow.log_metrics(metrics)
        mlflow.sklearn.save_model(model, f"{scratch}/model", pip_requirements=["scikit-learn", "numpy"])
        mlflow.log_artifacts(f"{scratch}/model", artifact_path="model")
    run_id = run.info.run_id
    version = client.create_model_version(MODEL, source=f"runs:/{run_id}/model", run_id=run_id, tags=tags or {})
    storage_uri = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
    return {"version": str(version.version), "metrics": metrics, "storage_uri": storage_uri}


def write_evaluation_set(path: Path, rows: int = 600, seed: int = 7) -> None:
    """An evaluation set whose predictions favour one group a little: something for the audit to report."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], rows), "race": rng.choice(["a", "b", "c"], rows),
                          "age_group": rng.choice(["18-34", "35-54", "55+"], rows),
                          "label": (rng.random(rows) < 0.4).astype(int)})
    frame["pred"] = np.where(rng.random(rows) < 0.15, 1 - frame["label"], frame["label"])
    women = frame["sex"] == "F"
    frame.loc[women, "pred"] = np.where(rng.random(int(women.sum())) < 0.2, 1, frame.loc[women, "pred"])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def _raise_on_sigterm(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every finally: the cleanup runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hera_flows.local.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", help="keep everything in this folder (default: a temporary folder, removed)")
    parser.add_argument("--summary-json", help="also write the summary rows to this file")
    parser.add_argument("--bodies", help="save every PR and issue (title and whole body) here (default: bodies/ in "
                                         "the work folder, or a kept temporary folder when no --workdir is given)")
    parser.add_argument("--only", choices=["promotion", "drift", "triage", "fairness", "rollback"], action="append",
                        help="run only these acts (repeatable; default: all)")
    parser.add_argument("--agent", choices=["builtin", "claude-code", "codex"], default="builtin",
                        help="who edits: the builtin editor (default) or a real agent CLI against a scripted model")
    args = parser.parse_args(argv)
    try:
        import mlflow  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        print(f"demo: {exc.name} is missing: install the dev extra (`make demo` does: pip install -e '.[dev]')",
              file=sys.stderr)
        return 2
    if shutil.which("git") is None:
        print("demo: git is not installed", file=sys.stderr)
        return 2
    if not (EXAMPLES / "training").is_dir():
        print(f"demo: {EXAMPLES} is missing: run the demo from a checkout of hera-flows (`make demo`)", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    # Ctrl-C must stop the demo even when it was started from a shell that ignores SIGINT for background jobs
    # (Python keeps an inherited SIG_IGN instead of installing its KeyboardInterrupt handler).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="hera-flows-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bodies = Path(args.bodies).resolve() if args.bodies else workdir / "bodies" if args.workdir else \
        Path(tempfile.mkdtemp(prefix="hera-flows-demo-bodies-"))
    demo = Demo(workdir, agent=None if args.agent == "builtin" else args.agent, bodies=bodies)
    acts: dict[str, Callable[[], None]] = {"promotion": demo.promotion, "drift": demo.drift,
                                           "triage": demo.triage, "fairness": demo.fairness,
                                           "rollback": demo.rollback}
    code = 1
    try:
        say(f"hera-flows demo: work folder {workdir}")
        demo.start()
        demo.render()
        for name in args.only or list(acts):
            acts[name]()
        demo.summary()
        code = 0 if demo.outcomes and all(o.ok for o in demo.outcomes) else 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopping everything it started", file=sys.stderr)
        code = 130
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
    finally:
        demo.close()
        if args.summary_json:
            Path(args.summary_json).write_text(json.dumps(
                {"exit_code": code, "workdir": str(workdir), "bodies": str(bodies),
                 "saved": [str(p) for p in demo.saved],
                 "mlflow_pid": getattr(getattr(demo, "mlflow", None), "process", None) and demo.mlflow.process.pid,
                 "outcomes": [asdict(o) for o in demo.outcomes]}, indent=2), encoding="utf-8")
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    return code


def _urls(result: Any, name: str) -> list[str]:
    """The URLs of a fan-out's aggregated output (Argo collects one value per chain; a chain that opened no PR
    contributes an empty string)."""
    values = json.loads(result.outputs.get(name) or "[]")
    return [str(v) for v in values if v] if isinstance(values, list) else []


if __name__ == "__main__":
    sys.exit(main())

