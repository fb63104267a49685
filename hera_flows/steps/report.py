"""`hera-flows step report`: comment a later step's report (e.g. the smoke test) on the PR, then fail the run when
that step's ``result`` is failed — so reviewers see the report before the workflow shows Failed."""

from __future__ import annotations

from hera_flows.steps.common import StepError, log
from hera_flows.steps.contract import Step
from hera_flows.steps.review import FORGE_FLAGS, open_forge_of

CONTRACT = Step(
    name="report",
    entry="hera_flows.steps.report:main",
    summary="comment a step's report on the pull request; fail afterwards when its result is failed",
    flags=FORGE_FLAGS,
    inputs=("pr-number", "body", "result"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    number = CONTRACT.param("pr-number").strip()
    if not number:
        log("report: there is no pull request (nothing was published), so there is nothing to comment on")
        return 0
    if not number.isdigit() or int(number) < 1:
        raise StepError(f"pr-number must be a positive whole number, not {number!r}")
    body = CONTRACT.param("body")
    if not body.strip():
        log(f"report: the report for pull request #{number} is empty; no comment posted")
        _fail_on_failed_result()
        return 0
    with open_forge_of(args) as forge:
        url = forge.comment(int(number), body)
    log(f"report: commented on pull request #{number}: {url}")
    _fail_on_failed_result()
    return 0


def _fail_on_failed_result() -> None:
    """The checked step (e.g. the smoke test) reported ``failed``: the workflow must end Failed, after the PR
    has the report."""
    if CONTRACT.param("result").strip() == "failed":
        raise StepError("the staging smoke test failed; the report is on the pull request")
