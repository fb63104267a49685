"""Argo's ``{{...}}`` substitution, as the local runner applies it.

One substitution pass, no re-evaluation of the values substituted in (``substitute``); the one exception Argo makes,
the globals substituted again inside a value that was substituted in (``rescan``); what ``argo submit`` refuses in a
parameter value (``check_parameters``); and the ``{{item}}`` scope of a fanned-out task, with Go's JSON encoding
(``item_scope``, ``go_json``). Kept apart from scheduling and pods so every place that substitutes does it the same
way.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hera_flows.local.errors import RunError

REF = re.compile(r"{{\s*([^{}]+?)\s*}}")
# Tag prefixes Argo's submission validation resolves (and fails on when it cannot).
VALIDATED_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")


def substitute(text: str, scope: dict[str, str], *, where: str) -> str:
    """Replace every ``{{key}}`` in ``text`` with ``scope[key]``; an unknown key is a RunError naming ``where``."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in scope:
            raise RunError(f"{where}: unable to resolve {{{{{key}}}}}")
        return scope[key]

    return REF.sub(replace, text)


def rescan(value: str, known: dict[str, str]) -> str:
    """Argo substitutes the globals again inside a value that was substituted in (the template, inputs
    included, is marshalled and passed through its engine once more): ``{{workflow.name}}`` inside event data
    becomes the workflow's name; anything else is left as it is. ``known``: the workflow's global scope."""
    return REF.sub(lambda m: known.get(m.group(1), m.group(0)), value)


def input_scope(inputs: dict[str, str]) -> dict[str, str]:
    """``{{inputs.parameters.NAME}}`` for a template's resolved input parameters."""
    return {f"inputs.parameters.{k}": v for k, v in inputs.items()}


def check_parameters(parameters: dict[str, str], known: dict[str, str]) -> None:
    """What `argo submit` refuses: a parameter value holding an unresolvable ``{{workflow.*}}``, ``{{inputs.*}}``
    ... reference (validation substitutes the real values, then resolves every tag with those prefixes), and an
    expression Argo would evaluate (docs/upstream-facts.md#workflows-substitution). ``known``: the global scope."""
    for name, value in parameters.items():
        for match in REF.finditer(value):
            tag = match.group(1)
            if tag.startswith("="):
                raise RunError(f"parameter {name}: Argo would evaluate the expression {{{{{tag[:60]}}}}} in its "
                               "value; event data must not travel in parameters")
            if tag.startswith(VALIDATED_PREFIXES) and tag not in known:
                raise RunError(f"argo submit would refuse this Workflow: failed to resolve {{{{{tag[:80]}}}}} "
                               f"(in the value of parameter {name})")


def go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: compact, object keys sorted, '<', '>' and '&' escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def item_scope(item: Any) -> dict[str, str]:
    """``{{item}}`` (an object or list as JSON, a string as itself) and ``{{item.KEY}}`` for object items."""
    scope = {"item": item if isinstance(item, str) else go_json(item)}
    if isinstance(item, dict):
        for key, value in item.items():
            scope[f"item.{key}"] = value if isinstance(value, str) else go_json(value)
    return scope
