"""Claims end with the run (hera_flows/steps/claims.py): a ``confirm`` task once review succeeded, and the
workflow's exit handler that releases whatever is still pending, whatever the run's outcome.

Both run as the guard's ServiceAccount (the only identity that may write Leases) with its token.
"""

from __future__ import annotations

from hera.workflows import DAG, Container

from hera_flows.blocks.step import step_template
from hera_flows.config import Config

CONFIRM_TASK = "confirm-claims"
RELEASE_TEMPLATE = "release-claims"
EXIT_HANDLER = "exit"


def confirm_template(cfg: Config, service_account: str) -> Container:
    return step_template(
        cfg,
        name=CONFIRM_TASK,
        step="claims",
        flags={"action": "confirm", "state_namespace": cfg.namespace},
        network=True,
        service_account=service_account,
    )


def release_template(cfg: Config, service_account: str) -> Container:
    """The exit handler (``spec.onExit``): it gets the run's status, never fails the run."""
    return step_template(
        cfg,
        name=RELEASE_TEMPLATE,
        step="claims",
        flags={"action": "release", "state_namespace": cfg.namespace},
        network=True,
        service_account=service_account,
    )


def exit_handler(cfg: Config, service_account: str) -> str:
    """Add the exit-handler DAG (one task: release the run's pending claims) to the open WorkflowTemplate; returns
    its name for ``onExit``."""
    release = release_template(cfg, service_account)
    with DAG(name=EXIT_HANDLER):
        release(arguments={"workflow-uid": "{{workflow.uid}}", "workflow-status": "{{workflow.status}}",
                           "claims": ""})
    return EXIT_HANDLER


def confirm_arguments(claims: str = "") -> dict[str, str]:
    """``claims``: the Lease names to confirm (comma-separated; a parameter reference), empty for all the run's."""
    return {"workflow-uid": "{{workflow.uid}}", "workflow-status": "", "claims": claims}
