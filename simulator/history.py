"""``confscale-sim history``: the load model as 5-minute samples per node.

Same meetings and rates as the live server (simulator.model); counters are the same exact
integrals, computed for all steps of a node at once with numpy instead of step by step.
Formats: CSV / CSV.gz / Parquet (columns in docs/contracts.md) and OpenMetrics text for
``promtool tsdb create-blocks-from openmetrics``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from confscale.exporter import contract as c
from confscale.exporter.contract import BBB_METRICS, JITSI_HISTORY_GAUGES
from confscale.simulator import jvb, model, node
from confscale.simulator.pool import node_names
from confscale.simulator.terms import CalendarError, TermCalendar, load_calendar

from confscale.flags import new_parser, parse_command

STEP = 300.0
COLUMNS = (
    "timestamp", "node", "kind", "meetings", "breakout_rooms", "participants", "moderators",
    "listeners", "voice_participants", "video_participants", "participants_max",
    "video_fanout", "cpu_count", "cpu_seconds_total", "transmit_bytes_total",
    "receive_bytes_total", "link_capacity_bytes_per_second", "jitsi_stress",
)  # fmt: skip
GAUGES = BBB_METRICS  # column -> metric of the contract (docs/design.md §2)
JITSI_GAUGES = JITSI_HISTORY_GAUGES  # history column -> the contract's Jitsi gauge


def node_history(
    name: str, kind: str, seed: int, calendar: TermCalendar, grid: np.ndarray
) -> dict[str, np.ndarray]:
    """Columns for one node at the instants of ``grid`` (epoch seconds, ascending)."""
    start, end = float(grid[0]), float(grid[-1])
    meetings = [
        m
        for day in range(model.day_index(start) - 1, model.day_index(end) + 1)
        for m in model.day_meetings(seed, name, day, calendar)
        if m.start <= end and m.end > start
    ]
    n = len(grid)
    out: dict[str, np.ndarray] = {}

    # gauges: meetings active at g when start <= g < end
    m_start = np.array([m.start for m in meetings], dtype=float)
    m_end = np.array([m.end for m in meetings], dtype=float)
    m_lo, m_hi = np.searchsorted(grid, m_start), np.searchsorted(grid, m_end)
    out["meetings"] = _step_sum(n, m_lo, m_hi, np.ones(len(meetings)))
    out["breakout_rooms"] = _step_sum(
        n, m_lo, m_hi, np.array([float(m.is_breakout) for m in meetings])
    )
    segments = [s for m in meetings for s in m.segments]
    s_start = np.array([s.start for s in segments], dtype=float)
    s_end = np.array([s.end for s in segments], dtype=float)
    lo, hi = np.searchsorted(grid, s_start), np.searchsorted(grid, s_end)
    fields = {
        "participants": lambda a: a.participants,
        "moderators": lambda a: a.moderators,
        "listeners": lambda a: a.listeners,
        "voice_participants": lambda a: a.voice,
        "video_participants": lambda a: a.video,
        "video_fanout": lambda a: a.fanout,
    }
    for column, get in fields.items():
        values = np.array([get(s.attendance) for s in segments], dtype=float)
        out[column] = _step_sum(n, lo, hi, values)
    largest = np.zeros(n)
    for first, last, s in zip(lo, hi, segments, strict=True):
        if last > first:
            np.maximum(largest[first:last], s.attendance.participants, out=largest[first:last])
    out["participants_max"] = largest
    for column in out:
        out[column] = out[column].round().astype(np.int64)
    out["jitsi_stress"] = (
        _step_sum(n, lo, hi, np.array([segment_stress(s.attendance) for s in segments]))
        if kind == "jitsi" and segments
        else np.zeros(n)
    ).round(4)

    # counters: exact integrals of the piecewise-constant rates, from the node's boot values
    boot = node.NodeState(name, kind, seed=seed, calendar=calendar, origin=start).snapshot(start)
    cpu = np.array([s.attendance.busy_cores() for s in segments], dtype=float)
    tx = np.array([s.attendance.tx_bytes_per_second() for s in segments], dtype=float)
    rx = np.array([s.attendance.rx_bytes_per_second() for s in segments], dtype=float)
    clip_lo, clip_hi = np.clip(s_start, start, end), np.clip(s_end, start, end)
    times = np.concatenate([clip_lo, clip_hi, grid])
    order = np.argsort(times, kind="stable")
    times = times[order]
    zeros = np.zeros(n)

    def integral(rates: np.ndarray, base: float, cap: float = np.inf) -> np.ndarray:
        deltas = np.concatenate([rates, -rates, zeros])[order]
        level = np.minimum(base + np.maximum(np.cumsum(deltas), 0.0), cap)
        pieces = level[:-1] * np.diff(times)
        total = np.concatenate([[0.0], np.cumsum(pieces)])
        return total[np.searchsorted(times, grid)]

    cpu_count = boot.cpu_count
    busy = integral(cpu, model.CPU_NODE_BASE, model.CPU_MAX_BUSY * cpu_count)
    out["cpu_count"] = np.full(n, cpu_count, dtype=np.int64)
    out["cpu_seconds_total"] = boot.busy + busy
    out["cpu_idle_seconds_total"] = (
        boot.cpu_count * (boot.uptime + grid - start) - out["cpu_seconds_total"]
    )
    out["transmit_bytes_total"] = np.floor(boot.tx + integral(tx, node.TX_BASE_BYTES))
    out["receive_bytes_total"] = np.floor(boot.rx + integral(rx, node.RX_BASE_BYTES))
    out["link_capacity_bytes_per_second"] = np.full(n, model.LINK_CAPACITY_BYTES)
    return out


def segment_stress(attendance: model.Attendance) -> float:
    """The JVB stress one conference adds (simulator.jvb's packet-rate formula, no fault):
    stress is linear in the streams, so a bridge's stress is the sum over its conferences."""
    tx = node.TX_BASE_BYTES + attendance.tx_bytes_per_second()
    up, down = jvb.packet_rates([attendance], tx)
    return (up + down) / jvb.JVB_PACKET_RATE_LOAD_THRESHOLD


def time_grid(end: float, weeks: float, step: float = STEP) -> np.ndarray:
    """Sample instants: ``weeks`` of ``step``-second steps ending at ``end`` (rounded down)."""
    last = np.floor(end / step) * step
    count = max(round(weeks * 7 * model.DAY / step), 1)
    return last - step * np.arange(count - 1, -1, -1, dtype=float)


def pool_nodes(nodes: int, jitsi: int) -> list[tuple[str, str]]:
    """(name, kind) of the pool's nodes, BBB first (same names as the live server)."""
    names = [(n, "bbb") for n in node_names("bbb", nodes)] if nodes else []
    return names + ([(n, "jitsi") for n in node_names("jvb", jitsi)] if jitsi else [])


def _step_sum(n: int, lo: np.ndarray, hi: np.ndarray, values: np.ndarray) -> np.ndarray:
    diff = np.zeros(n + 1)
    np.add.at(diff, lo, values)
    np.add.at(diff, hi, -values)
    return np.cumsum(diff[:-1])


def history_frame(
    *,
    nodes: int,
    jitsi: int,
    seed: int,
    end: float,
    weeks: float,
    calendar: TermCalendar | None = None,
    step: float = STEP,
) -> pd.DataFrame:
    """The tabular history (docs/contracts.md), one row per node per step."""
    calendar = calendar or TermCalendar()
    grid = time_grid(end, weeks, step)
    frames = []
    for name, kind in pool_nodes(nodes, jitsi):
        columns = node_history(name, kind, seed, calendar, grid)
        columns.pop("cpu_idle_seconds_total")
        frame = pd.DataFrame(columns)
        for column in ("transmit_bytes_total", "receive_bytes_total"):
            frame[column] = frame[column].astype(np.int64)
        frame.insert(0, "kind", kind)
        frame.insert(0, "node", name)
        frame.insert(0, "timestamp", pd.to_datetime(grid, unit="s", utc=True))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def write_tabular(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return
    text = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    text.to_csv(path, index=False, compression="infer", float_format="%.3f")


def openmetrics_lines(
    *,
    nodes: int,
    jitsi: int,
    seed: int,
    end: float,
    weeks: float,
    calendar: TermCalendar | None = None,
    step: float = STEP,
    pool: str = "sim",
) -> Iterator[str]:
    """OpenMetrics text, family by family, series by series, ending in ``# EOF``."""
    calendar = calendar or TermCalendar()
    grid = time_grid(end, weeks, step)
    stamps = [f"{t:.0f}" for t in grid]
    names = pool_nodes(nodes, jitsi)
    data = {name: node_history(name, kind, seed, calendar, grid) for name, kind in names}
    kinds = dict(names)
    common = f'job="confscale",pool="{pool}"'

    def series(metric: str, labels: str, values: np.ndarray, fmt: str) -> Iterator[str]:
        for stamp, value in zip(stamps, values, strict=True):
            yield f"{metric}{{{labels}}} {value:{fmt}} {stamp}\n"

    gauge_sets = (("bbb", GAUGES), ("jitsi", JITSI_GAUGES))
    for kind, gauges in gauge_sets:
        for column, metric in gauges.items():
            targets = [n for n in data if kinds[n] == kind]
            if not targets:
                continue
            yield f"# TYPE {metric} gauge\n"
            for name in targets:
                fmt = ".4f" if column == "jitsi_stress" else "d"
                yield from series(metric, f'{common},node="{name}"', data[name][column], fmt)
    yield f"# TYPE {c.CPU_SECONDS.name} counter\n"
    for name, columns in data.items():
        busy, idle = columns["cpu_seconds_total"], columns["cpu_idle_seconds_total"]
        yield from series(c.CPU_SECONDS.sample, f'{common},mode="idle",node="{name}"', idle, ".3f")
        for mode, share in node.CPU_MODE_SHARES.items():
            yield from series(
                c.CPU_SECONDS.sample,
                f'{common},mode="{mode}",node="{name}"',
                busy * share,
                ".3f",
            )
    for family, column, fmt in (
        (c.CPU_COUNT, "cpu_count", "d"),
        (c.TRANSMIT_BYTES, "transmit_bytes_total", ".0f"),
        (c.RECEIVE_BYTES, "receive_bytes_total", ".0f"),
        (c.LINK_CAPACITY, "link_capacity_bytes_per_second", ".1f"),
    ):
        yield f"# TYPE {family.name} {family.type}\n"
        for name, columns in data.items():
            yield from series(family.sample, f'{common},node="{name}"', columns[column], fmt)
    yield f"# TYPE {c.NODE_UP.name} gauge\n"
    for name in data:
        source = "bbb" if kinds[name] == "bbb" else "jitsi"
        for src in (source, "host"):
            yield from series(
                c.NODE_UP.name,
                f'{common},node="{name}",source="{src}"',
                np.ones(len(grid), dtype=np.int64),
                "d",
            )
    yield "# EOF\n"


def detect_format(path: Path, given: str | None) -> str:
    if given:
        return given
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".om", ".txt")):
        return "openmetrics"
    raise ValueError(
        f"{path}: cannot tell the format from the suffix; use --output.format "
        "csv|parquet|openmetrics (or name it .csv, .csv.gz, .parquet, .om, .txt)"
    )


def parser() -> argparse.ArgumentParser:
    from confscale.simulator.cli import parse_time

    p = new_parser(
        "confscale-sim history", description="Write the load model as a 5-minute history."
    )
    p.add_argument("--history.weeks", dest="weeks", type=float, default=12.0)
    p.add_argument("--pool.nodes", dest="nodes", type=int, default=20)
    p.add_argument("--pool.jitsi", dest="jitsi", type=int, default=0)
    p.add_argument("--model.seed", dest="seed", type=int, default=1)
    p.add_argument(
        "--history.end",
        dest="end",
        type=parse_time,
        default=None,
        help="last sample, ISO 8601 (default: now)",
    )
    p.add_argument("--output.file", dest="out", type=Path, required=True)
    p.add_argument("--output.format", dest="format", choices=("csv", "parquet", "openmetrics"))
    p.add_argument("--model.term-calendar", dest="term_calendar", type=Path, metavar="FILE")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from confscale.simulator.cli import RENAMED

    p = parser()
    args = parse_command(p, argv, RENAMED)
    if args.weeks <= 0 or args.nodes < 0 or args.jitsi < 0 or args.nodes + args.jitsi == 0:
        p.error("--history.weeks must be > 0 and the pool needs at least one node")
    try:
        fmt = detect_format(args.out, args.format)
        calendar = load_calendar(args.term_calendar) if args.term_calendar else TermCalendar()
    except (ValueError, CalendarError) as exc:
        p.error(str(exc))
    end = args.end if args.end is not None else time.time()
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "nodes": args.nodes,
        "jitsi": args.jitsi,
        "seed": args.seed,
        "end": end,
        "weeks": args.weeks,
        "calendar": calendar,
    }
    if fmt == "openmetrics":
        with args.out.open("w") as handle:
            _write_lines(handle, openmetrics_lines(**options))
    else:
        write_tabular(history_frame(**options), args.out, fmt)
    stamp = dt.datetime.fromtimestamp(end, dt.UTC).isoformat()
    print(
        f"wrote {args.out} ({fmt}, {args.weeks:g} weeks to {stamp}) "
        f"in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    return 0


def _write_lines(handle: IO[str], lines: Iterator[str]) -> None:
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= 10_000:
            handle.write("".join(buffer))
            buffer.clear()
    handle.write("".join(buffer))
