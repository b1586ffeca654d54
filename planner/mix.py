"""The pool's demand mix and typical node, from per-node history (pure).

What sizing needs besides the forecast: per-participant shares at busy instants, the
shares inside the largest meetings, and one node's capacity.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
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
    shares = frame[
        [
            "participants",
            "participants_max",
            "voice_participants",
            "listeners",
            "video_participants",
            "video_fanout",
        ]
    ]
    big = shares[
        (shares["participants_max"] >= 0.5 * mix.largest_meeting)
        & (shares["participants_max"] >= 0.8 * shares["participants"])
        & (shares["participants"] > 0)
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
    last = frame.groupby("node").tail(1)
    cpus = float(last["cpu_count"].median())
    link = float(last["link_capacity_bytes_per_second"].median())
    return NodeCapacity(
        participants=targets.participants,
        cpu_cores=cpus if cpus > 0 else NodeCapacity().cpu_cores,
        link_bytes_per_second=link if link > 0 else NodeCapacity().link_bytes_per_second,
    )
