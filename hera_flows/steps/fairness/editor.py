"""The builtin fairness editor: refresh the fairness section of the model cards that moved past the policy
(``steps.fairness.collect.refresh``) and return the digest as the summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.contract import Flag

# The pattern's settings the editor, publish (writable paths) and the prompt read (filled from
# patterns.fairness_audit).
SETTINGS = (
    Flag("model-cards-dir", "folder of the model cards"),
    Flag("policy-file", "the fairness policy (thresholds), never changed by the refresh"),
)


def _checked(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in (("model-cards-dir", args.model_cards_dir), ("policy-file", args.policy_file)):
        if value.startswith("/") or ".." in value.split("/"):
            raise StepError(f"--{name}={value!r} must be a relative path inside the repository")
    return args


def builtin_edit(repo: Path, context: dict[str, Any], args: argparse.Namespace) -> str:
    from hera_flows.steps.fairness.collect import refresh

    _checked(args)
    return refresh(repo, context, cards_dir=args.model_cards_dir, policy_file=args.policy_file)


def writable_paths(repo: Path, context: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The weekly refresh may change the cards of the models audited in this run and write the week's digest
    file (never the policy file)."""
    from hera_flows.steps.fairness.collect import digest_path
    from hera_flows.steps.model_cards import card_filename

    _checked(args)
    models = [r.get("model") for r in context.get("results") or [] if isinstance(r, dict)]
    paths = {f"{args.model_cards_dir}/{card_filename(str(m))}" for m in models if m}
    if context.get("week"):
        paths.add(digest_path(args.model_cards_dir, str(context["week"])))
    return sorted(paths)
