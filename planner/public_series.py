"""Public hourly series that ship inside PyPI packages, for the forecast bench and tests.

Nothing is downloaded: each loader reads a file installed with its package and raises
ImportError when the package is not installed (``pip install -e '.[bench]'``).

- ``taylor``: half-hourly electricity demand of England and Wales, 5 June – 27 August
  2000 (Taylor 2003), shipped by ``pmdarima`` (``pmdarima.datasets.load_taylor``); as
  hourly maxima. Strong daily and weekly cycles.
- ``seattle-spring`` / ``sf-autumn``: hourly temperature normals of 2010 shipped by
  ``vega_datasets`` (``seattle-temps.csv``, ``sf-temps.csv``): a daily cycle on a smooth
  level that moves week by week (a trend), no weekly cycle.
- ``*-gaps``: the same with gaps cut out (three single days and one 5-day outage), as a
  pool whose monitoring was down.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd


def taylor() -> pd.Series:
    from pmdarima.datasets import load_taylor

    values = np.asarray(load_taylor(as_series=True), dtype=float)
    index = pd.date_range("2000-06-05", periods=len(values), freq="30min", tz="UTC")
    return pd.Series(values, index).resample("1h").max()


def vega_temperatures(name: str) -> pd.Series:
    import vega_datasets

    path = resources.files(vega_datasets) / "_data" / f"{name}.csv"
    frame = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(frame["date"], format="mixed")).tz_localize("UTC")
    return pd.Series(frame["temp"].to_numpy(dtype=float), index).resample("1h").max()


def with_gaps(series: pd.Series) -> pd.Series:
    """``series`` with three single days and one 5-day stretch removed (NaN)."""
    out = series.copy()
    start = out.index[0].normalize()
    for day, length in ((16, 1), (30, 1), (44, 5), (58, 1)):
        first = start + pd.Timedelta(days=day)
        out[first : first + pd.Timedelta(days=length) - pd.Timedelta(hours=1)] = np.nan
    return out


def public_series() -> dict[str, pd.Series]:
    """Every series whose package is installed, by name."""
    out: dict[str, pd.Series] = {}
    try:
        out["taylor"] = taylor()
        out["taylor-gaps"] = with_gaps(out["taylor"])
    except ImportError:
        pass
    try:
        seattle = vega_temperatures("seattle-temps")
        out["seattle-spring"] = seattle["2010-03-01":"2010-05-31"]
        out["sf-autumn"] = vega_temperatures("sf-temps")["2010-09-01":"2010-11-30"]
        out["seattle-winter-gaps"] = with_gaps(seattle["2010-01-04":"2010-03-31"])
    except ImportError:
        pass
    return out
