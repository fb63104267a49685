"""`hera-flows step promotion-reconcile`: never miss a promotion, and tell the registry where each version stands.

MLflow's webhooks are lossy (a few retries, nothing persisted): a delivery lost while the EventSource restarts is a
promotion nobody acts on. On a schedule (the ``promotion-reconcile`` CronWorkflow) this step compares the registry
with the GitOps repository, for every registered model holding a promotion alias:

| the repository serves ... | and the version ... | then |
| --- | --- | --- |
| the aliased version | was ``proposed``/``smoke-failed`` by us | tag it ``merged`` |
| the aliased version | has no state of ours | nothing (promoted before hera-flows, or by hand) |
| another version | is ``rollback-proposed`` | tag it ``rolled-back`` (the revert is merged) |
| another version | is ``rolled-back`` | nothing: a rolled-back version is never promoted again |
| another version | has an open promotion PR | nothing: it is proposed |
| another version | has neither | start its promotion (its event was lost) |

With a rollout policy (``patterns.promotion.rollout``), a manifest whose ``hera-flows.io/canary-version`` is the
aliased version runs a canary step (hera_flows/steps/promotion/canary.py). Once the step has been merged for
``--dwell-seconds`` (the time of the last commit that changed the manifest), the health SLIs are read from
Prometheus (hera_flows/steps/promotion/health.py): all within bounds, the next step's promotion is started (its
own branch and PR); one out of bounds, the version is tagged ``canary-halted`` and no further step is proposed
until a person removes that tag; no data yet, it waits.

A promotion is started by creating a Workflow from the ``mlflow-promotion`` WorkflowTemplate with
``event-source=reconciler`` and the facts in its ``hera-flows.io/event-body`` annotation (never in a parameter:
Argo would substitute ``{{...}}`` in a registry name), so it goes through the same guard and dedupe as a webhook
(hera_flows/steps/promotion/guard.py): the branch and PR are per model version, and the guard's claim on the
version keeps an event and the reconciler from both building it. The Workflow's name is derived from the model
version, so a second reconcile while the first run still exists is refused by the API server (AlreadyExists) and
counted as already started. At most ``--max-submissions`` runs are started per reconcile (a registry full of
forgotten aliases becomes a steady trickle, not a storm).

Outputs: ``actions`` (one JSON object per model version considered: model, version, alias, served, state, action,
reason) and ``started`` (how many promotions were started).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError, log, retry, secret
from hera_flows.steps.contract import Flag, Step

IN_SYNC, MARK_MERGED, MARK_ROLLED_BACK, START, PROPOSED, SKIP = (
    "in-sync", "mark-merged", "mark-rolled-back", "start-promotion", "proposed", "skip")
WAIT, MARK_HALTED = "wait", "mark-canary-halted"
HISTORY_DEPTH = 200  # commits cloned: enough to date the manifest's last change (the dwell of a canary step)
TRIGGERED_BY = "reconciler"


@dataclass
class Action:
    model: str
    version: str
    alias: str
    served: str | None
    state: str
    action: str
    reason: str
    branch: str = ""
    rollout_step: int | None = None
    health: dict[str, Any] | None = None


@dataclass(frozen=True)
class Canary:
    """What the reconciler needs for a canary in progress: the live step, the policy and how to read the health."""

    percent: int
    steps: tuple[int, ...]
    changed_at: float  # when the manifest last changed on the base branch (epoch seconds)
    dwell_seconds: float
    health: Any  # () -> health.Health


CONTRACT = Step(
    name="promotion-reconcile",
    entry="hera_flows.steps.promotion.reconcile:main",
    summary="start the promotions whose webhook was lost; write merged / rolled-back back to the registry",
    flags=(
        Flag("tracking-uri", "MLflow tracking server URL"),
        Flag("repo-url", "the GitOps repository"),
        Flag("base-branch", "its branch"),
        Flag("inference-dir", "folder of the serving manifests"),
        Flag("aliases", "registry aliases that mean 'serve this version'", form="csv"),
        Flag("forge", "forge kind", choices=("github", "gitlab")),
        Flag("api-url", "the forge's REST API root"),
        Flag("repo-slug", "the repository whose open promotion PRs count as proposed"),
        Flag("namespace", "where the promotion Workflows are created"),
        Flag("template", "the promotion WorkflowTemplate"),
        Flag("max-submissions", "promotions started per reconcile at most", kind=int),
        Flag("rollout-steps", "canary traffic steps in percent (empty: no rollouts)", form="csv"),
        Flag("dwell-seconds", "how long a merged canary step serves before the next is proposed", kind=float),
        Flag("prometheus-url", "the Prometheus HTTP API of the health SLIs"),
        Flag("health", "the health SLIs: [{name, query, max}] (JSON)", form="json"),
        Flag("deadline-seconds", "give up (exit 75) when MLflow, git or the forge still fail after this long",
             kind=float),
    ),
    outputs=("actions", "started"),
)


def main(argv: list[str]) -> int:
    from hera_flows.steps.mlflow_registry import Registry, mlflow_http_settings

    args = CONTRACT.parse(argv)
    if args.max_submissions < 0:
        raise StepError("--max-submissions must not be negative")
    deadline = time.monotonic() + args.deadline_seconds
    with mlflow_http_settings(), tempfile.TemporaryDirectory(prefix="hf-reconcile-") as scratch:
        from hera_flows.steps import gitrepo

        registry = Registry(args.tracking_uri, deadline)
        repo = Path(scratch) / "repo"
        gitrepo.clone(args.repo_url, repo, args.base_branch, token=secret("HF_FORGE_TOKEN", required=False) or None,
                      forge=args.forge, depth=HISTORY_DEPTH, deadline=deadline)
        actions = plan(registry, repo, args, deadline)
        started = apply(registry, actions, args)
    CONTRACT.write(args.outputs, actions=json.dumps([asdict(a) for a in actions], sort_keys=True),
                   started=str(started))
    summary = ", ".join(f"{a.model} v{a.version}: {a.action}" for a in actions) or "no aliased model"
    log(f"promotion-reconcile: {started} promotion(s) started; {summary}")
    return 0


def plan(registry: Any, repo: Path, args: argparse.Namespace, deadline: float | None = None) -> list[Action]:
    """What to do for each aliased model version (see the module docstring); nothing is changed here."""
    from hera_flows.steps.forge.base import open_forge
    from hera_flows.steps.naming import branch_name
    from hera_flows.steps.promotion import lifecycle
    from hera_flows.steps.promotion.guard import PROMOTION_BRANCH_PREFIX
    from hera_flows.steps.promotion.serving_manifest import (
        VERSION_ANNOTATION,
        AmbiguousManifest,
        find_serving_manifest,
    )

    actions: list[Action] = []
    seen: set[tuple[str, str]] = set()
    with open_forge(args.forge, api_url=args.api_url, repo_slug=args.repo_slug,
                    token=secret("HF_FORGE_TOKEN", required=False)) as forge:
        for mv, alias in registry.aliased_versions(list(args.aliases)):
            model, version = str(mv.name), str(mv.version)
            if (model, version) in seen:
                continue  # two aliases on one version: one action
            seen.add((model, version))
            state = str((mv.tags or {}).get(lifecycle.STATE_TAG, ""))
            try:
                found = find_serving_manifest(repo, model, args.inference_dir)
            except AmbiguousManifest as exc:
                actions.append(Action(model, version, alias, None, state, SKIP, str(exc)))
                continue
            if found is None:
                actions.append(Action(model, version, alias, None, state, SKIP,
                                      f"no serving manifest for it under {args.inference_dir}/"))
                continue
            annotations = (found.document.get("metadata") or {}).get("annotations") or {}
            served = str(annotations.get(VERSION_ANNOTATION, "")).strip() or None
            branch = branch_name(PROMOTION_BRANCH_PREFIX, model, f"v{version}")
            canary = _canary(repo, found, version, args, deadline)
            actions.append(decide(model, version, alias, served, state, branch,
                                  lambda b=branch: forge.find_open_pr(b) is not None, canary=canary,
                                  next_pr_open=lambda step, m=model, v=version: forge.find_open_pr(branch_name(
                                      PROMOTION_BRANCH_PREFIX, m, f"v{v}", f"{step}pct")) is not None))
    return actions


def _canary(repo: Path, found: Any, version: str, args: argparse.Namespace, deadline: float | None) -> Canary | None:
    """The canary step the base branch runs for ``version`` (None when none, or rollouts are off)."""
    from hera_flows.steps.gitrepo import run_git
    from hera_flows.steps.promotion import canary, health

    live = canary.live_canary(found.document)
    steps = tuple(int(s) for s in args.rollout_steps)
    if live is None or live[0] != version or not steps:
        return None
    stamp = run_git(["log", "-1", "--format=%ct", "--", found.relative], cwd=repo).stdout.strip()
    changed_at = float(stamp) if stamp.isdigit() else time.time()
    metadata = found.document.get("metadata") or {}
    slis = health.parse_slis(args.health)

    def read() -> Any:
        return health.evaluate(args.prometheus_url, slis, model=str(metadata.get("name", "")),
                               namespace=str(metadata.get("namespace") or ""), deadline=deadline)

    return Canary(live[1], steps, changed_at, args.dwell_seconds, read)


def decide(model: str, version: str, alias: str, served: str | None, state: str, branch: str,
           pr_open: Any, *, canary: Canary | None = None, next_pr_open: Any = None,
           now: float | None = None) -> Action:
    """The row of the module docstring's table that applies (``pr_open()`` asks the forge only when needed)."""
    from hera_flows.steps.promotion import lifecycle

    if canary is not None and served != version:
        return decide_canary(model, version, alias, served, state, branch, canary, next_pr_open,
                             time.time() if now is None else now)
    if served == version:
        if state in lifecycle.OPEN_STATES or lifecycle.is_canary_state(state):
            return Action(model, version, alias, served, state, MARK_MERGED, "the repository serves it", branch)
        return Action(model, version, alias, served, state, IN_SYNC, "the repository serves it", branch)
    if state == lifecycle.ROLLBACK_PROPOSED:
        return Action(model, version, alias, served, state, MARK_ROLLED_BACK,
                      f"the repository serves version {served or '?'} again: the revert is merged", branch)
    if state in lifecycle.FINAL_STATES:
        return Action(model, version, alias, served, state, SKIP, f"it was {state}: never promoted again", branch)
    if pr_open():
        return Action(model, version, alias, served, state, PROPOSED, f"its promotion PR ({branch}) is open", branch)
    return Action(model, version, alias, served, state, START,
                  f"the alias {alias!r} names it, the repository serves {served or 'another version'} and no "
                  "promotion PR is open: its event was lost", branch)


def decide_canary(model: str, version: str, alias: str, served: str | None, state: str, branch: str,
                  canary: Canary, next_pr_open: Any, now: float) -> Action:
    """A canary step of ``version`` is live: wait for its dwell, then the next step only while the SLIs hold."""
    from hera_flows.steps.promotion import health, lifecycle
    from hera_flows.steps.promotion.canary import next_step

    step = next_step(canary.steps, canary.percent)
    here = f"canary at {canary.percent} %"
    if state == lifecycle.CANARY_HALTED:
        return Action(model, version, alias, served, state, SKIP, f"{here} was halted by a failing health check; "
                      f"remove the tag {lifecycle.STATE_TAG} to let it continue", branch)
    if step is None:
        return Action(model, version, alias, served, state, SKIP, f"{here}: no later step is configured", branch)
    if next_pr_open(step):
        return Action(model, version, alias, served, state, PROPOSED, f"{here}: the {step} % step's PR is open",
                      branch, step)
    left = canary.changed_at + canary.dwell_seconds - now
    if left > 0:
        return Action(model, version, alias, served, state, WAIT, f"{here}: {left:.0f} s of the dwell time left",
                      branch, step)
    reading = canary.health()
    detail = reading.as_dict()
    if reading.verdict == health.HEALTHY:
        return Action(model, version, alias, served, state, START,
                      f"{here} held its SLIs ({reading.summary()}): next step {step} %", branch, step, detail)
    if reading.verdict == health.UNHEALTHY:
        return Action(model, version, alias, served, state, MARK_HALTED,
                      f"{here} stops: {reading.summary()}", branch, step, detail)
    return Action(model, version, alias, served, state, WAIT, f"{here}: {reading.summary()}", branch, step, detail)


def apply(registry: Any, actions: list[Action], args: argparse.Namespace) -> int:
    """Write the registry tags and start the lost promotions (at most ``--max-submissions``)."""
    from hera_flows.steps.promotion import lifecycle

    started = 0
    for action in actions:
        if action.action == MARK_MERGED:
            registry.set_tags(action.model, action.version, {lifecycle.STATE_TAG: lifecycle.MERGED})
        elif action.action == MARK_ROLLED_BACK:
            registry.set_tags(action.model, action.version, {lifecycle.STATE_TAG: lifecycle.ROLLED_BACK})
        elif action.action == MARK_HALTED:
            registry.set_tags(action.model, action.version, {lifecycle.STATE_TAG: lifecycle.CANARY_HALTED})
        elif action.action == START:
            if started >= args.max_submissions:
                action.action, action.reason = SKIP, f"{action.reason}; deferred (--max-submissions reached)"
                continue
            created = submit(args.namespace, args.template, action)
            started += 1
            if not created:
                action.reason += "; a run for it already exists"
    return started


def workflow_name(template: str, model: str, version: str, step: int | None = None) -> str:
    """``<template>-r-<hash>``: one name per model version (and canary step), so the API server refuses a second
    concurrent run of it."""
    parts: list[Any] = [model, version] if step is None else [model, version, step]
    digest = hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:10]
    return f"{template}-r-{digest}"


def workflow_object(namespace: str, template: str, action: Action) -> dict[str, Any]:
    """The Workflow a reconcile creates: the template by reference, the facts in an annotation."""
    from hera_flows.steps.event_data import annotation_key

    facts: dict[str, Any] = {"model": action.model, "version": action.version, "alias": action.alias,
                             "reason": action.reason[:300]}
    if action.rollout_step is not None:
        facts["rollout_step"] = action.rollout_step
    body = json.dumps(facts, sort_keys=True)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": workflow_name(template, action.model, action.version, action.rollout_step),
            "namespace": namespace,
            "labels": {"hera-flows.io/pattern": "promotion", "hera-flows.io/triggered-by": TRIGGERED_BY},
            "annotations": {annotation_key("event-body"): body},
        },
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {"parameters": [{"name": "event-source", "value": TRIGGERED_BY}]},
        },
    }


def submit(namespace: str, template: str, action: Action) -> bool:
    """Create the Workflow; False when one of that name exists already (a run for this version is under way)."""
    import urllib3
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from hera_flows.steps import kubeapi

    api = client.CustomObjectsApi(kubeapi.load_api_client(
        "the reconciler runs as hera-flows-promotion-reconciler, whose Role may create workflows"))
    body = workflow_object(namespace, template, action)

    def create() -> bool:
        try:
            api.create_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise kubeapi.api_error(exc, f"create the Workflow {body['metadata']['name']}", where=f" in {namespace}",
                                    denied_hint="grant create on workflows to hera-flows-promotion-reconciler") \
                from None
        except urllib3.exceptions.HTTPError as exc:
            raise kubeapi.Retryable(str(exc)) from None
        return True

    created: bool = retry(create, what="creating the promotion Workflow", attempts=3, base_delay=1.0,
                          retry_on=(kubeapi.Retryable,))
    log(f"promotion-reconcile: {'started' if created else 'already running'} {body['metadata']['name']} for "
        f"{action.model} v{action.version}: {action.reason}")
    return created
