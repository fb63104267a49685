"""`hera-flows step promotion-record`: tell the registry where the promoted version stands.

After the smoke test, the version's tags say ``hera-flows.promotion.state: proposed`` (``canary-<n>`` for a canary
step, ``smoke-failed`` when staging did not pass; ``rollback-proposed`` and ``hera-flows.rollback.pr`` when the
rollback pattern opened a revert PR of it) and
``hera-flows.promotion.pr: <PR URL>`` (hera_flows/steps/promotion/lifecycle.py), so the MLflow UI shows the PR next
to the version. A repeated event writes the same tags again. A version already rolled back keeps that state.
MLflow unreachable is exit 75 (retried by Argo); the PR and its report are already posted by then.
"""

from __future__ import annotations

import time

from hera_flows.steps.common import StepError, log
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.promotion import lifecycle

CONTRACT = Step(
    name="promotion-record",
    entry="hera_flows.steps.promotion.record:main",
    summary="write the promotion's state and PR to the model version's tags",
    flags=(
        Flag("tracking-uri", "MLflow tracking server URL"),
        Flag("deadline-seconds", "give up (exit 75) when MLflow is still failing after this long", kind=float),
    ),
    inputs=("model-name", "version", "pr-url", "smoke-result", "rollout-step", "rollback-pr-url"),
    outputs=("state",),
)


def main(argv: list[str]) -> int:
    from hera_flows.steps.mlflow_registry import Registry, mlflow_http_settings

    args = CONTRACT.parse(argv)
    model = CONTRACT.param("model-name", required=True)
    version = CONTRACT.param("version", required=True)
    pr_url = CONTRACT.param("pr-url").strip()
    rollback_pr = CONTRACT.param("rollback-pr-url").strip()
    step = CONTRACT.param("rollout-step").strip() or "100"
    if not step.isdigit() or not 1 <= int(step) <= 100:
        raise StepError(f"rollout-step {step[:10]!r} is not a percentage")
    if rollback_pr:
        state = lifecycle.ROLLBACK_PROPOSED  # the rollback pattern: a revert PR of this version is open
    elif CONTRACT.param("smoke-result").strip() == "failed":
        state = lifecycle.SMOKE_FAILED
    else:
        state = lifecycle.canary_state(int(step)) if int(step) < 100 else lifecycle.PROPOSED
    with mlflow_http_settings():
        registry = Registry(args.tracking_uri, time.monotonic() + args.deadline_seconds)
        mv = registry.model_version(model, version)
        current = (mv.tags or {}).get(lifecycle.STATE_TAG, "")
        if current in lifecycle.FINAL_STATES and not (rollback_pr and current == lifecycle.ROLLBACK_PROPOSED):
            log(f"promotion-record: {model} v{version} is {current}; its state is left as it is")
            CONTRACT.write(args.outputs, state=current)
            return 0
        tags = {lifecycle.STATE_TAG: state}
        if pr_url:
            tags[lifecycle.PR_TAG] = pr_url
        if rollback_pr:
            tags[lifecycle.ROLLBACK_PR_TAG] = rollback_pr
        registry.set_tags(model, version, tags)
    log(f"promotion-record: {model} v{version}: {lifecycle.STATE_TAG}={state}" + (f", PR {pr_url}" if pr_url else ""))
    CONTRACT.write(args.outputs, state=state)
    return 0
