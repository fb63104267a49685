"""What an Argo Events Sensor does with an event, reproduced from its source for local runs and tests.

- data filters: the value at a gjson path must match one of the (unanchored) regexes of each filter;
  a missing path fails the filter; filters of a dependency are combined with ``dataLogicalOperator``;
- trigger parameters: ``dataKey`` reads the event data with gjson semantics — a string yields its contents,
  an object or array yields its raw JSON text exactly as it stands in the event (no re-encoding), a missing
  key yields the parameter's ``value`` default (or fails the trigger).

Only the gjson subset the generated sensors use is implemented: dotted keys and array indices.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

_WS = " \t\r\n"


class SensorError(Exception):
    pass


@dataclass(frozen=True)
class _Raw:
    start: int
    end: int


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _scan_string(text: str, i: int) -> int:
    """Index just past the JSON string starting at ``i`` (a quote)."""
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise SensorError("unterminated string in event data")


def _scan_value(text: str, i: int) -> int:
    i = _skip_ws(text, i)
    if i >= len(text):
        raise SensorError("unexpected end of event data")
    ch = text[i]
    if ch == '"':
        return _scan_string(text, i)
    if ch in "{[":
        close = "}" if ch == "{" else "]"
        i = _skip_ws(text, i + 1)
        if i < len(text) and text[i] == close:
            return i + 1
        while True:
            if ch == "{":
                i = _scan_string(text, _skip_ws(text, i))
                i = _skip_ws(text, i)
                if text[i] != ":":
                    raise SensorError("expected ':' in event data")
                i += 1
            i = _skip_ws(text, _scan_value(text, i))
            if text[i] == ",":
                i += 1
                continue
            if text[i] == close:
                return i + 1
            raise SensorError(f"unexpected {text[i]!r} in event data")
    match = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null").match(text, i)
    if not match:
        raise SensorError(f"invalid JSON value at offset {i}")
    return match.end()


def _children(text: str, start: int) -> list[tuple[str | int, _Raw]]:
    """The members of the object or array starting at ``start``, with raw spans."""
    ch = text[start]
    out: list[tuple[str | int, _Raw]] = []
    i = _skip_ws(text, start + 1)
    close = "}" if ch == "{" else "]"
    index = 0
    if text[i] == close:
        return out
    while True:
        key: str | int
        if ch == "{":
            key_end = _scan_string(text, _skip_ws(text, i))
            key = json.loads(text[_skip_ws(text, i) : key_end])
            i = _skip_ws(text, key_end) + 1
        else:
            key = index
            index += 1
        value_start = _skip_ws(text, i)
        value_end = _scan_value(text, value_start)
        out.append((key, _Raw(value_start, value_end)))
        i = _skip_ws(text, value_end)
        if text[i] == ",":
            i += 1
            continue
        return out


def raw_get(data: str, path: str) -> str | None:
    """The raw JSON text at a gjson-style dotted ``path`` in ``data``, or None when absent.

    Malformed or absurdly nested event data is a SensorError (the real sensor drops such an event), never a crash.
    """
    try:
        return _raw_get(data, path)
    except (IndexError, ValueError) as exc:
        raise SensorError(f"event data is not valid JSON ({exc.__class__.__name__}: {exc})") from None
    except RecursionError:
        raise SensorError("event data is nested too deeply") from None


def _raw_get(data: str, path: str) -> str | None:
    start = _skip_ws(data, 0)
    end = _scan_value(data, start)
    span = _Raw(start, end)
    for part in path.split("."):
        ch = data[span.start]
        if ch not in "{[":
            return None
        wanted: str | int = int(part) if ch == "[" and part.isdigit() else part
        for key, child in _children(data, span.start):
            if key == wanted:
                span = child
                break
        else:
            return None
    return data[span.start : span.end]


def gjson_string(data: str, path: str) -> str | None:
    """gjson's ``Result.String()``: string contents, raw JSON for objects/arrays, literal text otherwise."""
    raw = raw_get(data, path)
    if raw is None:
        return None
    if raw.startswith('"'):
        try:
            return cast(str, json.loads(raw))  # a JSON value that starts with '"' is a string
        except ValueError as exc:
            raise SensorError(f"event data has an invalid string at {path} ({exc})") from None
    if raw == "null":
        return ""
    return raw


def dependency_passes(dependency: dict[str, Any], data: str) -> tuple[bool, list[str]]:
    """Whether ``data`` passes the dependency's data filters, with the reasons it did not."""
    filters = dependency.get("filters", {}).get("data", [])
    results: list[bool] = []
    reasons: list[str] = []
    for f in filters:
        if f.get("type", "string") != "string":
            raise SensorError(f"filter type {f.get('type')} is not supported locally")
        value = gjson_string(data, f["path"])
        ok = value is not None and any(re.search(pattern, value) for pattern in f["value"])
        if f.get("comparator") == "!=":
            ok = value is not None and not ok
        results.append(ok)
        if not ok:
            reasons.append(f"{f['path']}={value!r} does not match {f['value']}")
    operator = dependency.get("filters", {}).get("dataLogicalOperator", "and")
    passed = all(results) if operator == "and" else any(results) or not results
    return passed, reasons


def event_context(now: datetime | None = None) -> dict[str, str]:
    """The event context an EventSource would attach when it received the event now (``time`` in RFC 3339 UTC
    with whole seconds, as ``metav1.Time`` serialises it)."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {"id": "local", "source": "local", "specversion": "1.0", "type": "webhook",
            "datacontenttype": "application/json", "subject": "local",
            "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


def submitted_workflow(trigger: dict[str, Any], dependency_name: str, data: str,
                       context: dict[str, str] | None = None) -> dict[str, Any]:
    """The Workflow an argoWorkflow submit trigger would create for an event of ``dependency_name``."""
    spec = trigger["template"]["argoWorkflow"]
    workflow: dict[str, Any] = copy.deepcopy(spec["source"]["resource"])
    context = context or event_context()
    for mapping in spec.get("parameters", []):
        src = mapping["src"]
        if src["dependencyName"] != dependency_name:
            continue
        if "contextKey" in src:
            value = context.get(src["contextKey"])
            if value is None:
                raise SensorError(f"the event context has no {src['contextKey']!r}")
        else:
            value = gjson_string(data, src["dataKey"])
        if value is None:
            if "value" not in src:
                raise SensorError(f"event has no {src['dataKey']} and the parameter has no default")
            value = src["value"]
        _set_dest(workflow, mapping["dest"], value)
    return workflow


def _dest_parts(dest: str) -> list[str]:
    """An sjson path's keys: split at '.', where '\\.' is a literal dot inside a key."""
    parts, current, i = [], "", 0
    while i < len(dest):
        if dest[i] == "\\" and i + 1 < len(dest):
            current += dest[i + 1]
            i += 2
            continue
        if dest[i] == ".":
            parts.append(current)
            current = ""
        else:
            current += dest[i]
        i += 1
    parts.append(current)
    return parts


def _set_dest(obj: Any, dest: str, value: str) -> None:
    """Set ``value`` at an sjson path, creating missing objects on the way (as sjson.SetBytes does)."""
    parts = _dest_parts(dest)
    for part in parts[:-1]:
        if isinstance(obj, list):
            obj = obj[int(part)]
        else:
            obj = obj.setdefault(part, {})
    last = parts[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


def route_event(sensors: list[dict[str, Any]], template_name: str, data: str, *, event_name: str | None = None,
                context: dict[str, str] | None = None,
                event_sources: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], str]:
    """Find the one trigger of ``sensors`` that submits ``template_name`` and accepts this event.

    ``event_name``: the EventSource event that delivered it (a webhook endpoint's or a Kafka topic's name); a real
    Sensor only ever sees an event on the dependency naming its source, so without it an event that passes the
    filters of several dependencies is ambiguous (an error saying which). A resource event (a watched object) needs
    no name when ``event_sources`` are given: their own selectors say which of their events deliver it.
    ``context``: the event context (its ``id``, ``time``, ...; a webhook's by default). Returns the Workflow it
    would submit and the trigger name; raises SensorError saying why not.
    """
    delivered = _resource_deliveries(event_sources or [], data) if event_name is None else None
    rejections: list[str] = []
    accepted: list[tuple[dict[str, Any], str]] = []
    for sensor in sensors:
        dependencies = {d["name"]: d for d in sensor["spec"]["dependencies"]}
        for trigger in sensor["spec"]["triggers"]:
            argo = trigger["template"].get("argoWorkflow")
            if not argo:
                continue
            resource = argo["source"]["resource"]
            if resource.get("spec", {}).get("workflowTemplateRef", {}).get("name") != template_name:
                continue
            dependency = dependencies[trigger["template"]["conditions"]]
            if event_name is not None and dependency.get("eventName") != event_name:
                continue
            if delivered is not None and dependency.get("eventSourceName") in delivered and \
                    dependency.get("eventName") not in delivered[dependency["eventSourceName"]]:
                continue
            passed, reasons = dependency_passes(dependency, data)
            if passed:
                accepted.append((submitted_workflow(trigger, dependency["name"], data, context),
                                 trigger["template"]["name"]))
            else:
                rejections.append(f"{sensor['metadata']['name']}/{dependency['name']}: " + "; ".join(reasons))
    if len(accepted) > 1:
        names = ", ".join(name for _, name in accepted)
        raise SensorError(f"the event passes the filters of several triggers ({names}): name the event that "
                          "delivered it (its endpoint or topic: --event-name)")
    if accepted:
        return accepted[0]
    if not rejections:
        which = f" for the event {event_name!r}" if event_name is not None else ""
        raise SensorError(f"no sensor submits the WorkflowTemplate {template_name}{which}")
    raise SensorError("the sensor filters drop this event: " + " | ".join(rejections))


def _resource_deliveries(event_sources: list[dict[str, Any]], data: str) -> dict[str, list[str]] | None:
    """{resource EventSource: its events that deliver this watched object}, or None for another kind of event."""
    from hera_flows.local.eventsource import delivering_events

    try:
        event = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("body"), dict) or "type" not in event:
        return None
    return {es["metadata"]["name"]: delivering_events(es, event["body"], str(event["type"]))
            for es in event_sources if (es.get("spec") or {}).get("resource")}
