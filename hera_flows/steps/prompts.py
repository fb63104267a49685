"""The prompt an external coding agent (``agent.kind: command``) receives, one template per pattern.

Instructions come only from the packaged template and the configuration; event data (the context JSON) goes
only into one fenced data section that the data cannot close: the JSON is ASCII-escaped (so no value can add a
line, an invisible character or a fence line) and the fence is longer than any backtick run in it. The prompt
says the data is untrusted. Rendering is deterministic (string.Template, sorted JSON) so a redelivered event
gives the same prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from string import Template
from typing import Any

from hera_flows.steps.common import StepError

# Configuration values are trusted but still land in the instruction text: keep them to one plain token.
_SETTING = re.compile(r"^[A-Za-z0-9._/*@:+-]{1,253}$")
_PLACEHOLDER = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_COMPUTED = {"allowed_paths", "fence_length", "context_block"}


def render_prompt(
    pattern: str,
    context: Mapping[str, Any],
    allowed_paths: Sequence[str],
    settings: Mapping[str, str],
) -> str:
    """The prompt for ``pattern`` (an id of hera_flows/catalog.py) with ``context`` in its untrusted-data section.

    ``settings`` are the pattern editor's settings as configured (the flags prepare received): the template names
    folders and files through them, never through defaults of its own."""
    template = load_template(pattern)
    used = {a or b for a, b in _PLACEHOLDER.findall(template)} - _COMPUTED
    values: dict[str, str] = {}
    constants = pattern_constants(pattern)
    for name in sorted(used):
        if name in constants:
            values[name] = constants[name]
        elif name in settings:
            values[name] = settings[name]
        else:
            raise StepError(f"the {pattern} prompt needs the setting {name!r}, which prepare did not receive")
    paths = list(allowed_paths)
    if not paths:
        raise StepError("the agent prompt needs at least one allowed path")
    checked = [*((n, v) for n, v in values.items() if n not in constants), *(("allowed path", p) for p in paths)]
    for name, value in checked:
        if not isinstance(value, str) or not _SETTING.match(value):
            raise StepError(f"{name} {value!r} cannot be placed in the agent prompt (one plain token expected)")

    data = context_json(context)
    fence = data_fence(data)
    values.update(
        allowed_paths="\n".join(f"   - `{p}`" for p in paths),
        fence_length=str(len(fence)),
        context_block=f"{fence}json\n{data}\n{fence}",
    )
    return Template(template).substitute(values)


def context_json(context: Mapping[str, Any]) -> str:
    """Sorted, indented, ASCII-only JSON: every string value stays on its line, every odd character escaped."""
    try:
        return json.dumps(context, sort_keys=True, indent=2, ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise StepError(f"the context cannot be written as JSON: {exc}") from None


def data_fence(data: str) -> str:
    """A backtick fence longer than any backtick run in ``data`` (at least 3): the data cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", data)), default=0)
    return "`" * max(3, longest + 1)


def load_template(pattern: str) -> str:
    from hera_flows.catalog import pattern as record_of

    try:
        path = record_of(pattern).prompt
    except KeyError as exc:
        raise StepError(f"no agent prompt: {exc.args[0]}") from None
    return resources.files("hera_flows").joinpath(path).read_text(encoding="utf-8")


def pattern_constants(pattern: str) -> dict[str, str]:
    """Names the template mentions that the code defines (one source of truth): the editor's ``PROMPT_CONSTANTS``."""
    import importlib

    from hera_flows.catalog import pattern as record_of

    editor = importlib.import_module(record_of(pattern).editor)
    return dict(getattr(editor, "PROMPT_CONSTANTS", {}))
