"""One simulated node: the model's meetings, meetings made through the API, and counters.

Counters are integrated forward in simulated time over piecewise-constant load (meeting
segments, load faults), so ``/metrics`` and ``/_admin/truth`` agree exactly at any instant.
Everything here runs under the node's lock; the clock only moves forward.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from confscale.simulator import model
from confscale.simulator.model import Attendance, Meeting, Segment
from confscale.simulator.terms import TermCalendar

CPU_MODE_SHARES = MappingProxyType(
    {  # how busy time splits over node_exporter's modes
        "user": 0.62,
        "system": 0.24,
        "softirq": 0.08,
        "iowait": 0.02,
        "irq": 0.01,
        "nice": 0.02,
        "steal": 0.01,
    }
)
LO_BASE_BYTES = 20e3  # loopback chatter (redis, nginx, freeswitch) at rest
LO_SHARE_OF_TX = 0.25
TX_BASE_BYTES = 1.5e3
RX_BASE_BYTES = 2.5e3
DAY_CACHE = 6


@dataclass(frozen=True)
class LoadOverride:
    """A load fault: CPU busy share or uplink transmit rate forced over [start, end)."""

    mode: str  # cpu_high | link_saturated
    value: float
    start: float
    end: float = math.inf


@dataclass
class Counters:
    uptime: float  # seconds per CPU since boot
    busy: float  # busy CPU seconds summed over CPUs
    tx: float
    rx: float
    lo: float


@dataclass(frozen=True)
class Snapshot:
    """Counters of a node at one instant (what /metrics and truth show)."""

    cpu_count: int
    uptime: float
    busy: float
    tx: float
    rx: float
    lo: float

    def cpu_seconds(self) -> dict[str, float]:
        modes = {mode: self.busy * share for mode, share in CPU_MODE_SHARES.items()}
        return {"idle": self.cpu_count * self.uptime - self.busy, **modes}


class NodeState:
    """A node of the pool; created lazily, computes days of meetings on demand."""

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        seed: int,
        calendar: TermCalendar,
        origin: float,
        cpu_count: int = 8,
        scale: float = 1.0,
        counter_scale: float = 1.0,
    ) -> None:
        self.name = name
        self.kind = kind
        self.seed = seed
        self.calendar = calendar
        self.cpu_count = cpu_count
        self.scale = scale
        # counters grow by counter_scale × the load's integral over simulated time; with
        # 1/speed they grow at the load's rate per wall-clock second (--counters wall)
        self.counter_scale = counter_scale
        self.lock = threading.RLock()
        self.version = 0  # bumps on every API change (render caches key on it)
        self.render_cache: dict[str, tuple[object, bytes]] = {}
        self.fragments: dict[tuple[object, ...], str] = {}  # meeting XML across instants
        self._days: OrderedDict[int, list[Meeting]] = OrderedDict()
        self._api: dict[str, Meeting] = {}
        self._ended: dict[str, float] = {}
        self._overrides: list[LoadOverride] = []
        rng = random.Random(model.stable_seed(seed, name, "boot"))
        uptime = rng.uniform(2, 40) * model.DAY
        busy_share = rng.uniform(0.05, 0.12)
        self._last = origin
        self._counters = Counters(
            uptime=uptime,
            busy=uptime * cpu_count * busy_share,
            tx=uptime * rng.uniform(2e5, 2e6),
            rx=uptime * rng.uniform(1e5, 5e5),
            lo=uptime * rng.uniform(3e4, 1e5),
        )

    # --- meetings -----------------------------------------------------------------------

    def _day(self, day: int) -> list[Meeting]:
        cached = self._days.get(day)
        if cached is None:
            cached = model.day_meetings(self.seed, self.name, day, self.calendar, self.scale)
            self._days[day] = cached
            while len(self._days) > DAY_CACHE:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(day)
        return cached

    def meetings_between(self, a: float, b: float) -> list[Meeting]:
        """Meetings overlapping [a, b] (b inclusive), API ends and API meetings applied."""
        found = []
        first = model.day_index(a - model.MAX_MEETING_SECONDS)
        for day in range(first, model.day_index(b) + 1):
            found.extend(self._day(day))
        result = []
        for meeting in found:
            ended = self._ended.get(meeting.meeting_id)
            if ended is not None:
                meeting = truncate(meeting, ended)
            if meeting.start <= b and meeting.end > a:
                result.append(meeting)
        # API meetings are truncated in place when they end
        result.extend(m for m in self._api.values() if m.start <= b and m.end > a)
        return result

    def active(self, t: float) -> list[Meeting]:
        return [m for m in self.meetings_between(t, t) if m.active(t)]

    def find(self, t: float, meeting_id: str) -> Meeting | None:
        for meeting in self.active(t):
            if meeting.meeting_id == meeting_id:
                return meeting
        return None

    def put_api_meeting(self, t: float, meeting: Meeting) -> None:
        """Add or replace a meeting made through the API, effective from ``t``."""
        self.advance(t)
        self._api[meeting.meeting_id] = meeting
        self.version += 1

    def end_meeting(self, t: float, meeting: Meeting, *, breakouts: bool = True) -> None:
        """End a meeting (and, unless told otherwise, its breakout rooms) at ``t``."""
        self.advance(t)
        if meeting.meeting_id in self._api:
            self._api[meeting.meeting_id] = truncate(self._api[meeting.meeting_id], t)
        else:
            self._ended[meeting.meeting_id] = t
        for room in meeting.breakout_ids if breakouts else ():
            self._ended[room] = t
        self.version += 1

    # --- load faults --------------------------------------------------------------------

    def set_override(self, t: float, mode: str, value: float) -> None:
        self.advance(t)
        self.clear_overrides(t)
        self._overrides.append(LoadOverride(mode, value, t))
        self.version += 1

    def clear_overrides(self, t: float) -> None:
        self.advance(t)
        self._overrides = [dataclasses.replace(o, end=min(o.end, t)) for o in self._overrides]
        self._overrides = [o for o in self._overrides if o.end > o.start]
        self.version += 1

    def override_at(self, t: float, mode: str) -> float | None:
        """The value of a load fault ``mode`` in force at ``t``, if any."""
        for o in self._overrides:
            if o.mode == mode and o.start <= t < o.end:
                return o.value
        return None

    # --- counters -----------------------------------------------------------------------

    def advance(self, t: float) -> None:
        """Integrate the counters up to ``t`` (no-op for instants already passed)."""
        if t <= self._last:
            return
        busy, tx, rx, lo = integrate(
            self.meetings_between(self._last, t),
            self._overrides,
            self._last,
            t,
            self.cpu_count,
        )
        c, k = self._counters, self.counter_scale
        c.uptime += (t - self._last) * k
        c.busy += busy * k
        c.tx += tx * k
        c.rx += rx * k
        c.lo += lo * k
        self._last = t
        self._overrides = [o for o in self._overrides if o.end > t]
        # forget what can no longer overlap a future interval (long demo runs)
        horizon = t - 2 * model.DAY
        self._api = {k: m for k, m in self._api.items() if m.end > horizon}
        self._ended = {k: v for k, v in self._ended.items() if v > horizon}

    def snapshot(self, t: float) -> Snapshot:
        self.advance(t)
        c = self._counters
        return Snapshot(self.cpu_count, c.uptime, c.busy, c.tx, c.rx, c.lo)


def truncate(meeting: Meeting, t: float) -> Meeting:
    """The meeting as if it ended at ``t`` (no change when it ends earlier anyway)."""
    if t >= meeting.end:
        return meeting
    end = max(t, meeting.start)
    segments = tuple(
        Segment(s.start, min(s.end, end), s.attendance) for s in meeting.segments if s.start < end
    )
    window = meeting.breakout_window
    if window is not None:
        window = (window[0], min(window[1], end))
    return dataclasses.replace(meeting, end=end, segments=segments, breakout_window=window)


def with_change(meeting: Meeting, t: float, change: Attendance) -> Meeting:
    """The meeting with ``change`` added to its attendance from ``t`` on (a join)."""
    segments: list[Segment] = []
    for s in meeting.segments:
        if s.end <= t:
            segments.append(s)
            continue
        if s.start < t:
            segments.append(Segment(s.start, t, s.attendance))
            s = Segment(t, s.end, s.attendance)
        segments.append(Segment(s.start, s.end, add(s.attendance, change)))
    return dataclasses.replace(meeting, segments=tuple(segments))


def add(a: Attendance, b: Attendance) -> Attendance:
    return Attendance(
        a.participants + b.participants,
        a.moderators + b.moderators,
        a.listeners + b.listeners,
        a.voice + b.voice,
        a.video + b.video,
        a.dialin + b.dialin,
        a.screenshare or b.screenshare,
    )


def integrate(
    meetings: Iterable[Meeting],
    overrides: Iterable[LoadOverride],
    a: float,
    b: float,
    cpu_count: int,
) -> tuple[float, float, float, float]:
    """Busy CPU seconds, uplink tx/rx bytes and loopback bytes over [a, b]."""
    events: list[tuple[float, float, float, float]] = [(a, 0.0, 0.0, 0.0), (b, 0.0, 0.0, 0.0)]
    for meeting in meetings:
        for s in meeting.segments:
            lo, hi = max(s.start, a), min(s.end, b)
            if lo >= hi:
                continue
            att = s.attendance
            cpu, tx, rx = att.busy_cores(), att.tx_bytes_per_second(), att.rx_bytes_per_second()
            events.append((lo, cpu, tx, rx))
            events.append((hi, -cpu, -tx, -rx))
    active_overrides = [o for o in overrides if o.start < b and o.end > a]
    for o in active_overrides:
        events.append((max(o.start, a), 0.0, 0.0, 0.0))
        if o.end < b:
            events.append((o.end, 0.0, 0.0, 0.0))
    events.sort(key=lambda e: e[0])
    busy = tx_total = rx_total = lo_total = 0.0
    cpu_rate = tx_rate = rx_rate = 0.0
    max_busy = model.CPU_MAX_BUSY * cpu_count
    previous = a
    for time, d_cpu, d_tx, d_rx in events:
        if time > previous:
            span = time - previous
            mid = previous + span / 2
            cores = min(model.CPU_NODE_BASE + max(cpu_rate, 0.0), max_busy)
            tx_now = TX_BASE_BYTES + max(tx_rate, 0.0)
            for o in active_overrides:
                if o.start <= mid < o.end:
                    if o.mode == "cpu_high":
                        cores = min(o.value, model.CPU_MAX_BUSY) * cpu_count
                    elif o.mode == "link_saturated":
                        tx_now = o.value * model.LINK_CAPACITY_BYTES
            busy += cores * span
            tx_total += tx_now * span
            rx_total += (RX_BASE_BYTES + max(rx_rate, 0.0)) * span
            lo_total += (LO_BASE_BYTES + LO_SHARE_OF_TX * max(tx_rate, 0.0)) * span
            previous = time
        cpu_rate += d_cpu
        tx_rate += d_tx
        rx_rate += d_rx
    return busy, tx_total, rx_total, lo_total
