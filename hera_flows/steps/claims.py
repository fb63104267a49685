"""`hera-flows step claims --action=confirm|release`: the end of a run's claims (see hera_flows/steps/state.py).

- ``confirm`` runs as a DAG task right after review succeeded (the PR or issue exists): the run's pending claims
  (cooldown, delivery id, week, triaged uid) become their full records — or only the ``claims`` named, when one
  run remediates several keys and each confirms its own.
- ``release`` is the workflow's exit handler, so it runs however the run ended (Succeeded, Failed, Error, past its
  deadline, after ``argo stop``): claims still pending are deleted and ceiling slots given back, so a run that
  failed before its PR existed never locks its key. It never fails the workflow: an error is logged, and a claim
  it could not release expires after the run's deadline anyway.
"""

from __future__ import annotations

from hera_flows.steps.common import StepError, log
from hera_flows.steps.contract import Flag, Step

CONTRACT = Step(
    name="claims",
    entry="hera_flows.steps.claims:main",
    summary="confirm the run's pending claims after review, or release them in the exit handler",
    flags=(Flag("action", "confirm (after review) or release (exit handler)", choices=("confirm", "release")),
           Flag("state-namespace", "namespace of the guards' Leases")),
    inputs=("workflow-uid", "workflow-status", "claims"),
    outputs=("claims",),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    param = CONTRACT.param
    holder = param("workflow-uid").strip()
    if not holder:
        raise StepError("missing input parameter workflow-uid (whose claims?)")
    from hera_flows.steps.state import open_store

    if args.action == "confirm":
        # ``claims``: the Lease names of one remediation when a run remediates several keys (confirm only those,
        # the others may still fail); empty: every pending claim of the run
        names = [n.strip() for n in param("claims").split(",") if n.strip()] or None
        done = open_store(args.state_namespace).confirm(holder, names)
        log(f"claims: confirmed {len(done)} claim(s) of run {holder}: {', '.join(done) or 'none'}")
        CONTRACT.write(args.outputs, claims=",".join(done))
        return 0
    status = param("workflow-status").strip() or "unknown"
    try:
        done = open_store(args.state_namespace).release(holder)
    except Exception as exc:  # noqa: BLE001 - an exit handler must not turn the run's outcome into a failure
        log(f"claims: could not release the claims of run {holder} (status {status}): {type(exc).__name__}: "
            f"{str(exc)[:300]}; they expire after the run's deadline")
        return 0
    log(f"claims: run {holder} ended {status}; released {len(done)} pending claim(s): {', '.join(done) or 'none'}")
    CONTRACT.write(args.outputs, claims=",".join(done))
    return 0
