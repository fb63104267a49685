"""Where a promoted model version stands, written back to the registry as model-version tags.

MLflow's UI shows a version's tags next to it, so the people who set an alias see what became of it without
opening Argo or the forge:

- ``hera-flows.promotion.state``: ``proposed`` (PR open, smoke test passed), ``smoke-failed`` (PR open, staging did
  not pass), ``merged`` (the GitOps repository serves it), ``rollback-proposed`` (a revert PR is open),
  ``rolled-back`` (the revert is merged), ``canary-<n>`` (a canary step of n % is proposed or merged),
  ``canary-halted`` (the health query failed: no further step);
- ``hera-flows.promotion.pr``: the promotion PR's URL;
- ``hera-flows.rollback.pr``: the revert PR's URL.

The promotion workflow writes ``proposed``/``smoke-failed`` (step ``promotion-record``), the reconciler
(``promotion-reconcile``) ``merged``, ``rolled-back`` and the canary states, the rollback pattern
``rollback-proposed``. A version that was rolled back is never promoted again by the reconciler.
"""

from __future__ import annotations

STATE_TAG = "hera-flows.promotion.state"
PR_TAG = "hera-flows.promotion.pr"
ROLLBACK_PR_TAG = "hera-flows.rollback.pr"

PROPOSED = "proposed"
SMOKE_FAILED = "smoke-failed"
MERGED = "merged"
ROLLBACK_PROPOSED = "rollback-proposed"
ROLLED_BACK = "rolled-back"
CANARY_HALTED = "canary-halted"
# States after which the reconciler never starts this version's promotion again.
FINAL_STATES = frozenset({ROLLBACK_PROPOSED, ROLLED_BACK})
# States of a PR this pattern opened (the reconciler turns them into merged once the repository serves it; a canary
# state, once its last step is served).
OPEN_STATES = frozenset({PROPOSED, SMOKE_FAILED})


def canary_state(percent: int) -> str:
    return f"canary-{percent}"


def is_canary_state(state: str) -> bool:
    return state.startswith("canary-") and state[len("canary-"):].isdigit()
