"""`hera-flows step claims --action=confirm|release`: the end of a run's claims (see hera_flows/steps/state.py).

- ``confirm`` runs as a DAG task right after review succeeded (the PR or issue exists): the run's pending claims
  (cooldown, delivery id, week, triaged uid) become their full records.
- ``release`` is the workflow's exit handler, so it runs however the run ended (Succeeded, Failed, Error, past its
  deadline, after ``argo stop``): claims still pending are deleted and ceiling slots given back, so a run that
  failed before its PR existed never locks its key. It never fails the workflow: an error is logged, and a claim
  it could not release expires after the run's deadline anyway.
"""

from __future__ import annotations

import argparse

from hera_flows.steps.common import StepError, log, param, write_outputs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hera-flows step claims", description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    parser.add_argument("--action", required=True, choices=["confirm", "release"])
    parser.add_argument("--state-namespace", default="default")
    parser.add_argument("--outputs")
    args = parser.parse_args(argv)
    holder = param("workflow-uid").strip() or param("workflow-name").strip()
    if not holder:
        raise StepError("missing input parameters workflow-uid/workflow-name (whose claims?)")
    from hera_flows.steps.state import open_store

    if args.action == "confirm":
        done = open_store(args.state_namespace).confirm(holder)
        log(f"claims: confirmed {len(done)} claim(s) of run {holder}: {', '.join(done) or 'none'}")
        write_outputs(args.outputs, claims=",".join(done))
        return 0
    status = param("workflow-status").strip() or "unknown"
    try:
        done = open_store(args.state_namespace).release(holder)
    except Exception as exc:  # noqa: BLE001 - an exit handler must not turn the run's outcome into a failure
        log(f"claims: could not release the claims of run {holder} (status {status}): {type(exc).__name__}: "
            f"{str(exc)[:300]}; they expire after the run's deadline")
        return 0
    log(f"claims: run {holder} ended {status}; released {len(done)} pending claim(s): {', '.join(done) or 'none'}")
    write_outputs(args.outputs, claims=",".join(done))
    return 0
