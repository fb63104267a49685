"""One drift delivery -> the drift events in it, whatever tool sent it, through the source's mapping.

A source (one webhook endpoint or one Kafka topic) has a shape (hera_flows/steps/drift/shapes.py: a default
mapping for the named tools, Alibi-Detect and Seldon Core 2) and the configured mapping over it; the mapping
turns the delivery into records (hera_flows/steps/event_mapping.py) and each firing record becomes a
``DriftEvent(model, feature, severity, metric, metric_value, threshold, source, id)`` here, once its values are
checked: names become branches, Lease keys and mutex names, so they keep to a portable charset; severities are
mapped to ``critical, high, medium, warning, low, info`` (an unknown word is an error, so a typo never silently
never matches); numbers must be finite.

Nothing a delivery holds is lost without a word: a record that cannot become an event (no model, a bad name, an
unknown severity) is *unmapped*, with one line saying which field and why; a record that is not firing
(resolved, ``drifted: false``) is listed as such; a delivery with no records says why. The guard records all of
it in its ``considered`` output and its decision.

An event without a feature (a model-level alert such as ``ModelDriftDetected{model=...}``, or a multivariate
detector) is remediated per model: its feature is empty and its key ``model@*``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping as MappingABC
from dataclasses import asdict, dataclass, field
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.drift import shapes
from hera_flows.steps.event_mapping import Mapping, MappingError, Record, merge_specs, present

SEVERITIES = ("critical", "high", "medium", "warning", "low", "info")
# Names become branches, Lease keys and mutex names: keep them to a portable charset.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FEATURE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:-]{0,127}$")
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}$")
MODEL_LEVEL = "*"  # the feature part of a model-level event's key: no feature name can be "*"
MAX_TEXT = 500
CORE_FIELDS = ("model", "feature", "severity", "metric", "value", "threshold", "id", "direction")

# Vendor severity words -> ours. Anything else is an error (a typo must not silently never match).
SEVERITY_WORDS = {
    **{s: s for s in SEVERITIES},
    "page": "critical", "fatal": "critical", "emergency": "critical", "p1": "critical",
    "error": "high", "major": "high", "p2": "high",
    "moderate": "medium", "p3": "medium",
    "warn": "warning", "minor": "low", "p4": "low",
    "informational": "info", "none": "info", "p5": "info",
}
SOURCES = shapes.NAMED_TOOLS  # the tools with an endpoint by default


@dataclass(frozen=True)
class DriftEvent:
    """One firing drift signal for one (model, feature) — or for the whole model when ``feature`` is empty."""

    model: str
    feature: str
    severity: str
    metric: str
    metric_value: float | None
    threshold: float | None
    source: str
    id: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.feature or MODEL_LEVEL)

    @property
    def model_level(self) -> bool:
        return not self.feature

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_hash(model: str, feature: str, length: int = 16) -> str:
    """A label-safe hash of a (model, feature) key (hex, lower case)."""
    return hashlib.sha256(json.dumps([model, feature]).encode("utf-8")).hexdigest()[:length]


# --- sources ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One configured drift source as the guard sees it: its transport, its mapping and its severity words."""

    name: str
    shape: str
    mapping: Mapping
    kind: str = "webhook"  # webhook | kafka
    severities: dict[str, str] = field(default_factory=dict)
    signature: dict[str, Any] | None = None

    def severity(self, value: Any, where: str) -> str:
        text = value if isinstance(value, str) else (str(value) if isinstance(value, int)
                                                      and not isinstance(value, bool) else None)
        if text is not None:
            word = text.strip().lower()
            known = {**SEVERITY_WORDS, **shapes.SHAPE_SEVERITIES.get(self.shape, {}), **self.severities}
            if word in known:
                return known[word]
        shown = "missing" if value is None or value == "" else f"{str(value)[:40]!r} is not a known severity"
        raise Unmapped(f"{where} {shown} ({', '.join(SEVERITIES)}; map other words with the source's severities)")


def mapping_spec(shape: str, override: MappingABC[str, Any] | None = None) -> dict[str, Any]:
    """The effective mapping of a source: the shape's preset (none for ``custom``) with ``override`` over it."""
    if shape != "custom" and shape not in shapes.PRESETS:
        raise MappingError(f"unknown shape {shape!r} (known: {', '.join(shapes.SHAPES)}, custom)")
    return merge_specs(shapes.PRESETS.get(shape, {}), override)


def compile_mapping(spec: MappingABC[str, Any]) -> Mapping:
    """A drift mapping: it must say where the model is; a MappingError names what is wrong."""
    mapping = Mapping.from_spec(spec, functions=shapes.FUNCTIONS)
    if "model" not in mapping.fields:
        raise MappingError("fields.model is required: where the model is in the event")
    return mapping


def source_from_spec(name: str, spec: MappingABC[str, Any]) -> Source:
    """A source from the guard's ``--sources`` entry: ``{"kind", "shape", "mapping", "severities", "signature"}``
    (the generator writes the effective mapping, preset and overrides merged)."""
    shape = str(spec.get("shape") or "custom")
    try:
        mapping = compile_mapping(spec.get("mapping") or mapping_spec(shape))
    except MappingError as exc:
        raise StepError(f"drift source {name}: mapping: {exc}") from None
    return Source(name, shape, mapping, str(spec.get("kind") or "webhook"),
                  {str(k).lower(): str(v) for k, v in (spec.get("severities") or {}).items()},
                  spec.get("signature") or None)


def default_source(name: str) -> Source:
    """A named tool's source with its default mapping (its endpoint's name is its shape)."""
    if name not in shapes.PRESETS:
        raise StepError(f"unknown drift source {name[:40]!r} (known: {', '.join(shapes.SHAPES)})")
    return Source(name, name, compile_mapping(mapping_spec(name)))


# --- records -> events ------------------------------------------------------------------------------------------


class Unmapped(StepError):
    """A record (or delivery) that cannot become a drift event; the message is the one-line reason."""


def _name(value: Any, where: str, pattern: re.Pattern[str] = NAME) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise Unmapped(f"{where} is missing")
    if not pattern.match(value):
        shown = value[:60] + ("..." if len(value) > 60 else "")
        raise Unmapped(f"{where} {shown!r} is not a valid name (1-128 characters: letters, digits, '.', '_', '-')")
    return value


def checked_name(value: Any, where: str, pattern: re.Pattern[str] = NAME) -> str:
    return _name(value, where, pattern)


def _number(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Unmapped(f"{where} must be a number, not a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value.strip())
        except ValueError:
            raise Unmapped(f"{where} {value!r} is not a number") from None
    else:
        raise Unmapped(f"{where} must be a number")
    if not math.isfinite(number):
        raise Unmapped(f"{where} must be a finite number")
    return number


def printable_text(value: Any, limit: int = MAX_TEXT) -> str:
    """A string value without unprintable characters, at most ``limit`` long; anything else is empty."""
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def _detail(value: Any) -> Any:
    """A detail worth keeping: a short printable string, a number or a boolean (nothing nested). Details travel on
    in the remediation's parameters, which Argo substitutes: ``{{`` and ``}}`` (an unrendered Alertmanager template,
    or a sender's ``{{workflow.*}}``) are defused to ``{ {`` and ``} }``."""
    if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
        return value
    if isinstance(value, str):
        text = printable_text(value, 200)
        while "{{" in text or "}}" in text:
            text = text.replace("{{", "{ {").replace("}}", "} }")
        return text
    return None


def _fallback_id(source: str, *parts: Any) -> str:
    return f"{source}-" + hashlib.sha256(json.dumps(parts, default=str).encode("utf-8")).hexdigest()[:16]


def severity(value: Any, where: str) -> str:
    """Our severity word for a common vendor word (no source-specific words); unknown words are an error."""
    if isinstance(value, str) and value.strip().lower() in SEVERITY_WORDS:
        return SEVERITY_WORDS[value.strip().lower()]
    raise StepError(f"{where} {str(value)[:40]!r} is not a known severity ({', '.join(SEVERITIES)})")


def to_event(source: Source, record: Record) -> DriftEvent:
    """The drift event of a firing record, or Unmapped with the one-line reason."""
    values, origin = record.values, record.sources
    where = f"{source.name}: {record.where}"

    def at(name: str) -> str:
        return f"{where}: {name}" + (f" ({origin[name]})" if name in origin else " (not mapped)")

    model = _name(values.get("model"), at("model"))
    raw_feature = values.get("feature")
    feature = _name(raw_feature, at("feature"), FEATURE) if present(raw_feature) else ""
    level = source.severity(values.get("severity"), at("severity"))
    metric = _name(values.get("metric") if present(values.get("metric")) else "drift", at("metric"))
    value = _number(values.get("value"), at("value"))
    threshold = _number(values.get("threshold"), at("threshold"))
    direction = values.get("direction") if present(values.get("direction")) else "above"
    if direction not in ("above", "below"):
        raise Unmapped(f"{at('direction')} {str(direction)[:20]!r} must be 'above' or 'below'")
    fallback = _fallback_id(source.name, model, feature, values.get("starts_at"), record.where)
    raw_id = values.get("id")
    raw_id = str(raw_id) if isinstance(raw_id, (int, float)) and not isinstance(raw_id, bool) else raw_id
    event_id = raw_id if isinstance(raw_id, str) and EVENT_ID.match(raw_id) else fallback
    details = {name: kept for name, raw in values.items()
               if name not in CORE_FIELDS and (kept := _detail(raw)) is not None and kept != ""}
    if direction == "below":
        details["direction"] = "below"
    if isinstance(raw_id, str) and raw_id and event_id != raw_id:
        details["original_id"] = printable_text(raw_id, 200)
    return DriftEvent(model, feature, level, metric, value, threshold, source.name, event_id, details)


@dataclass
class Delivery:
    """What one delivery held: its events, the records that are not firing or could not be mapped (each with
    its reason), and why there was nothing at all."""

    events: list[DriftEvent] = field(default_factory=list)
    not_firing: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    empty: str = ""  # why the delivery held no record at all ("" when it held some)


def parse_body(source: str, body: str | Any) -> Any:
    if isinstance(body, str):
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise StepError(f"{source}: the event body is not JSON ({exc.msg} at character {exc.pos})") from None
        except RecursionError:
            raise StepError(f"{source}: the event body is nested too deeply") from None
    return body


def deliver(source: Source, document: MappingABC[str, Any]) -> Delivery:
    """The drift events of one delivery ``document`` (``body`` plus the transport's fields, see shapes.py)."""
    records, empty = source.mapping.apply(document, shapes.FUNCTIONS)
    out = Delivery(empty=f"{source.name}: the event holds no drift record: {empty}" if empty else "")
    for record in records:
        if not record.firing:
            out.not_firing.append(f"{source.name}: {record.where}: not firing"
                                  + (f" ({source.mapping.when.source})" if source.mapping.when else ""))
            continue
        try:
            out.events.append(to_event(source, record))
        except Unmapped as exc:
            out.unmapped.append(str(exc))
    return out


def normalise(source: str | Source, body: str | Any) -> list[DriftEvent]:
    """The firing drift events in a webhook ``body`` sent by ``source``; anything unmappable is one StepError
    (the strict form, for tools and tests; the guard uses :func:`deliver` and keeps going)."""
    spec = source if isinstance(source, Source) else default_source(source)
    parsed = parse_body(spec.name, body)
    if not isinstance(parsed, dict):
        raise StepError(f"{spec.name}: the event body must be a JSON object")
    delivery = deliver(spec, {"header": {}, "body": parsed, "id": ""})
    if delivery.unmapped:
        raise StepError(delivery.unmapped[0])
    if delivery.empty and not delivery.events:
        raise StepError(delivery.empty)
    return delivery.events
