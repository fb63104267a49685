"""The builtin fairness editor: refresh the fairness section of the model cards that moved past the policy
(``steps.fairness.collect.refresh``) and return the digest as the summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def builtin_edit(repo: Path, context: dict[str, Any], argv: list[str]) -> str:
    from hera_flows.steps.fairness.collect import refresh

    parser = argparse.ArgumentParser(prog="hera-flows step agent-builtin --pattern=fairness", allow_abbrev=False)
    parser.add_argument("--model-cards-dir", default="model-cards")
    parser.add_argument("--policy-file", default="model-cards/POLICY.md")
    args = parser.parse_args(argv)
    for name, value in (("model-cards-dir", args.model_cards_dir), ("policy-file", args.policy_file)):
        if value.startswith("/") or ".." in value.split("/"):
            from hera_flows.steps.common import StepError

            raise StepError(f"--{name}={value!r} must be a relative path inside the repository")
    return refresh(repo, context, cards_dir=args.model_cards_dir, policy_file=args.policy_file)
