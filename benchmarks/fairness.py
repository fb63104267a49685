"""Fairness audit speed and memory: our numpy engine against fairlearn's MetricFrame, in the same run.

1,000,000 rows, 3 sensitive attributes (string columns, as a dataset loads), the 7 group metrics (count,
selection rate, accuracy, precision, recall/TPR, FPR, FNR) and the 3 disparities per attribute. Both sides
start from the same pandas columns; ours includes turning the strings into codes. Every value is compared
(1e-9). Then the engine's peak memory on 10,000,000 rows is measured in a fresh subprocess (peak RSS of the
whole process, data included), because the issue bounds it at 2 GB.

Run: ``python -m benchmarks.fairness`` (MetricFrame takes about a minute), or ``--rows`` / ``--skip-metricframe``.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
import warnings

import numpy as np

ATTRIBUTES = ("sex", "race", "age_band")
TARGET_SPEEDUP = 50.0
MEMORY_LIMIT_MB = 2048


def make_data(rows: int, seed: int = 0):  # noqa: ANN201 - pandas is imported lazily
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sex": rng.choice(np.array(["female", "male", "nonbinary"]), rows, p=[0.49, 0.49, 0.02]),
        "race": rng.choice(np.array(["asian", "black", "hispanic", "white", "other"]), rows),
        "age_band": rng.choice(np.array(["18-25", "26-40", "41-60", "60+"]), rows),
    })
    y_true = (rng.random(rows) < 0.3).astype(np.int8)
    y_pred = np.where(rng.random(rows) < 0.15, 1 - y_true, y_true).astype(np.int8)
    return frame, y_true, y_pred


def ours(frame, y_true, y_pred) -> dict:  # noqa: ANN001
    import pyarrow as pa

    from hera_flows.steps.fairness import metrics as fm

    attributes = [fm.Attribute(c, *fm.factorize(pa.array(frame[c].to_numpy()))) for c in ATTRIBUTES]
    return fm.audit(y_true, y_pred, attributes)


def metricframe(frame, y_true, y_pred) -> dict:  # noqa: ANN001
    import fairlearn.metrics as fl
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    metrics = {
        "count": fl.count, "selection_rate": functools.partial(fl.selection_rate, pos_label=1),
        "accuracy": accuracy_score, "precision": precision_score, "recall": recall_score,
        "fpr": functools.partial(fl.false_positive_rate, pos_label=1),
        "fnr": functools.partial(fl.false_negative_rate, pos_label=1),
    }
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for column in ATTRIBUTES:
            mf = fl.MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=frame[column])
            sel = mf.by_group["selection_rate"]
            tpr, fpr = mf.by_group["recall"], mf.by_group["fpr"]
            # The same disparities fairlearn's demographic_parity_* / equalized_odds_difference compute, from the
            # frame already built (calling those functions would rebuild it: timed separately below).
            out[column] = {
                "groups": mf.by_group,
                "dp_difference": sel.max() - sel.min(),
                "dp_ratio": sel.min() / sel.max(),
                "eo_difference": max(tpr.max() - tpr.min(), fpr.max() - fpr.min()),
            }
    return out


def compare(mine: dict, reference: dict) -> int:
    compared = 0
    for column, ref in reference.items():
        result = mine["attributes"][column]
        for label, row in ref["groups"].iterrows():
            for name, value in row.items():
                if abs(result.groups[str(label)][name] - float(value)) > 1e-9:
                    raise SystemExit(f"MISMATCH {column}/{label}/{name}: ours {result.groups[label][name]} vs {value}")
                compared += 1
        for name in ("dp_difference", "dp_ratio", "eo_difference"):
            if abs(getattr(result, name) - float(ref[name])) > 1e-9:
                raise SystemExit(f"MISMATCH {column}/{name}")
            compared += 1
    return compared


MEMORY_PROBE = """
import resource, sys, numpy as np, pyarrow as pa
from hera_flows.steps.fairness import metrics as fm
rows = int(sys.argv[1])
rng = np.random.default_rng(1)
dictionaries = [pa.array(["female", "male", "nonbinary"]), pa.array(["asian", "black", "hispanic", "white", "other"]),
                pa.array(["18-25", "26-40", "41-60", "60+"])]
# What a parquet file with dictionary-encoded string columns loads as: int8 indices + a small dictionary.
columns = [
    pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, len(d), rows, dtype=np.int8)), d) for d in dictionaries
]
y_true = rng.random(rows) < 0.3
y_pred = y_true ^ (rng.random(rows) < 0.15)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
attributes = [fm.Attribute(n, *fm.factorize(c)) for n, c in zip(("sex", "race", "age_band"), columns)]
result = fm.audit(y_true, y_pred, attributes, intersections=[("sex", "race")])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak // 1024, before // 1024, result["overall"]["count"])
"""


def measure_memory(rows: int) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(rows)], capture_output=True, text=True, check=True)
    peak, before, count = (int(x) for x in out.stdout.split())
    assert count == rows
    return peak, before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fairness", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--skip-metricframe", action="store_true")
    args = parser.parse_args(argv)

    frame, y_true, y_pred = make_data(args.rows)
    ours(frame.head(1000), y_true[:1000], y_pred[:1000])  # warm imports, as MetricFrame's are warmed below
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        mine = ours(frame, y_true, y_pred)
        runs.append(time.perf_counter() - start)
    ours_seconds = min(runs)
    print(f"fairness audit, {args.rows:,} rows x {len(ATTRIBUTES)} attributes x 7 metrics + 3 disparities")
    print(f"  ours (numpy bincount, best of 3):   {ours_seconds:8.3f} s")
    status = 0
    if not args.skip_metricframe:
        metricframe(frame.head(1000), y_true[:1000], y_pred[:1000])
        start = time.perf_counter()
        reference = metricframe(frame, y_true, y_pred)
        mf_seconds = time.perf_counter() - start
        compared = compare(mine, reference)
        ratio = mf_seconds / ours_seconds
        print(f"  fairlearn MetricFrame:              {mf_seconds:8.3f} s")
        print(f"  speed-up: {ratio:.0f}x (target >= {TARGET_SPEEDUP:.0f}x); {compared} values agree to 1e-9")
        status |= ratio < TARGET_SPEEDUP
    peak, before = measure_memory(args.memory_rows)
    print(f"  peak RSS on {args.memory_rows:,} rows (+ a 2-attribute intersection): {peak} MB "
          f"(data loaded: {before} MB; limit {MEMORY_LIMIT_MB} MB)")
    status |= peak >= MEMORY_LIMIT_MB
    print(json.dumps({"ours_seconds": round(ours_seconds, 4), "peak_rss_mb": peak}))
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
