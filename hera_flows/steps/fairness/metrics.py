"""The fairness metrics engine: disaggregated classification metrics per group, from one ``bincount`` per
sensitive attribute.

Every metric here is a function of a group's confusion matrix, so the engine builds all of them at once: the
row's group code and its (label, prediction) pair are packed into one small integer, ``np.bincount`` counts them
(one pass over the data per attribute, no sort, no Python loop over rows), and the rates follow from the four
counts per group. Arrays stay lean: int32 codes, one int8 array for the (label, prediction) pair.

Definitions match fairlearn 0.15 ``MetricFrame`` with scikit-learn's metrics (checked to 1e-9 by the tests):

- count; selection rate ``(tp+fp)/n``; accuracy ``(tp+tn)/n``;
- precision ``tp/(tp+fp)`` and recall/TPR ``tp/(tp+fn)``: 0.0 when the denominator is 0 (scikit-learn's
  ``zero_division="warn"`` returns 0.0);
- FPR ``fp/(fp+tn)`` and FNR ``fn/(fn+tp)``: 0.0 when the denominator is 0 (fairlearn normalises the confusion
  matrix with ``normalize="true"``, whose empty rows become 0 — so in a group without positives TPR and FNR are
  both 0, not 0 and 1);
- demographic-parity difference ``max - min`` and ratio ``min / max`` of the selection rates (ratio ``None``
  when every group's selection rate is 0: fairlearn returns NaN); equalized-odds difference
  ``max(TPR difference, FPR difference)`` (fairlearn's ``agg="worst_case"``, ``method="between_groups"``).

Groups with fewer rows than ``min_group_count`` are flagged ``small`` and left out of the disparities (their
rates are too noisy to compare); with ``min_group_count=0`` the disparities are exactly fairlearn's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METRICS = ("count", "selection_rate", "accuracy", "precision", "recall", "fpr", "fnr")
SEPARATOR = " & "  # between the two values of an intersection group


@dataclass
class Attribute:
    """A sensitive attribute as integer codes (-1 = no value) and the label of each code."""

    name: str
    codes: np.ndarray
    categories: list[str]


@dataclass
class AttributeResult:
    name: str
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    dp_difference: float | None = None
    dp_ratio: float | None = None
    eo_difference: float | None = None
    empty: list[str] = field(default_factory=list)  # categories the data declares but no row has
    small: list[str] = field(default_factory=list)
    missing: int = 0  # rows without a value for this attribute (left out of its groups)

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups, "dp_difference": self.dp_difference, "dp_ratio": self.dp_ratio,
            "eo_difference": self.eo_difference, "empty": self.empty, "small": self.small, "missing": self.missing,
        }


def factorize(values: Any) -> tuple[np.ndarray, list[str]]:
    """Integer codes (int32, -1 for null/NaN) and sorted category labels for a column (pyarrow or array-like)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow is in the step extra
        pa = None
    if pa is not None:
        array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if not isinstance(array, pa.Array):
            array = pa.array(np.asarray(values), from_pandas=True)
        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        indices = array.indices.to_numpy(zero_copy_only=False)
        if array.indices.null_count:
            indices = np.where(array.indices.is_valid().to_numpy(zero_copy_only=False), indices, -1)
        labels = [group_label(v) for v in array.dictionary.to_pylist()]
        order = sorted(range(len(labels)), key=lambda i: labels[i])
        remap = np.empty(len(labels) + 1, dtype=np.int32)
        remap[np.asarray(order, dtype=np.int64)] = np.arange(len(labels), dtype=np.int32)
        remap[-1] = -1
        codes = remap[indices.astype(np.int64, copy=False)] if len(labels) else np.full(len(indices), -1, np.int32)
        return codes.astype(np.int32, copy=False), [labels[i] for i in order]
    uniques, inverse = np.unique(np.asarray(values).astype(str), return_inverse=True)  # pragma: no cover
    return inverse.astype(np.int32), [str(u) for u in uniques]  # pragma: no cover


def group_label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def intersect(a: Attribute, b: Attribute) -> Attribute:
    """The attribute whose groups are the pairs of ``a`` and ``b`` values (codes ``a * len(b) + b``)."""
    width = max(len(b.categories), 1)
    codes = a.codes.astype(np.int64) * width + b.codes
    codes[(a.codes < 0) | (b.codes < 0)] = -1
    dtype = np.int32 if len(a.categories) * width < 2**31 else np.int64
    labels = [f"{x}{SEPARATOR}{y}" for x in a.categories for y in b.categories]
    return Attribute(f"{a.name}{SEPARATOR}{b.name}", codes.astype(dtype), labels)


def outcome_pairs(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``2 * label + prediction`` as int8 (0 = TN, 1 = FP, 2 = FN, 3 = TP), computed once for every attribute."""
    pairs = np.asarray(y_true, dtype=bool).view(np.int8) << 1
    pairs |= np.asarray(y_pred, dtype=bool).view(np.int8)
    return pairs


def confusion_by_group(codes: np.ndarray, pairs: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, 4) counts of TN, FP, FN, TP; rows with code -1 are left out."""
    cell = codes * 4 if codes.dtype == np.int64 else codes.astype(np.int64 if n_groups * 4 >= 2**31 else np.int32) * 4
    cell += pairs
    if (codes < 0).any():
        cell = cell[codes >= 0]
    return np.bincount(cell, minlength=n_groups * 4)[: n_groups * 4].reshape(n_groups, 4)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of ``METRICS`` per row of a (k, 4) TN/FP/FN/TP count matrix, as float64 arrays."""
    c = counts.astype(np.float64)
    tn, fp, fn, tp = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    n = tn + fp + fn + tp

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.zeros_like(num)
        np.divide(num, den, out=out, where=den > 0)
        return out

    return {
        "count": n, "selection_rate": ratio(tp + fp, n), "accuracy": ratio(tp + tn, n),
        "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
        "fpr": ratio(fp, fp + tn), "fnr": ratio(fn, fn + tp),
    }


def audit_attribute(
    attribute: Attribute, pairs: np.ndarray, min_group_count: int = 0, *, report_empty: bool = True
) -> AttributeResult:
    n_groups = len(attribute.categories)
    counts = confusion_by_group(attribute.codes, pairs, n_groups)
    values = rates(counts)
    result = AttributeResult(attribute.name, missing=int((attribute.codes < 0).sum()))
    reliable: list[int] = []
    for index, label in enumerate(attribute.categories):
        n = int(values["count"][index])
        if n == 0:
            if report_empty:
                result.empty.append(label)
            continue
        small = n < min_group_count
        group = {name: float(values[name][index]) for name in METRICS}
        group["count"] = n
        group["small"] = small
        result.groups[label] = group
        if small:
            result.small.append(label)
        else:
            reliable.append(index)
    if len(reliable) >= 2:
        idx = np.asarray(reliable)
        sel, tpr, fpr = values["selection_rate"][idx], values["recall"][idx], values["fpr"][idx]
        result.dp_difference = float(sel.max() - sel.min())
        result.dp_ratio = float(sel.min() / sel.max()) if sel.max() > 0 else None
        result.eo_difference = float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min()))
    return result


def overall(pairs: np.ndarray) -> dict[str, Any]:
    counts = np.bincount(pairs, minlength=4)[None, :]
    values = rates(counts)
    out = {name: float(values[name][0]) for name in METRICS}
    out["count"] = int(out["count"])
    return out


def audit(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    attributes: list[Attribute],
    *,
    intersections: Sequence[tuple[str, str]] = (),
    min_group_count: int = 0,
) -> dict[str, Any]:
    """Overall metrics and one ``AttributeResult`` per attribute and per requested intersection."""
    pairs = outcome_pairs(y_true, y_pred)
    by_name = {a.name: a for a in attributes}
    results = {a.name: audit_attribute(a, pairs, min_group_count) for a in attributes}
    for first, second in intersections:
        if first in by_name and second in by_name:
            combined = intersect(by_name[first], by_name[second])
            results[combined.name] = audit_attribute(combined, pairs, min_group_count, report_empty=False)
    return {"overall": overall(pairs), "attributes": results}
