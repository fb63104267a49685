"""`hera-flows step rollback-guard`: turn a production SLI alert into at most one rollback of one promotion.

1. **alerts**: the firing Alertmanager alerts that name a model (hera_flows/steps/rollback/alerts.py), with a
   severity in ``--severities``, of this workflow's model;
2. **the promotion**: the GitOps repository (cloned read-only) says which version the model serves and which
   commit promoted it (hera_flows/steps/rollback/history.py); a canary still in progress is the health gate's,
   not a rollback's;
3. **the window**: only an alert within ``--window-seconds`` of that promotion's merge counts as caused by it;
4. **never twice**: one record per promotion (``<model>@v<version>``, a Lease that outlives the window), taken
   pending and confirmed once review succeeded — a second alert, a redelivery or a flapping SLI finds it and is
   skipped;
5. **rate limit**: a per-model cooldown (``--cooldown-seconds``) on top of the Sensor's ``rateLimit``.

A skip ends the run Succeeded with ``decision=skipped-<why>`` and the reason (labelled on the Workflow like every
guard's decision); ``proceed`` passes the promotion (commit, versions, merge time) and the alert on.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from hera_flows.steps import event_data, naming
from hera_flows.steps.common import StepError, log, param, secret
from hera_flows.steps.contract import GUARD_FLAGS, GUARD_OUTPUTS, RUN_IDENTITY, Flag, Step, merged
from hera_flows.steps.run_labels import label_workflow, run_labels

BRANCH_PREFIX = "model-rollback"
NO_ALERT = "none"  # the alert name of "nothing to act on" (filtered out)
HISTORY_DEPTH = 200

CONTRACT = Step(
    name="rollback-guard",
    entry="hera_flows.steps.rollback.guard:main",
    summary="turn a production SLI alert into at most one rollback of one promotion",
    flags=(
        *GUARD_FLAGS,
        Flag("severities", "alert severities that may roll back", form="csv"),
        Flag("window-seconds", "how long after a promotion merged an alert still rolls it back", kind=float),
        Flag("cooldown-seconds", "at most one rollback per model in this window", kind=float),
        Flag("repo-url", "the GitOps repository"),
        Flag("base-branch", "its branch"),
        Flag("inference-dir", "folder of the serving manifests"),
        Flag("forge", "forge kind (github or gitlab), for the git username", choices=("github", "gitlab")),
    ),
    inputs=("event-source", "model", "manual", "model-name", *RUN_IDENTITY),
    outputs=merged(GUARD_OUTPUTS, ("model", "version", "previous-version", "commit", "merged-at", "manifest",
                                   "paths", "title", "alert")),
)


class Skip(Exception):
    def __init__(self, label: str, reason: str) -> None:
        super().__init__(reason)
        self.label = label


def main(argv: list[str]) -> int:
    from hera_flows.steps.drift.normalise import SEVERITIES
    from hera_flows.steps.state import open_store

    args = CONTRACT.parse(argv)
    unknown = [s for s in args.severities if s not in SEVERITIES]
    if unknown or not args.severities:
        raise StepError(f"--severities: {unknown or 'empty'} (known: {', '.join(SEVERITIES)})")
    holder = param("workflow-uid") or param("workflow-name")
    if not holder:
        raise StepError("missing input parameters workflow-name/workflow-uid (the rollback record needs its run)")
    alert = choose_alert(args)
    outputs: dict[str, str] = {"model": alert.model, "alert": json.dumps(alert.to_dict(), sort_keys=True)}
    try:
        if alert.alertname == NO_ALERT:
            raise Skip("skipped-filter", alert.details["skip"])
        promotion, manifest, paths = promotion_of(args, alert.model)
        decide(args, open_store(args.state_namespace), holder, alert.model, promotion)
        decision, reason = "proceed", (f"{alert.alertname} ({alert.severity}) fired for {alert.model} "
                                       f"{_age(promotion.merged_at)} after v{promotion.version} was merged")
        key = naming.dedupe_key(alert.model, f"v{promotion.version}", "rollback")
        outputs.update(version=promotion.version, previous_version=promotion.previous or "",
                       commit=promotion.commit, merged_at=str(int(promotion.merged_at)), manifest=manifest,
                       paths=json.dumps(paths),
                       dedupe_key=key, branch=naming.branch_name(BRANCH_PREFIX, alert.model, f"v{promotion.version}"),
                       title=f"Roll back {alert.model} v{promotion.version}: {alert.alertname}",
                       event=outputs["alert"])
    except Skip as skip:
        decision, reason = skip.label, str(skip)
    label_workflow(args.state_namespace, param("workflow-name"), run_labels(
        decision, dedupe_key=outputs.get("dedupe_key", ""), model=alert.model), who="rollback-guard")
    CONTRACT.write(args.outputs, decision=decision, reason=reason, **(outputs if decision == "proceed" else {
        "model": alert.model, "alert": outputs["alert"]}))
    log(f"rollback-guard: decision={decision} model={alert.model}: {reason}")
    return 0


def choose_alert(args: Any) -> Any:
    from hera_flows.steps.drift.normalise import NAME
    from hera_flows.steps.rollback.alerts import SliAlert, sli_alerts

    manual = param("manual", "false")
    if manual not in ("true", "false", ""):
        raise StepError(f"the parameter manual must be 'true' or 'false', not {manual[:20]!r}")
    if manual == "true":
        from hera_flows.steps.drift.normalise import checked_name

        model = checked_name(param("model-name"), "the model-name parameter")
        return SliAlert(model, "manual", "critical", f"manual-{int(time.time())}")
    source = param("event-source").strip()
    if source != "alertmanager":
        raise StepError(f"unknown event-source {source[:40]!r} (expected 'alertmanager')")
    body = event_data.field("event-body", namespace=args.state_namespace)
    if not body.strip():
        raise StepError("the event body is empty (was the workflow submitted by hand without manual=true?)")
    model = param("model").strip()
    if model and not NAME.match(model):
        raise StepError(f"the model parameter {model[:60]!r} is not a valid name")
    alerts = [a for a in sli_alerts(body) if not model or a.model == model]
    wanted = [a for a in alerts if a.severity in args.severities]
    if not wanted:
        # a skip, not an error: label and outputs still say why
        return SliAlert(model or (alerts[0].model if alerts else "-"), NO_ALERT, "info", NO_ALERT,
                        details={"skip": f"no firing SLI alert with severity in {list(args.severities)}"
                                         + (f" for model {model}" if model else "")})
    return wanted[0]


def promotion_of(args: Any, model: str) -> tuple[Any, str, list[str]]:
    """The promotion the model serves now, its manifest's path and the files it changed; Skip when there is none to
    roll back."""
    from hera_flows.steps import gitrepo
    from hera_flows.steps.promotion.canary import live_canary
    from hera_flows.steps.promotion.serving_manifest import VERSION_ANNOTATION, find_serving_manifest
    from hera_flows.steps.rollback.history import find_promotion, touched_paths

    with tempfile.TemporaryDirectory(prefix="hf-rollback-") as scratch:
        repo = Path(scratch) / "repo"
        gitrepo.clone(args.repo_url, repo, args.base_branch, token=secret("HF_FORGE_TOKEN", required=False) or None,
                      forge=args.forge, depth=HISTORY_DEPTH)
        found = find_serving_manifest(repo, model, args.inference_dir)
        if found is None:
            raise Skip("skipped-unknown", f"no serving manifest for {model} under {args.inference_dir}/")
        live = live_canary(found.document)
        if live is not None:
            raise Skip("skipped-canary", f"a canary of v{live[0]} runs at {live[1]} %: its health gate decides, "
                                         "not a rollback")
        annotations = (found.document.get("metadata") or {}).get("annotations") or {}
        version = str(annotations.get(VERSION_ANNOTATION) or "").strip()
        if not version:
            raise Skip("skipped-unknown", f"{found.relative} names no served version ({VERSION_ANNOTATION})")
        promotion = find_promotion(repo, found.relative, model, version)
        if promotion is None:
            raise Skip("skipped-unknown", f"no commit in the last {HISTORY_DEPTH} of {args.base_branch} promoted "
                                          f"{model} v{version}")
        if promotion.previous is None:
            raise Skip("skipped-unknown", f"v{version} is the first version {found.relative} served: nothing to "
                                          "roll back to")
        paths = touched_paths(repo, promotion)
    return promotion, found.relative, paths


def decide(args: Any, store: Any, holder: str, model: str, promotion: Any) -> None:
    """The window, the once-per-promotion record and the per-model cooldown, race-free; Skip when one refuses."""
    now = store.now().timestamp()
    age = now - promotion.merged_at
    if age > args.window_seconds:
        raise Skip("skipped-window", f"v{promotion.version} was merged {_age(promotion.merged_at, now)} ago, outside "
                                     f"the {args.window_seconds:g} s window: a later alert is not a rollback's")
    key = naming.dedupe_key(model, f"v{promotion.version}")
    once = naming.lease_name("rollback-once", key)
    # Outlives the window: after it, no alert can roll this promotion back anyway (gc-leases deletes it then).
    if not store.claim_once(once, holder, key=key, duration_seconds=args.window_seconds + args.claim_seconds,
                            pending_seconds=args.claim_seconds):
        raise Skip("skipped-done", f"{key} is already rolled back (or a rollback of it is under way): never twice")
    cooldown = store.acquire_cooldown(naming.lease_name("rollback-cooldown", model), holder, args.cooldown_seconds,
                                      key=model, pending_seconds=args.claim_seconds)
    if not cooldown.proceed:
        store.release(holder, name=once)
        raise Skip("skipped-cooldown", f"{model}: {cooldown.reason}")


def _age(then: float, now: float | None = None) -> str:
    seconds = max(0, int((time.time() if now is None else now) - then))
    return f"{seconds // 3600} h {seconds % 3600 // 60} min" if seconds >= 3600 else f"{seconds} s"
