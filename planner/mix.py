"""The pool's demand mix and typical node, from per-node history (pure).

What sizing needs besides the forecast: per-participant shares at busy instants, the
shares inside the largest meetings, and one node's capacity.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from confscale.planner.packing import MeetingTable
from confscale.planner.placement import PressureTargets
from confscale.planner.sizing import DemandMix, NodeCapacity


def demand_mix(pool: pd.DataFrame, busy_share: float = 0.5, weeks: int = 4) -> DemandMix:
    """Per-participant shares at busy instants of the last ``weeks`` weeks."""
    if pool.empty or not (pool["participants"] > 0).any():
        return DemandMix()
    recent = pool[pool.index >= pool.index[-1] - pd.Timedelta(weeks=weeks)]
    busy = recent[recent["participants"] >= busy_share * recent["participants"].max()]
    people = float(busy["participants"].sum())
    meetings = float(busy["meetings"].sum()) if "meetings" in busy else 0.0
    return DemandMix(
        voice_per_participant=float(busy["voice_participants"].sum()) / people,
        listeners_per_participant=float(busy["listeners"].sum()) / people,
        fanout_per_participant=float(busy["video_fanout"].sum()) / people,
        webcam_share=float(busy["video_participants"].sum()) / people,
        mean_meeting_size=people / meetings if meetings else DemandMix().mean_meeting_size,
        largest_meeting=float(recent["participants_max"].max()),
    )


def with_largest_meeting_shares(mix: DemandMix, frame: pd.DataFrame) -> DemandMix:
    """Audio and webcam shares inside the largest meetings.

    Taken from node steps that one big meeting dominates (its largest meeting is ≥ 80 %
    of the node's participants and ≥ half the largest meeting seen).
    """
    if frame.empty or mix.largest_meeting <= 0:
        return mix
    largest = frame["participants_max"].to_numpy(dtype=float)
    people_here = frame["participants"].to_numpy(dtype=float)
    dominated = (
        (largest >= 0.5 * mix.largest_meeting) & (largest >= 0.8 * people_here) & (people_here > 0)
    )  # the rows first, then the columns: no copy of six columns of every row
    big = frame.loc[
        dominated,
        [
            "participants",
            "participants_max",
            "voice_participants",
            "listeners",
            "video_participants",
            "video_fanout",
        ],
    ]
    people = float(big["participants"].sum())
    if people <= 0:
        return mix
    return replace(
        mix,
        largest_voice_share=float(big["voice_participants"].sum()) / people,
        largest_listener_share=float(big["listeners"].sum()) / people,
        largest_webcam_share=float(big["video_participants"].sum()) / people,
        largest_fanout_per_participant=float(big["video_fanout"].sum()) / people,
    )


def node_capacity(frame: pd.DataFrame, targets: PressureTargets) -> NodeCapacity:
    """Typical node: median CPUs and link capacity of the nodes' last rows."""
    if frame.empty:
        return NodeCapacity(participants=targets.participants)
    last = frame.drop_duplicates("node", keep="last")  # groupby-tail: 8x slower on 5 M rows
    cpus = float(last["cpu_count"].median())
    link = float(last["link_capacity_bytes_per_second"].median())
    return NodeCapacity(
        participants=targets.participants,
        cpu_cores=cpus if cpus > 0 else NodeCapacity().cpu_cores,
        link_bytes_per_second=link if link > 0 else NodeCapacity().link_bytes_per_second,
    )


def meeting_table(
    frame: pd.DataFrame,
    pool: pd.DataFrame,
    busy_share: float = 0.5,
    weeks: int = 4,
    max_rows: int = 4000,
) -> MeetingTable | None:
    """The pool's meetings at the busy instants :func:`demand_mix` uses (None: none seen).

    Per node step (meetings m, participants p, largest meeting x): one meeting of x and
    m − 1 of the remaining p − x shared out in whole participants; each gets the step's
    audio and listener shares and webcams in proportion to its size, fan-out W·(n − 1)
    scaled to the step's recorded total. At most ``max_rows`` evenly spaced steps.
    """
    if frame.empty or pool.empty or not (pool["participants"] > 0).any():
        return None
    recent = pool[pool.index >= pool.index[-1] - pd.Timedelta(weeks=weeks)]
    busy = recent.index[recent["participants"] >= busy_share * recent["participants"].max()]
    rows = frame[
        frame["timestamp"].isin(busy) & (frame["participants"] > 0) & (frame["meetings"] >= 1)
    ]
    if rows.empty:
        return None
    if len(rows) > max_rows:
        rows = rows.iloc[np.linspace(0, len(rows) - 1, max_rows).round().astype(int)]
    p = rows["participants"].to_numpy(float).round()
    m = np.maximum(rows["meetings"].to_numpy(float).round(), 1).astype(int)
    big = np.clip(rows["participants_max"].to_numpy(float).round(), 1, p)
    big = np.where(m == 1, p, big)  # one meeting holds everyone
    rest, others = p - big, m - 1
    m = np.where((rest > 0) | (others == 0), m, 1)  # no one left for the others
    others = m - 1
    row = np.repeat(np.arange(len(p)), m)
    first = np.r_[0, np.cumsum(m)[:-1]]
    rank = np.arange(row.size) - np.repeat(first, m)  # 0 = the largest meeting
    base = np.floor_divide(rest, np.maximum(others, 1))
    extra = rest - base * np.maximum(others, 1)
    size = np.where(rank == 0, big[row], base[row] + ((rank - 1) < extra[row]).astype(float))
    keep = size > 0
    row, size = row[keep], size[keep]
    share = lambda column: (rows[column].to_numpy(float) / p)[row]  # noqa: E731
    webcams = share("video_participants") * size
    raw = webcams * np.maximum(size - 1, 0)
    recorded = rows["video_fanout"].to_numpy(float)
    raw_total = np.bincount(row, raw, minlength=len(p))
    scale = np.divide(recorded, raw_total, out=np.zeros(len(p)), where=raw_total > 0)
    fallback = np.divide(recorded, p, out=np.zeros(len(p)), where=raw_total <= 0)
    fanout = np.where(raw_total[row] > 0, raw * scale[row], size * fallback[row])
    people = float(p.sum())
    return MeetingTable(
        participants=size,
        voice=share("voice_participants") * size,
        listeners=share("listeners") * size,
        fanout=fanout,
        webcam_share=float(rows["video_participants"].sum()) / people if people else 0.0,
    )
