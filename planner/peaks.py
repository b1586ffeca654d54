"""5-minute peaks per node, pool totals, hourly peaks: what forecasts and fits consume.

Fits and forecasts never see raw 1-minute data: finer samples are reduced to their
5-minute maximum first (counters: the last value of the step).
"""

from __future__ import annotations

import pandas as pd
from confscale.exporter.contract import BBB_FIELDS

GAUGE_COLUMNS: tuple[str, ...] = (*BBB_FIELDS, "jitsi_stress")  # the contract's BBB figures
# Pool totals are sums over nodes of these per-node columns (where present).
POOL_SUM_COLUMNS: tuple[str, ...] = (
    "meetings",
    "participants",
    "listeners",
    "voice_participants",
    "video_participants",
    "video_fanout",
    "transmit_bytes_per_second",
    "receive_bytes_per_second",
    "cpu_busy_cores",
)
STEP = "5min"


def five_minute_peaks(frame: pd.DataFrame) -> pd.DataFrame:
    """Reduce per-node rows to one per node and 5-minute step (gauges: max; rest: last)."""
    step = frame["timestamp"].dt.floor(STEP)
    if (step == frame["timestamp"]).all():  # validated frames are unique per node and step
        return frame
    keyed = frame.assign(timestamp=step)
    # attrs may hold a Series (the pool's hourly peaks): pandas' groupby compares attrs
    # with == and fails on it, so aggregate without them and put them back.
    keyed.attrs = {}
    rules = {
        c: ("max" if c in GAUGE_COLUMNS else "last")
        for c in frame.columns
        if c not in ("node", "timestamp")
    }
    peaks = keyed.groupby(["node", "timestamp"], as_index=False, sort=True).agg(rules)
    peaks.attrs = dict(frame.attrs)
    return peaks


def pool_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Per 5-minute instant: sums over nodes, the largest meeting, nodes reporting."""
    columns = [c for c in POOL_SUM_COLUMNS if c in frame.columns]
    grouped = frame.groupby("timestamp", sort=True)
    totals = grouped[columns].sum(min_count=1)
    totals["participants_max"] = grouped["participants_max"].max()
    totals["nodes_reporting"] = grouped.size()  # rows are unique per node and step
    return totals


def hourly_peaks(series: pd.Series) -> pd.Series:
    """Maximum per UTC hour on a regular hourly index; hours without data are NaN."""
    if series.empty:
        return series.astype(float)
    index = series.index
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError("hourly_peaks needs a DatetimeIndex")
    return series.astype(float).resample("1h").max()
