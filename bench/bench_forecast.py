"""The forecast on public hourly series shipped in packages: MASE and band coverage.

For each series of :mod:`planner.public_series` (``pip install -e '.[bench]'``): the
planner's own rolling-origin backtest (warm-up 4 weeks, horizon 336 h, origins daily),
every candidate's MASE and 80/95 % coverage, the method chosen per lead-time bucket, and
the forecast the planner *uses* (the chosen method per bucket, n-weighted) against
seasonal naive in the same run.

    nice .venv/bin/python -m bench.bench_forecast
"""

from __future__ import annotations

import time

import numpy as np
from confscale.planner.backtest import rolling_origin
from confscale.planner.forecast import WEEK_HOURS, ForecastConfig
from confscale.planner.public_series import public_series


def always_term(index) -> np.ndarray:
    return np.full(len(index), "term", dtype=object)


def used_figures(table):
    """n-weighted MASE and coverage of the chosen rows and of seasonal naive's."""

    def weighted(rows):
        n = rows["n"].astype(float)
        return {
            c: float((rows[c] * n).sum() / n.sum()) for c in ("mase", "coverage_80", "coverage_95")
        }

    return weighted(table[table["chosen"]]), weighted(table[table["method"] == "seasonal_naive"])


def main() -> None:
    series = public_series()
    if not series:
        raise SystemExit("no public series installed: pip install -e '.[bench]'")
    print(f"{'series':22} {'hours':>5} {'used MASE':>9} {'naive':>6} {'ratio':>6} "
          f"{'cov80':>6} {'cov95':>6}  chosen per bucket; seconds")  # fmt: skip
    for name, values in series.items():
        started = time.perf_counter()
        result = rolling_origin(
            values, always_term, 2 * WEEK_HOURS, ForecastConfig(), warmup_hours=4 * WEEK_HOURS
        )
        took = time.perf_counter() - started
        used, naive = used_figures(result.horizon_table())
        print(
            f"{name:22} {int(values.notna().sum()):>5} {used['mase']:>9.3f} {naive['mase']:>6.3f} "
            f"{used['mase'] / naive['mase']:>6.3f} {used['coverage_80']:>6.3f} "
            f"{used['coverage_95']:>6.3f}  {result.method_by_bucket}; {took:.0f} s",
            flush=True,
        )
        for method, row in result.table().iterrows():
            print(
                f"    {method:16} MASE {row['mase']:.3f}  coverage {row['coverage_80']:.3f} / "
                f"{row['coverage_95']:.3f}"
            )


if __name__ == "__main__":
    main()
