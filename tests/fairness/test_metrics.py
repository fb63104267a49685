"""The fairness engine agrees with fairlearn 0.15's MetricFrame (and its disparity functions) to 1e-9 on every
value, including the edge cases: a group without positives, without negatives, without predicted positives,
a selection rate of 0 everywhere, intersections, small groups and nulls."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hera_flows.steps.fairness import metrics as fm

fl = pytest.importorskip("fairlearn.metrics")
from sklearn.metrics import accuracy_score, precision_score, recall_score  # noqa: E402

TOL = 1e-9
FAIRLEARN = {
    "count": fl.count,
    "selection_rate": functools.partial(fl.selection_rate, pos_label=1),
    "accuracy": accuracy_score,
    "precision": precision_score,
    "recall": recall_score,
    "fpr": functools.partial(fl.false_positive_rate, pos_label=1),
    "fnr": functools.partial(fl.false_negative_rate, pos_label=1),
}


def _frame(y_true, y_pred, sensitive) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fl.MetricFrame(metrics=FAIRLEARN, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive).by_group


def _close(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return abs(float(a) - float(b)) <= TOL


def _check_attribute(result: fm.AttributeResult, y_true, y_pred, sensitive) -> int:
    """Compare every group value and every disparity; return how many values were compared."""
    by_group = _frame(y_true, y_pred, sensitive)
    compared = 0
    assert len(by_group) == len(result.groups)
    for key, row in by_group.iterrows():
        label = fm.SEPARATOR.join(fm.group_label(k) for k in key) if isinstance(key, tuple) else fm.group_label(key)
        ours = result.groups[label]
        for name in fm.METRICS:
            assert _close(ours[name], row[name]), (result.name, label, name, ours[name], row[name])
            compared += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "dp_difference": fl.demographic_parity_difference(y_true, y_pred, sensitive_features=sensitive),
            "dp_ratio": fl.demographic_parity_ratio(y_true, y_pred, sensitive_features=sensitive),
            "eo_difference": fl.equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive),
        }
    for name, value in expected.items():
        assert _close(getattr(result, name), value), (result.name, name, getattr(result, name), value)
        compared += 1
    return compared


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sex": rng.choice(["F", "M", "X"], n, p=[0.48, 0.48, 0.04]),
        "race": rng.choice(["a", "b", "c", "d"], n),
        "age": rng.choice([20, 40, 60], n),
    })
    y_true = (rng.random(n) < 0.3 + 0.1 * (frame["sex"] == "F")).astype(int).to_numpy()
    flip = rng.random(n) < 0.2
    y_pred = np.where(flip, 1 - y_true, y_true)
    return y_true, y_pred, frame


def _attributes(frame: pd.DataFrame) -> list[fm.Attribute]:
    return [fm.Attribute(c, *fm.factorize(pa.array(frame[c].to_numpy()))) for c in frame.columns]


def test_every_group_metric_and_disparity_matches_metricframe() -> None:
    y_true, y_pred, frame = _data(20_000, seed=1)
    result = fm.audit(y_true, y_pred, _attributes(frame), intersections=[("sex", "race")])
    compared = 0
    for column in frame.columns:
        compared += _check_attribute(result["attributes"][column], y_true, y_pred, frame[column])
    compared += _check_attribute(result["attributes"]["sex & race"], y_true, y_pred, frame[["sex", "race"]])
    assert compared == (3 + 4 + 3 + 12) * 7 + 4 * 3
    overall = result["overall"]
    assert overall["count"] == 20_000
    assert _close(overall["accuracy"], accuracy_score(y_true, y_pred))
    assert _close(overall["precision"], precision_score(y_true, y_pred))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "groups"),
    [
        # group b has no actual positives: recall 0 (zero_division), FNR 0 (fairlearn: empty row -> 0), not 1
        ([1, 0, 1, 0, 0, 0], [1, 0, 0, 1, 1, 0], ["a", "a", "a", "b", "b", "b"]),
        # group b has no actual negatives: FPR 0; group a predicts nothing positive: precision 0
        ([1, 0, 0, 1, 1, 1], [0, 0, 0, 1, 0, 1], ["a", "a", "a", "b", "b", "b"]),
        # nobody is selected: selection rates all 0, demographic-parity ratio undefined (NaN in fairlearn)
        ([1, 0, 1, 0], [0, 0, 0, 0], ["a", "a", "b", "b"]),
        # a single-row group and a group with a perfect classifier
        ([1, 1, 0, 0, 1], [1, 1, 0, 0, 0], ["a", "a", "a", "a", "z"]),
        # every label and prediction identical
        ([1, 1, 1], [1, 1, 1], ["a", "b", "b"]),
    ],
)
def test_edge_cases_match_fairlearn(y_true, y_pred, groups) -> None:
    y_true, y_pred, groups = np.array(y_true), np.array(y_pred), np.array(groups)
    attribute = fm.Attribute("g", *fm.factorize(pa.array(groups)))
    result = fm.audit(y_true, y_pred, [attribute])["attributes"]["g"]
    _check_attribute(result, y_true, y_pred, groups)


def test_small_groups_are_flagged_and_left_out_of_the_disparities() -> None:
    y_true, y_pred, frame = _data(5_000, seed=2)
    attribute = fm.Attribute("sex", *fm.factorize(pa.array(frame["sex"].to_numpy())))
    result = fm.audit(y_true, y_pred, [attribute], min_group_count=500)["attributes"]["sex"]
    assert result.small == ["X"] and result.groups["X"]["small"] is True and result.groups["F"]["small"] is False
    keep = (frame["sex"] != "X").to_numpy()
    expected = fl.demographic_parity_difference(y_true[keep], y_pred[keep], sensitive_features=frame["sex"][keep])
    assert _close(result.dp_difference, expected)
    only_one = fm.audit(y_true, y_pred, [attribute], min_group_count=4_000)["attributes"]["sex"]
    assert only_one.dp_difference is None and only_one.eo_difference is None


def test_nulls_are_counted_apart_and_declared_but_unused_categories_are_empty() -> None:
    values = pa.array(["a", None, "b", "a"]).dictionary_encode()
    declared = pa.DictionaryArray.from_arrays(values.indices, pa.array(["a", "b", "c"]))
    codes, labels = fm.factorize(declared)
    assert labels == ["a", "b", "c"] and codes.tolist() == [0, -1, 1, 0]
    result = fm.audit(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]), [fm.Attribute("g", codes, labels)])
    g = result["attributes"]["g"]
    assert g.missing == 1 and g.empty == ["c"] and set(g.groups) == {"a", "b"}
    assert g.groups["a"]["count"] == 2


def test_numeric_categories_get_stable_labels() -> None:
    codes, labels = fm.factorize(pa.array([40.0, 20.0, 40.0]))
    assert labels == ["20", "40"] and codes.tolist() == [1, 0, 1]
