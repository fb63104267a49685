"""The model card: one markdown file per registered model with an entry per promotion.

Each entry sits between markers naming the version (``<!-- hera-flows:promotion v7 -->`` ...
``<!-- /hera-flows:promotion v7 -->``), so a redelivered event replaces its own entry instead of adding a second
one, and hand-written text around the entries is never touched. Everything that comes from the registry
(metric names, URIs, ids) is escaped: it cannot break the table, the markers or the surrounding markdown.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, TypeGuard

from hera_flows.steps.common import StepError
from hera_flows.steps.markdown import inline_code, table_cell

MARKER = "hera-flows:promotion"
DASH = "—"


def card_filename(model: str) -> str:
    """``<model>.md`` with anything but letters, digits, '.', '_' and '-' replaced ("Fraud Detector" ->
    "Fraud-Detector.md"; Unity Catalog "main.risk.fraud" stays readable)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.")
    if not stem:
        raise StepError(f"the model name {model!r} gives no usable model card file name")
    return f"{stem}.md"


def start_marker(version: str) -> str:
    return f"<!-- {MARKER} v{version} -->"


def end_marker(version: str) -> str:
    return f"<!-- /{MARKER} v{version} -->"


def format_number(value: Any, *, signed: bool = False) -> str:
    """Deterministic and short: integers without a fraction, others with 6 significant digits."""
    if value is None:
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return table_cell(value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return ("+inf" if signed else "inf") if value > 0 else "-inf"
    if float(value).is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = f"{value:.6g}"
    if text in ("-0", "-0.0"):
        text = "0"
    return ("+" + text) if signed and value > 0 else text


def metrics_table(context: dict[str, Any]) -> str:
    """New / previous / delta per metric, rows sorted by metric name; "" when there are no metrics."""
    rows = metric_rows(context)
    if not rows:
        return ""
    previous = (context.get("serving") or {}).get("current_version")
    previous_header = f"Previous (v{table_cell(previous)})" if previous else "Previous"
    lines = [
        f"| Metric | New (v{table_cell(context['version'])}) | {previous_header} | Delta |",
        "|---|---:|---:|---:|",
    ]
    for name, new, old, delta in rows:
        lines.append(
            f"| {table_cell(name)} | {format_number(new)} | {format_number(old)} | "
            f"{format_number(delta, signed=True)} |"
        )
    return "\n".join(lines) + "\n"


def metric_rows(context: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(name, new, old, delta) from ``deltas``, completed from ``metrics`` and ``serving.metrics``."""
    deltas = context.get("deltas") or {}
    new_metrics = context.get("metrics") or {}
    old_metrics = (context.get("serving") or {}).get("metrics") or {}
    rows = []
    for name in sorted(set(deltas) | set(new_metrics), key=str):
        entry = deltas.get(name) or {}
        new = entry.get("new", new_metrics.get(name))
        old = entry.get("old", old_metrics.get(name))
        delta = entry.get("delta")
        if delta is None and _is_number(new) and _is_number(old):
            delta = new - old
        rows.append((str(name), new, old, delta))
    return rows


def render_entry(context: dict[str, Any]) -> str:
    """The marked section for this promotion (markers included, trailing newline)."""
    version = str(context["version"])
    model_version = context.get("model_version") or {}
    lines = [
        start_marker(version),
        f"## Version {table_cell(version)} — promoted as {inline_code(context['alias'])}",
        "",
    ]
    description = model_version.get("description")
    if description:
        lines += [f"> {table_cell(description)}", ""]
    table = metrics_table(context)
    lines += [table.rstrip("\n"), ""] if table else ["No metrics were logged for this version.", ""]
    for title, section in (("Evaluation set", evaluation_section(context)), ("Fairness", fairness_section(context)),
                           ("Deployment", deployment_section(context))):
        if section:
            lines += [f"### {title}", "", *section, ""]
    facts = [("Source", model_version.get("source")), ("Storage URI", model_version.get("storage_uri"))]
    if model_version.get("run_id"):
        facts.append(("Run", model_version["run_id"]))
    if model_version.get("model_id"):
        facts.append(("Logged model", model_version["model_id"]))
    lines += [f"- {label}: {inline_code(value)}" for label, value in facts if value]
    lines.append(end_marker(version))
    return "\n".join(lines) + "\n"


# --- beyond the logged metrics (hera_flows/steps/promotion/evaluation.py) ---------------------------------------

EVALUATION_ROWS = (("accuracy", "Accuracy"), ("ece", "Expected calibration error"), ("brier", "Brier score"))
DISPARITY_LABELS = {"dp_difference": "Demographic-parity difference", "dp_ratio": "Demographic-parity ratio",
                    "eo_difference": "Equalized-odds difference"}


def _versions(context: dict[str, Any]) -> tuple[str, str]:
    previous = (context.get("serving") or {}).get("current_version")
    return f"New (v{table_cell(context['version'])})", f"Serving (v{table_cell(previous)})" if previous else "Serving"


def _notes(result: dict[str, Any], who: str) -> list[str]:
    notes = [f"{who}: {result['error']}"] if result.get("error") else []
    return notes + [f"{who}: {p}" for p in (result.get("problems") or [])[:10]]


def evaluation_section(context: dict[str, Any]) -> list[str]:
    """Accuracy, expected calibration error and Brier score on the evaluation set, new vs serving, with where the
    data came from; [] when the evaluation was not run."""
    evaluated = context.get("evaluation")
    if not isinstance(evaluated, dict):
        return []
    new, old, delta = (evaluated.get(k) or {} for k in ("new", "serving", "deltas"))
    new_label, old_label = _versions(context)
    lines = []
    if any(new.get(k) is not None or old.get(k) is not None for k, _ in EVALUATION_ROWS):
        bins = new.get("bins") or old.get("bins")
        lines += [f"| Measure | {new_label} | {old_label} | Delta |", "|---|---:|---:|---:|"]
        for key, label in EVALUATION_ROWS:
            name = f"{label} ({bins} bins)" if key == "ece" and bins else label
            lines.append(f"| {name} | {format_number(new.get(key))} | {format_number(old.get(key))} | "
                         f"{format_number(delta.get(key), signed=True)} |")
        lines.append("")
    sources = [(who, r.get("dataset"), r.get("rows")) for who, r in (("new", new), ("serving", old))
               if r.get("dataset")]
    lines += [f"- Evaluation set ({who}): {inline_code(where)}, {rows} rows" for who, where, rows in sources]
    lines += [f"- {table_cell(note)}" for note in _notes(new, "new") + _notes(old, "serving")]
    return lines


def fairness_section(context: dict[str, Any]) -> list[str]:
    """Per sensitive attribute: each disparity of the new version against the serving version (the fairness
    audit's latest record when there is one), with the source of each side."""
    evaluated = context.get("evaluation")
    if not isinstance(evaluated, dict):
        return []
    new, old, delta = (evaluated.get(k) or {} for k in ("new", "serving", "deltas"))
    attributes = sorted(set(new.get("fairness") or {}) | set(old.get("fairness") or {}))
    if not attributes:
        return []
    new_label, old_label = _versions(context)
    lines = [f"| Attribute | Disparity | {new_label} | {old_label} | Delta |", "|---|---|---:|---:|---:|"]
    for name in attributes:
        mine = (new.get("fairness") or {}).get(name) or {}
        theirs = (old.get("fairness") or {}).get(name) or {}
        moved = (delta.get("fairness") or {}).get(name) or {}
        for key, label in DISPARITY_LABELS.items():
            lines.append(f"| {table_cell(name)} | {label} | {format_number(mine.get(key))} | "
                         f"{format_number(theirs.get(key))} | {format_number(moved.get(key), signed=True)} |")
    lines.append("")
    for who, result in (("New", new), ("Serving", old)):
        if result.get("fairness_source"):
            lines.append(f"- {who}: {table_cell(result['fairness_source'])}")
    return lines


def deployment_section(context: dict[str, Any]) -> list[str]:
    """The deployment tags that are set, with the source of each (the model version's tags win over its run's)."""
    deployment = context.get("deployment") or {}
    sources = context.get("deployment_sources") or {}
    rows = [(name, value) for name, value in deployment.items() if value is not None]
    if not rows:
        return []
    lines = ["| Setting | Value | Source |", "|---|---|---|"]
    lines += [f"| {inline_code(name)} | {inline_code(str(value))} | {table_cell(sources.get(name, 'tags'))} tags |"
              for name, value in rows]
    return lines


def new_card(model: str) -> str:
    return (
        f"# Model card: {table_cell(model)}\n\n"
        f"Promotion history of the registered model {inline_code(model)}, one entry per promoted version "
        "(entries between `hera-flows:promotion` markers are maintained by hera-flows).\n"
    )


def upsert_entry(card: str | None, model: str, version: str, entry: str) -> str:
    """The card with this version's entry added at the end, or replaced in place when it is already there."""
    return upsert_marked(new_card(model) if card is None else card, start_marker(version), end_marker(version), entry)


def upsert_marked(text: str, start: str, end: str, entry: str) -> str:
    """``text`` with the section between the ``start`` and ``end`` marker lines replaced by ``entry`` (markers
    included), or ``entry`` appended after a blank line when there is none yet. Shared by every pattern that keeps
    a section in a model card (promotion entries, the fairness audit)."""
    begin = text.find(start)
    if begin >= 0:
        finish = text.find(end, begin)
        if finish < 0:
            raise StepError(f"the model card has {start} without {end}; fix the card by hand")
        finish += len(end)
        if text[finish:finish + 1] == "\n":
            finish += 1
        return text[:begin] + entry + text[finish:]
    if text and not text.endswith("\n"):
        text += "\n"
    return text + ("\n" if text else "") + entry


def card_path(repo: Path, cards_dir: str, model: str) -> Path:
    """The card's path, refusing anything that would leave the repository (a symlinked folder or file)."""
    path = repo / cards_dir / card_filename(model)
    if path.is_symlink() or not path.parent.resolve().is_relative_to(repo.resolve()):
        raise StepError(f"{cards_dir}/{path.name} is a symbolic link or leaves the repository; refusing to write it")
    return path


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
