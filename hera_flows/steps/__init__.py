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
}
