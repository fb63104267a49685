"""The code that runs inside the workflow pods, one module per step: `hera-flows step NAME ...`.

Modules are imported lazily (only the one step that runs), so a pod does not pay for mlflow or kubernetes
imports it does not need.
"""

# step name -> "module:function"; each function takes argv (list[str]) and returns an exit code.
STEPS: dict[str, str] = {
    "guard": "hera_flows.steps.guard:main",
    "context-mlflow": "hera_flows.steps.context.mlflow:main",
    "prepare-workspace": "hera_flows.steps.workspace:main",
    "agent-builtin": "hera_flows.steps.agents.builtin:main",
    "publish": "hera_flows.steps.publish:main",
    "review": "hera_flows.steps.review:main",
    "smoke": "hera_flows.steps.smoke:main",
    "report": "hera_flows.steps.review:report_main",
    "guard-drift": "hera_flows.steps.drift.guard:main",
    "context-drift": "hera_flows.steps.drift.context:main",
    "smoke-drift": "hera_flows.steps.drift.smoke:main",
    "drift-monitor": "hera_flows.steps.drift.monitor:main",
    "fairness-list-models": "hera_flows.steps.fairness.list_models:main",
    "fairness-audit": "hera_flows.steps.fairness.audit:main",
    "fairness-collect": "hera_flows.steps.fairness.collect:main",
    "guard-triage": "hera_flows.steps.triage.guard:main",
    "context-triage": "hera_flows.steps.triage.context:main",
    "classify-triage": "hera_flows.steps.triage.classify:main",
    "smoke-triage": "hera_flows.steps.triage.smoke:main",
    "guard-fairness": "hera_flows.steps.fairness.guard:main",
    "smoke-fairness": "hera_flows.steps.fairness.smoke:main",
    "gc-leases": "hera_flows.steps.gc:main",
    "claims": "hera_flows.steps.claims:main",
}
