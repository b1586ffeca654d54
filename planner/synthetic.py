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


@dataclass(frozen=True)
class MeetingKind:
    """One kind of meeting of a known-truth pool: size range, audio shares, webcams."""

    weight: float
    size: tuple[int, int]  # participants, inclusive
    voice_share: float = 0.3
    listener_share: float = 0.7
    webcams: tuple[int, int] = (0, 0)  # inclusive, capped at the size


def draw_meetings(kinds: Sequence[MeetingKind], count: int, rng: np.random.Generator) -> dict:
    """``count`` meetings of the mixture: participants, voice, listeners, video, fanout."""
    weights = np.array([k.weight for k in kinds], dtype=float)
    which = rng.choice(len(kinds), size=count, p=weights / weights.sum())
    low = np.array([k.size[0] for k in kinds])[which]
    high = np.array([k.size[1] for k in kinds])[which]
    n = rng.integers(low, high + 1).astype(float)
    voice = np.round(n * np.array([k.voice_share for k in kinds])[which])
    listeners = np.minimum(
        np.round(n * np.array([k.listener_share for k in kinds])[which]), n - voice
    )
    cam_low = np.array([k.webcams[0] for k in kinds])[which]
    cam_high = np.array([k.webcams[1] for k in kinds])[which]
    video = np.minimum(rng.integers(cam_low, cam_high + 1), n).astype(float)
    return {
        "participants": n,
        "voice": voice,
        "listeners": listeners,
        "video": video,
        "fanout": video * np.maximum(n - 1, 0),
    }


def meeting_history(
    kinds: Sequence[MeetingKind],
    *,
    nodes: int = 8,
    days: int = 7,
    meetings_per_node: float = 6.0,
    start: str = "2026-09-07",
    seed: int = 1,
    cpu_count: float = 8.0,
    link_bytes_per_second: float = 62.5e6,
    truth: Truth = Truth(),
) -> pd.DataFrame:
    """Per node per 5-minute step rows whose meetings are drawn from ``kinds`` (known truth).

    Busy 8–18 UTC on weekdays: Poisson(``meetings_per_node`` × level) meetings per node
    step, each drawn independently, aggregated as the exporter records them (sums and the
    largest meeting only).
    """
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=days * 288, freq="5min", tz="UTC")
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60
    shape = np.clip(np.sin((hours - 7) / 12 * np.pi), 0, None) ** 1.5
    level = np.where(index.weekday.to_numpy() < 5, shape, 0.15 * shape)
    frames = []
    for number in range(1, nodes + 1):
        count = rng.poisson(meetings_per_node * level)
        drawn = draw_meetings(kinds, int(count.sum()), rng)
        row = np.repeat(np.arange(len(index)), count)

        def total(values: np.ndarray) -> np.ndarray:
            return np.bincount(row, values, minlength=len(index))  # noqa: B023

        largest = np.zeros(len(index))
        np.maximum.at(largest, row, drawn["participants"])
        voice, listeners, fanout = (
            total(drawn["voice"]),
            total(drawn["listeners"]),
            total(drawn["fanout"]),
        )
        cores = truth.cpu_base + truth.cpu_voice * voice + truth.cpu_listener * listeners
        cores = np.minimum(cores + truth.cpu_fanout * fanout, cpu_count)
        tx = truth.tx_voice * voice + truth.tx_listener * listeners + truth.tx_fanout * fanout
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": index,
                    "node": f"bbb-{number:02d}",
                    "kind": "bbb",
                    "meetings": count.astype(float),
                    "breakout_rooms": 0.0,
                    "participants": total(drawn["participants"]),
                    "moderators": count.astype(float),
                    "listeners": listeners,
                    "voice_participants": voice,
                    "video_participants": total(drawn["video"]),
                    "participants_max": largest,
                    "video_fanout": fanout,
                    "cpu_count": cpu_count,
                    "cpu_seconds_total": np.cumsum(cores * 300.0),
                    "transmit_bytes_total": np.cumsum((tx + 2e4) * 300.0),
                    "receive_bytes_total": np.cumsum(tx * 0.2 * 300.0),
                    "link_capacity_bytes_per_second": link_bytes_per_second,
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)[list(HISTORY_COLUMNS)]
    return frame.sort_values(["node", "timestamp"], kind="stable").reset_index(drop=True)


def true_servers(
    kinds: Sequence[MeetingKind],
    demand: float,
    caps: dict[str, float],
    model,
    what_if,
    trials: int = 1000,
    seed: int = 99,
    start: int = 1,
) -> int:
    """The known truth for a pool of ``kinds``: servers least-pressure placement needs.

    Fresh meetings from the true mixture (not a history) fill ``demand`` participants per
    trial and are placed one by one on the node of least max(load ÷ target); the answer is
    the smallest N from ``start`` up whose placements pass a target in at most 1 % of
    ``trials`` (and, with ``redundancy`` nodes lost, a failure target). A plain reference,
    written apart from planner/packing.py, for tests and bench.
    """
    rng = np.random.default_rng(seed)
    target = np.array([what_if.headroom(k) * caps[k] for k in ("participants", "cpu", "transmit")])
    failure = np.array([what_if.failure(k) * caps[k] for k in ("participants", "cpu", "transmit")])
    per_trial = int(demand / min(k.size[0] for k in kinds)) + 5
    m = draw_meetings(kinds, trials * per_trial, rng)
    fanout = np.minimum(m["fanout"], m["participants"] * what_if.cameras_per_viewer)
    cost = np.stack(
        [
            m["participants"],
            model.cpu(m["voice"], m["listeners"], fanout) - model.cpu.intercept,
            model.transmit(m["voice"], m["listeners"], fanout) - model.transmit.intercept,
        ],
        axis=1,
    ).reshape(trials, per_trial, 3)
    people = cost[..., 0]
    cost = cost * ((np.cumsum(people, axis=1) - people) < demand)[..., None]

    def share_over(nodes, limit):
        if nodes <= 0:
            return 1.0
        load = np.zeros((trials, nodes, 3))
        rows = np.arange(trials)
        for j in range(per_trial):
            if not cost[:, j].any():
                break
            least = (load / target).max(axis=2).argmin(axis=1)
            load[rows, least] += cost[:, j]
        return float((load > limit * (1 + 1e-9)).any(axis=(1, 2)).mean())

    n = start
    while not (
        share_over(n, target) <= 0.01
        and (what_if.redundancy == 0 or share_over(n - what_if.redundancy, failure) <= 0.01)
    ):
        n += 1
    return n
