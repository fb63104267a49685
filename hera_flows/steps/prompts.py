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

# Per pattern: the settings the template uses and their defaults (the configuration's defaults).
PATTERN_SETTINGS: dict[str, dict[str, str]] = {
    "promotion": {
        "inference_dir": "inference",
        "model_cards_dir": "model-cards",
        "gpu_node_selector_key": "nvidia.com/gpu.product",
    },
}
DEFAULT_ALLOWED_PATHS: dict[str, tuple[str, ...]] = {"promotion": ("inference/**", "model-cards/**")}
PATTERN_SETTINGS["fairness"] = {"model_cards_dir": "model-cards", "policy_file": "model-cards/POLICY.md"}
DEFAULT_ALLOWED_PATHS["fairness"] = ("model-cards/**",)
PATTERN_SETTINGS["failure_triage"] = {}
DEFAULT_ALLOWED_PATHS["failure_triage"] = ("pipelines/**",)
PATTERN_SETTINGS["drift"] = {"pipelines_dir": "pipelines", "params_file": "params.yaml", "min_window_days": "7"}
DEFAULT_ALLOWED_PATHS["drift"] = ("pipelines/**",)
# Configuration values are trusted but still land in the instruction text: keep them to one plain token.
_SETTING = re.compile(r"^[A-Za-z0-9._/*@:+-]{1,253}$")


def render_prompt(
    pattern: str,
    context: Mapping[str, Any],
    allowed_paths: Sequence[str] | None = None,
    settings: Mapping[str, str] | None = None,
) -> str:
    """The prompt for ``pattern`` with ``context`` in its untrusted-data section."""
    if pattern not in PATTERN_SETTINGS:
        raise StepError(f"no agent prompt for pattern {pattern!r} (known: {', '.join(sorted(PATTERN_SETTINGS))})")
    values = dict(PATTERN_SETTINGS[pattern])
    unknown = sorted(set(settings or {}) - set(values))
    if unknown:
        raise StepError(f"unknown prompt settings for pattern {pattern!r}: {', '.join(unknown)}")
    values.update(settings or {})
    paths = list(DEFAULT_ALLOWED_PATHS[pattern] if allowed_paths is None else allowed_paths)
    if not paths:
        raise StepError("the agent prompt needs at least one allowed path")
    for name, value in [*values.items(), *(("allowed path", p) for p in paths)]:
        if not isinstance(value, str) or not _SETTING.match(value):
            raise StepError(f"{name} {value!r} cannot be placed in the agent prompt (one plain token expected)")

    data = context_json(context)
    fence = data_fence(data)
    values.update(pattern_constants(pattern))
    values.update(
        allowed_paths="\n".join(f"   - `{p}`" for p in paths),
        fence_length=str(len(fence)),
        context_block=f"{fence}json\n{data}\n{fence}",
    )
    return Template(load_template(pattern)).substitute(values)


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
    template = resources.files("hera_flows").joinpath("templates").joinpath(f"{pattern}.prompt.md")
    return template.read_text(encoding="utf-8")


def pattern_constants(pattern: str) -> dict[str, str]:
    """Names the template mentions that the code defines (one source of truth)."""
    if pattern == "promotion":
        from hera_flows.steps.agents.promotion import GPU_RESOURCE
        from hera_flows.steps.inference_service import MODEL_ANNOTATION, VERSION_ANNOTATION

        return {
            "gpu_resource": GPU_RESOURCE,
            "model_annotation": MODEL_ANNOTATION,
            "version_annotation": VERSION_ANNOTATION,
        }
    return {}
