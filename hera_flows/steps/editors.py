"""The pattern editors (``hera_flows/steps/<id>/editor.py``): finding one, and parsing the settings it declares.

Every editor declares the settings it reads as flags (``SETTINGS``). The steps that act for a pattern take them
after ``--pattern``: prepare (which writes them into the prompt), the builtin agent (which edits with them) and
publish (which asks the editor for the run's own files).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import overload

from hera_flows.steps.common import StepError
from hera_flows.steps.contract import Step


def editor_of(pattern_id: str) -> ModuleType:
    """The editor module of a pattern: ``SETTINGS``, ``builtin_edit`` and ``writable_paths``."""
    from hera_flows.catalog import pattern

    try:
        record = pattern(pattern_id)
    except KeyError as exc:
        raise StepError(f"no editor for pattern {pattern_id!r}: {exc.args[0]}") from None
    return importlib.import_module(record.editor)


@overload
def parse_with_settings(contract: Step, argv: Sequence[str]) -> tuple[argparse.Namespace, ModuleType]: ...


@overload
def parse_with_settings(contract: Step, argv: Sequence[str], *,
                        required: bool) -> tuple[argparse.Namespace, ModuleType | None]: ...


def parse_with_settings(contract: Step, argv: Sequence[str], *,
                        required: bool = True) -> tuple[argparse.Namespace, ModuleType | None]:
    """Parse a step whose flags include ``--pattern`` and that pattern editor's ``SETTINGS``; without ``required``
    a step run with no ``--pattern`` parses its own flags alone (the editor is then None)."""
    probe = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    probe.add_argument("--pattern", default=None)
    known, _ = probe.parse_known_args(list(argv))
    if not known.pattern:
        args = contract.parse(argv)  # reports a missing required --pattern (and anything else) the usual way
        if known.pattern is None and not required:
            return args, None
        raise StepError("--pattern is required")
    editor = editor_of(known.pattern)
    return contract.parse(argv, extra=editor.SETTINGS), editor


def settings_of(args: argparse.Namespace, editor: ModuleType) -> argparse.Namespace:
    """Only the editor's settings, as the editor functions receive them."""
    return argparse.Namespace(**{flag.dest: getattr(args, flag.dest) for flag in editor.SETTINGS})
