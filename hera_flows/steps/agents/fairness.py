"""The builtin fairness editor: refresh the fairness section of the model cards that moved past the policy
(``steps.fairness.collect.refresh``) and return the digest as the summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hera-flows step agent-builtin --pattern=fairness", allow_abbrev=False)
    parser.add_argument("--model-cards-dir", default="model-cards")
    parser.add_argument("--policy-file", default="model-cards/POLICY.md")
    args = parser.parse_args(argv)
    for name, value in (("model-cards-dir", args.model_cards_dir), ("policy-file", args.policy_file)):
        if value.startswith("/") or ".." in value.split("/"):
            from hera_flows.steps.common import StepError

            raise StepError(f"--{name}={value!r} must be a relative path inside the repository")
    return args


def builtin_edit(repo: Path, context: dict[str, Any], argv: list[str]) -> str:
    from hera_flows.steps.fairness.collect import refresh

    args = _arguments(argv)
    return refresh(repo, context, cards_dir=args.model_cards_dir, policy_file=args.policy_file)


def writable_paths(repo: Path, context: dict[str, Any], argv: list[str]) -> list[str]:
    """The weekly refresh may change the cards of the models audited in this run (never the policy file)."""
    from hera_flows.steps.agents.model_card import card_filename

    args = _arguments(argv)
    models = [r.get("model") for r in context.get("results") or [] if isinstance(r, dict)]
    return sorted({f"{args.model_cards_dir}/{card_filename(str(m))}" for m in models if m})
