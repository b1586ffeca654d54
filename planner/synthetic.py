"""Small synthetic pool histories (file format of docs/contracts.md) for tests and bench.

Not a simulator: a vectorised generator with a known truth (term/holiday levels, growth,
per-user costs), so fits and forecasts can be checked against it. The real pool
simulator lives in ``simulator/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from confscale.planner.history import HISTORY_COLUMNS


@dataclass(frozen=True)
class Truth:
    """The generator's cost model (what a fit should find)."""

    cpu_base: float = 0.4  # cores
    cpu_voice: float = 0.03
    cpu_listener: float = 0.012
    cpu_fanout: float = 0.002
    tx_voice: float = 6250.0  # bytes/s
    tx_listener: float = 6250.0
    tx_fanout: float = 31250.0


def synthetic_history(
    *,
    nodes: int = 10,
    weeks: int = 8,
    start: str = "2026-09-07",
    seed: int = 1,
    peak_per_node: float = 120.0,
    holidays: Sequence[tuple[dt.date, dt.date]] = (),
    holiday_factor: float = 1 / 7,
    weekly_growth: float = 1.0,
    webcam_share: float = 0.1,
    meeting_size: float = 15.0,
    noise: float = 0.1,
    step_minutes: int = 5,
    truth: Truth = Truth(),
) -> pd.DataFrame:
    """Per node per step rows, busy on weekdays 8–18 UTC, quieter evenings and weekends."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(
        start, periods=weeks * 7 * 24 * 60 // step_minutes, freq=f"{step_minutes}min", tz="UTC"
    )
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60
    weekday = index.weekday.to_numpy() < 5
    shape = np.clip(np.sin((hours - 7) / 12 * np.pi), 0, None) ** 1.5
    level = np.where(weekday, 0.03 + shape, 0.03 + 0.15 * shape)
    days = index.date
    for first, last in holidays:
        level = np.where((days >= first) & (days <= last), level * holiday_factor, level)
    level = level * weekly_growth ** (np.arange(len(index)) / (7 * 24 * 60 / step_minutes))
    frames = []
    step_seconds = step_minutes * 60.0
    for number in range(1, nodes + 1):
        scale = peak_per_node * rng.uniform(0.7, 1.3)
        people = np.round(level * scale * rng.lognormal(0, noise, len(index)))
        meetings = np.ceil(people / meeting_size)
        voice = np.round(people * 0.3)
        listeners = people - voice
        cameras = np.round(people * webcam_share)
        size = np.minimum(people, meeting_size)
        fanout = cameras * np.maximum(size - 1, 0)
        cores = (
            truth.cpu_base
            + truth.cpu_voice * voice
            + truth.cpu_listener * listeners
            + truth.cpu_fanout * fanout
        ) * rng.uniform(0.9, 1.0, len(index))
        tx = (
            truth.tx_voice * voice + truth.tx_listener * listeners + truth.tx_fanout * fanout
        ) * rng.uniform(0.85, 1.0, len(index)) + 2e4
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": index,
                    "node": f"bbb-{number:02d}",
                    "kind": "bbb",
                    "meetings": meetings,
                    "breakout_rooms": 0.0,
                    "participants": people,
                    "moderators": meetings,
                    "listeners": listeners,
                    "voice_participants": voice,
                    "video_participants": cameras,
                    "participants_max": np.minimum(people, 2 * size),
                    "video_fanout": fanout,
                    "cpu_count": 8.0,
                    "cpu_seconds_total": np.cumsum(np.minimum(cores, 8.0) * step_seconds),
                    "transmit_bytes_total": np.cumsum(tx * step_seconds),
                    "receive_bytes_total": np.cumsum(tx * 0.2 * step_seconds),
                    "link_capacity_bytes_per_second": 62.5e6,
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)[list(HISTORY_COLUMNS)]
    return frame.sort_values(["node", "timestamp"], kind="stable").reset_index(drop=True)
