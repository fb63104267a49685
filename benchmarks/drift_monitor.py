"""Drift monitor throughput: rows/s of `run_monitor` (Evidently DataDriftPreset, with the default sampling) at
100k and 1M rows, against a baseline measured in the same run on the same data — pandas reading the parquet
file and computing ``describe()`` — so the ratio means something on any machine.

    .venv/bin/python -m benchmarks.drift_monitor [--rows 100000,1000000] [--max-rows 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _frames(rows: int, seed: int, shift: float):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(50 + shift, 10, rows),
        "age": rng.integers(18, 80, rows),
        "balance": rng.lognormal(3, 1, rows),
        "merchant": rng.choice(["grocery", "travel", "fuel", "online", "other"], rows),
        "country": rng.choice(["de", "fr", "nl", "es"], rows),
    })


def measure(rows: int, max_rows: int, folder: Path) -> dict[str, float]:
    import pandas as pd

    from hera_flows.steps.drift.monitor import run_monitor

    reference, current = folder / f"reference-{rows}.parquet", folder / f"current-{rows}.parquet"
    _frames(rows, 1, 0.0).to_parquet(reference)
    _frames(rows, 2, 5.0).to_parquet(current)

    start = time.perf_counter()
    for path in (reference, current):
        pd.read_parquet(path).describe(include="all")
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    result = run_monitor(pd.read_parquet(reference), pd.read_parquet(current), max_rows=max_rows, seed=42)
    monitor = time.perf_counter() - start
    drifted = sorted(c for c, s in result["scores"].items() if s["drifted"])
    return {"rows": rows, "baseline_s": baseline, "monitor_s": monitor, "rows_per_s": 2 * rows / monitor,
            "baseline_rows_per_s": 2 * rows / baseline, "ratio": monitor / baseline, "sampled": result["sampled"],
            "drifted": drifted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--max-rows", type=int, default=200_000)
    args = parser.parse_args(argv)
    import evidently  # noqa: F401

    from hera_flows.steps.drift.monitor import drift_scores  # noqa: F401 - warm the evidently import first

    with tempfile.TemporaryDirectory(prefix="hf-bench-drift-") as scratch:
        print(f"drift monitor (Evidently DataDriftPreset, 5 columns, sampling to {args.max_rows} rows per side); "
              "rows/s counts reference + current rows")
        print(f"{'rows':>9} {'baseline s':>11} {'monitor s':>10} {'monitor rows/s':>15} {'baseline rows/s':>16} "
              f"{'x baseline':>10} sampled")
        for rows in (int(r) for r in args.rows.split(",")):
            r = measure(rows, args.max_rows, Path(scratch))
            print(f"{r['rows']:>9} {r['baseline_s']:>11.2f} {r['monitor_s']:>10.2f} {r['rows_per_s']:>15,.0f} "
                  f"{r['baseline_rows_per_s']:>16,.0f} {r['ratio']:>10.1f} {r['sampled']}  drifted={r['drifted']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
