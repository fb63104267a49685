"""The fairness section of a model card, the policy that decides when it is refreshed, and the movement check.

The section lives in ``model-cards/<model>.md`` between ``<!-- hera-flows:fairness -->`` and
``<!-- /hera-flows:fairness -->`` (the promotion pattern's entries and hand-written text around it are never
touched). It ends with a one-line machine-readable record, ``<!-- hera-flows:fairness-data {json} -->``: next
week's audit reads the previous values from it, shows them next to the new ones, and measures the movement.
The JSON escapes ``<``, ``>`` and ``&``, so no value can close the comment. Rendering is a pure function of
(result, previous record, date, week): same inputs, same bytes.

Policy (``model-cards/POLICY.md`` YAML front matter, or a ``.yaml`` file; optionally under a ``fairness:`` key)::

    thresholds:          # a card is refreshed when any value moved by more than this (absolute change)
      dp_difference: 0.02
      dp_ratio: 0.05
      eo_difference: 0.02
      selection_rate: 0.05   # group metrics, for groups that are not small in either week
      accuracy: 0.05
      precision: 0.05
      recall: 0.05
      fpr: 0.05
      fnr: 0.05
    limits:              # optional: values outside are called out in the digest
      max_dp_difference: 0.1
      min_dp_ratio: 0.8
      max_eo_difference: 0.1
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.markdown import inline_code, table_cell
from hera_flows.steps.model_cards import format_number, upsert_marked

START = "<!-- hera-flows:fairness -->"
END = "<!-- /hera-flows:fairness -->"
DATA_PREFIX = "<!-- hera-flows:fairness-data "
DATA_SUFFIX = " -->"
METRICS = ("count", "selection_rate", "accuracy", "precision", "recall", "fpr", "fnr")
GROUP_METRICS = METRICS[1:]
DISPARITIES = ("dp_difference", "dp_ratio", "eo_difference")
LABELS = {
    "count": "Rows", "selection_rate": "Selection rate", "accuracy": "Accuracy", "precision": "Precision",
    "recall": "Recall (TPR)", "fpr": "FPR", "fnr": "FNR", "dp_difference": "Demographic-parity difference",
    "dp_ratio": "Demographic-parity ratio", "eo_difference": "Equalized-odds difference",
}
DEFAULT_THRESHOLDS = {"dp_difference": 0.02, "dp_ratio": 0.05, "eo_difference": 0.02,
                      **{name: 0.05 for name in GROUP_METRICS}}
LIMIT_KEYS = ("max_dp_difference", "min_dp_ratio", "max_eo_difference")


@dataclass(frozen=True)
class Policy:
    thresholds: dict[str, float]
    limits: dict[str, float] = field(default_factory=dict)
    source: str = "defaults"


def parse_policy(text: str | None, source: str) -> Policy:
    """The policy from a markdown file's YAML front matter or a YAML file; ``None`` text: the defaults."""
    import yaml

    if text is None:
        return Policy(dict(DEFAULT_THRESHOLDS), {}, "defaults (no policy file)")
    if source.endswith(".md"):
        match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", text, re.S)
        if not match:
            raise StepError(f"{source} has no YAML front matter (a block between '---' lines at the top)")
        text = match.group(1)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise StepError(f"{source}: the policy is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if isinstance(data, dict) and isinstance(data.get("fairness"), dict):
        data = data["fairness"]
    if not isinstance(data, dict):
        raise StepError(f"{source}: the policy must be a mapping with 'thresholds' (and optional 'limits')")
    unknown = sorted(set(data) - {"thresholds", "limits"})
    if unknown:
        raise StepError(f"{source}: unknown policy keys {unknown} (expected 'thresholds', 'limits')")
    thresholds = dict(DEFAULT_THRESHOLDS)
    thresholds.update(_numbers(data.get("thresholds") or {}, set(DEFAULT_THRESHOLDS), f"{source}: thresholds"))
    limits = _numbers(data.get("limits") or {}, set(LIMIT_KEYS), f"{source}: limits")
    return Policy(thresholds, limits, source)


def _numbers(values: Any, allowed: set[str], where: str) -> dict[str, float]:
    if not isinstance(values, dict):
        raise StepError(f"{where} must be a mapping of name -> number")
    out = {}
    for key, value in values.items():
        if key not in allowed:
            raise StepError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise StepError(f"{where}: {key} must be a non-negative number, not {value!r}")
        out[key] = float(value)
    return out


# --- the machine-readable record ------------------------------------------------------------------------------


def record(result: dict[str, Any], date: str, week: str) -> dict[str, Any]:
    """What the card keeps for next week's comparison (the audit result minus per-run noise)."""
    return {"date": date, "week": week, "version": result.get("version"), "selector": result.get("selector"),
            "dataset": result.get("dataset"), "rows": result.get("rows"), "overall": result.get("overall"),
            "attributes": result.get("attributes") or {}}


def data_line(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"{DATA_PREFIX}{text}{DATA_SUFFIX}"


def previous_record(card: str | None) -> dict[str, Any] | None:
    """The record in the card's fairness section, or None (no card, no section, unreadable record)."""
    if not card:
        return None
    begin = card.find(START)
    end = card.find(END, begin)
    if begin < 0 or end < 0:
        return None
    for line in card[begin:end].splitlines():
        if line.startswith(DATA_PREFIX) and line.endswith(DATA_SUFFIX):
            try:
                data = json.loads(line[len(DATA_PREFIX):-len(DATA_SUFFIX)])
            except json.JSONDecodeError:
                return None
            return data if isinstance(data, dict) else None
    return None


# --- movement -------------------------------------------------------------------------------------------------


def movements(
    new: dict[str, Any], old: dict[str, Any] | None, policy: Policy, small: Set[str] = frozenset()
) -> list[str]:
    """Why the card must be refreshed (empty: everything is within the policy's thresholds)."""
    if old is None:
        return ["first fairness audit recorded in the card"]
    reasons: list[str] = []
    if str(old.get("version")) != str(new.get("version")):
        reasons.append(f"audited version changed: v{old.get('version')} → v{new.get('version')}")
    old_attrs, new_attrs = old.get("attributes") or {}, new.get("attributes") or {}
    for name in sorted(set(old_attrs) | set(new_attrs)):
        if name not in new_attrs:
            reasons.append(f"{name}: no longer audited")
            continue
        if name not in old_attrs:
            reasons.append(f"{name}: audited for the first time")
            continue
        a, b = old_attrs[name], new_attrs[name]
        for metric in DISPARITIES:
            reason = _moved(f"{name}: {LABELS[metric].lower()}", a.get(metric), b.get(metric),
                            policy.thresholds[metric])
            if reason:
                reasons.append(reason)
        old_groups, new_groups = a.get("groups") or {}, b.get("groups") or {}
        skip = set(a.get("small") or []) | set(b.get("small") or [])
        for group in sorted(set(old_groups) ^ set(new_groups)):
            reasons.append(f"{name}={group}: group {'appeared' if group in new_groups else 'disappeared'}")
        for group in sorted((set(old_groups) & set(new_groups)) - skip):
            for index, metric in enumerate(GROUP_METRICS, start=1):
                reason = _moved(f"{name}={group}: {LABELS[metric].lower()}", _at(old_groups[group], index),
                                _at(new_groups[group], index), policy.thresholds[metric])
                if reason:
                    reasons.append(reason)
    return reasons


def _at(values: Any, index: int) -> Any:
    return values[index] if isinstance(values, list) and len(values) > index else None


def _moved(what: str, old: Any, new: Any, threshold: float) -> str | None:
    if old is None and new is None:
        return None
    if old is None or new is None:
        return f"{what} {format_number(old)} → {format_number(new)}"
    delta = float(new) - float(old)
    if abs(delta) > threshold + 1e-12:
        return f"{what} {format_number(old)} → {format_number(new)} ({format_number(delta, signed=True)}, " \
               f"threshold {format_number(threshold)})"
    return None


def limit_breaches(new: dict[str, Any], policy: Policy) -> list[str]:
    out = []
    for name, attr in sorted((new.get("attributes") or {}).items()):
        checks: tuple[tuple[str, str, Callable[[float, float], bool]], ...] = (
            ("max_dp_difference", "dp_difference", lambda v, lim: v > lim),
            ("min_dp_ratio", "dp_ratio", lambda v, lim: v < lim),
            ("max_eo_difference", "eo_difference", lambda v, lim: v > lim),
        )
        for key, metric, breached in checks:
            value = attr.get(metric)
            if key in policy.limits and value is not None and breached(float(value), policy.limits[key]):
                out.append(f"{name}: {LABELS[metric].lower()} {format_number(value)} is outside the policy limit "
                           f"{key} = {format_number(policy.limits[key])}")
    return out


# --- rendering ------------------------------------------------------------------------------------------------


def _num(value: Any) -> str:
    return DASH if value is None else (f"{value:.4f}" if isinstance(value, float) else format_number(value))


DASH = "—"


def render_section(
    model: str, new: dict[str, Any], old: dict[str, Any] | None, min_group_count: int | None = None
) -> str:
    """The card's fairness section (markers included, trailing newline): deterministic."""
    lines = [
        START,
        f"## Fairness audit — {table_cell(new['date'])} (week {table_cell(new['week'])})",
        "",
        f"Version {table_cell(new.get('version'))} ({inline_code(new.get('selector') or '?')}) on "
        f"{inline_code(new.get('dataset') or '?')}, {format_number(new.get('rows'))} rows. "
        + (f"Previous values (audit of {table_cell(old.get('date'))}, version {table_cell(old.get('version'))}) "
           "are in parentheses. " if old else "No previous audit is recorded. ")
        + "Groups marked † are below the minimum group size: their values are imprecise and they are left out "
        "of the disparities.",
        "",
    ]
    old_attrs = (old or {}).get("attributes") or {}
    for name, attr in sorted((new.get("attributes") or {}).items()):
        prev = old_attrs.get(name) or {}
        lines += [f"### {table_cell(name)}", "", "| Disparity | Value | Previous |", "|---|---:|---:|"]
        for metric in DISPARITIES:
            lines.append(f"| {LABELS[metric]} | {_num(attr.get(metric))} | {_num(prev.get(metric))} |")
        lines += ["", "| Group | " + " | ".join(LABELS[m] for m in METRICS) + " |",
                  "|---|" + "---:|" * len(METRICS)]
        small = set(attr.get("small") or [])
        prev_groups = prev.get("groups") or {}
        for group, values in sorted((attr.get("groups") or {}).items()):
            before = prev_groups.get(group)
            cells = []
            for index, _metric in enumerate(METRICS):
                cell = _num(_at(values, index))
                if before is not None:
                    cell += f" ({_num(_at(before, index))})"
                cells.append(cell)
            marker = " †" if group in small else ""
            lines.append(f"| {table_cell(group)}{marker} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [data_line(record_of(new)), END]
    return "\n".join(lines) + "\n"


def record_of(new: dict[str, Any]) -> dict[str, Any]:
    return {k: new.get(k) for k in ("date", "week", "version", "selector", "dataset", "rows", "overall", "attributes")}


def new_card(model: str) -> str:
    return (
        f"# Model card: {table_cell(model)}\n\n"
        f"Model card of the registered model {inline_code(model)}. Sections between `hera-flows:` markers are "
        "maintained by hera-flows.\n"
    )


def upsert_section(card: str | None, model: str, section: str) -> str:
    return upsert_marked(new_card(model) if card is None else card, START, END, section)
