"""What an Argo Events ``resource`` EventSource delivers, reproduced from its source for local runs and tests.

``pkg/eventsources/sources/resource/start.go`` (v1.9.11):

- ``filter.labels`` become one Kubernetes label selector, evaluated by the API server on the informer's
  list/watch (``LabelReq``: operation defaults to ``=``; ``in``/``notin`` split ``value`` on commas;
  ``exists``/``!`` with an empty value take no values). Semantics are apimachinery's: ``!=`` and ``notin`` also
  match objects without the label, ``gt``/``lt`` need an integer label value;
- ``filter.fields`` are checked on the object (``filterFields``): the gjson value at ``key`` must exist, its
  string form (``Result.Str``: empty for non-strings) is matched with the unanchored RE2 ``value``, and the
  operation must be ``=``, ``==`` (must match) or ``!=`` (must not match) — any other, including empty,
  rejects the event;
- only the configured ``eventTypes`` are delivered, from objects in ``namespace``;
- the event data is ``{"type", "body", "oldBody", "group", "version", "resource", "metadata"}``
  (``events.ResourceEventData``), compact JSON as Go marshals it.

Only the gjson subset the generated EventSources use is implemented: dotted keys, array indices and one
``#(key=="value")`` query per path segment.
"""

from __future__ import annotations

import json
import re
from typing import Any

_MISSING = object()


class SelectorError(ValueError):
    pass


# --- label selectors -----------------------------------------------------------------------------------------


def requirement_matches(requirement: dict[str, Any], labels: dict[str, str]) -> bool:
    """One ``filter.labels`` entry against an object's labels, with apimachinery's semantics."""
    key = requirement["key"]
    op = requirement.get("operation") or "="
    value = requirement.get("value", "")
    present = key in labels
    if op in ("exists", "!") and value:
        raise SelectorError(f"label selector {key} {op}: no value allowed")
    if op in ("=", "=="):
        return present and labels[key] == value
    if op == "!=":
        return not present or labels[key] != value
    if op in ("in", "notin"):
        values = set(value.split(","))
        return (present and labels[key] in values) if op == "in" else (not present or labels[key] not in values)
    if op == "exists":
        return present
    if op == "!":
        return not present
    if op in ("gt", "lt"):
        try:
            bound, actual = int(value), int(labels[key]) if present else None
        except ValueError:
            return False
        return actual is not None and (actual > bound if op == "gt" else actual < bound)
    raise SelectorError(f"unknown label selector operation {op!r}")


def labels_match(requirements: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    return all(requirement_matches(r, labels) for r in requirements)


# --- gjson subset and field filters ----------------------------------------------------------------------------

_QUERY = re.compile(r'^#\(([A-Za-z0-9_.-]+)==("(?:[^"\\]|\\.)*")\)$')


def _segments(path: str) -> list[str]:
    """Split on dots outside ``#(...)`` queries."""
    out, current, depth = [], "", 0
    for ch in path:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return out


def gjson_get(data: Any, path: str) -> Any:
    """The value at ``path`` in parsed JSON, or ``_MISSING``."""
    node = data
    for segment in _segments(path):
        query = _QUERY.match(segment)
        if query:
            if not isinstance(node, list):
                return _MISSING
            key, wanted = query.group(1), json.loads(query.group(2))
            node = next((item for item in node if isinstance(item, dict) and item.get(key) == wanted), _MISSING)
        elif isinstance(node, dict):
            node = node.get(segment, _MISSING)
        elif isinstance(node, list) and segment.isdigit():
            node = node[int(segment)] if int(segment) < len(node) else _MISSING
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def fields_pass(fields: list[dict[str, Any]], obj: dict[str, Any]) -> bool:
    for selector in fields:
        value = gjson_get(obj, selector["key"])
        if value is _MISSING:
            return False
        text = value if isinstance(value, str) else ""  # gjson Result.Str
        match = re.search(selector.get("value", ""), text) is not None
        op = selector.get("operation", "")
        if op in ("=", "=="):
            if not match:
                return False
        elif op == "!=":
            if match:
                return False
        else:
            return False  # Argo Events logs "invalid operator" and drops the event
    return True


# --- whole EventSources ----------------------------------------------------------------------------------------


def delivering_events(event_source: dict[str, Any], obj: dict[str, Any], event_type: str) -> list[str]:
    """Names of the EventSource's resource events that would deliver ``obj`` for ``event_type``."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    names = []
    for name, spec in sorted((event_source.get("spec") or {}).get("resource", {}).items()):
        if spec.get("namespace") and spec["namespace"] != metadata.get("namespace"):
            continue
        if (spec.get("group"), spec.get("version")) != (group, version):
            continue
        if not str(obj.get("kind", "")).lower() + "s" == spec.get("resource"):
            continue
        if event_type not in spec.get("eventTypes", []):
            continue
        selector = spec.get("filter") or {}
        prefix = selector.get("prefix")
        if prefix and not str(metadata.get("name", "")).startswith(prefix):
            continue
        if not labels_match(selector.get("labels") or [], labels):
            continue
        if selector.get("fields") and not fields_pass(selector["fields"], obj):
            continue
        names.append(name)
    return names


def event_data(obj: dict[str, Any], event_type: str, spec: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    """The event's data as the resource EventSource marshals it (Go field order, compact JSON)."""
    data = {
        "type": event_type,
        "body": obj,
        "oldBody": old,
        "group": spec.get("group", ""),
        "version": spec.get("version", ""),
        "resource": spec.get("resource", ""),
        "metadata": spec.get("metadata"),
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
