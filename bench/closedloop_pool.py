"""The closed-loop benchmark's world: demand from the simulator's load model, node loads
on a 15-second grid, and what the exporter and Prometheus report (no wall clock).

Demand: every meeting the load model (``simulator/model.py``) starts on any node of the
pool on one day, each a placement request at its start time; breakout rooms follow their
parent (BBB creates them on the parent's server). The load model gives each segment a
constant attendance; here users join over the first ``RAMP_SECONDS`` of a meeting (the
reason Scalelite counts young meetings as at least ``LOAD_MIN_USER_COUNT``). Per step a
meeting costs ``Attendance.busy_cores()`` and ``tx/rx_bytes_per_second()`` of the load model
with the node's idle baseline and CPU cap from ``simulator/node.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
from confscale.exporter.config import DEFAULT_INTERVAL
from confscale.planner.placement import NodeReading, PressureTargets
from confscale.simulator import model, node
from confscale.simulator.model import Attendance, Meeting
from confscale.simulator.pool import node_names
from confscale.simulator.terms import TermCalendar

STEP = DEFAULT_INTERVAL  # one exporter poll; Prometheus scrapes each poll's answer
RATE_WINDOW = 300.0  # the recording rules' rate5m
RAMP_SECONDS = 600.0  # users of a new meeting join over its first 10 minutes
REJOIN_SECONDS = 60.0  # after a node fails, its users re-create their rooms a minute later
CPU_COUNT = 8  # NodeState's default
TARGETS = PressureTargets()  # the headroom targets: CPU 0.75, link 0.8, 200 participants


@dataclass(frozen=True)
class Profile:
    """One meeting's load per grid step from its start (the ramp included)."""

    participants: np.ndarray
    moderators: np.ndarray
    joins: np.ndarray  # users joining in each step (Scalelite counts every join)
    cores: np.ndarray
    tx: np.ndarray
    rx: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.participants)

    def tail(self, offset: int, ramp_steps: int) -> Profile:
        """What is left from ``offset`` on, with its users joining again over ``ramp_steps``."""
        ramp = np.minimum(1.0, np.arange(1, self.steps - offset + 1) / max(ramp_steps, 1))
        people = np.round(self.participants[offset:] * ramp)
        joins = np.diff(np.concatenate([[0.0], people])).clip(min=0)
        return Profile(
            people,
            np.round(self.moderators[offset:] * ramp),
            joins,
            self.cores[offset:] * ramp,
            self.tx[offset:] * ramp,
            self.rx[offset:] * ramp,
        )


@dataclass
class Request:
    """One room to place: a parent meeting (with its breakout rooms) at ``step``."""

    meeting_id: str
    step: int
    kind: str
    size: int  # participants when everyone has joined
    profile: Profile
    breakouts: list[tuple[int, Profile]] = field(default_factory=list)  # (offset, load)
    attempt: int = 0
    rejoin_of: str | None = None


def _scaled(a: Attendance, f: float) -> Attendance:
    n = round(a.participants * f)
    if f >= 1.0 or n >= a.participants:
        return a
    share = n / a.participants if a.participants else 0.0
    return Attendance(
        n,
        min(n, round(a.moderators * share)),
        min(n, round(a.listeners * share)),
        min(n, round(a.voice * share)),
        min(n, round(a.video * share)),
        0,
        a.screenshare and n > 0,
    )


def profile(meeting: Meeting, start: float, steps: int, *, ramp: bool) -> Profile:
    """The meeting's load on the grid ``start + i·STEP`` for ``i < steps``."""
    cols = np.zeros((6, steps))
    previous = 0
    for i in range(steps):
        t = start + i * STEP
        a = meeting.attendance(t)
        if ramp and meeting.segments and meeting.segments[0].start <= t < meeting.segments[0].end:
            a = _scaled(a, min(1.0, (t - meeting.start + STEP) / RAMP_SECONDS))
        joined = max(0, a.participants - previous) if ramp else 0
        previous = a.participants
        cores = a.busy_cores() if meeting.active(t) else 0.0
        cols[:, i] = (
            a.participants,
            a.moderators,
            joined,
            cores,
            a.tx_bytes_per_second(),
            a.rx_bytes_per_second(),
        )
    return Profile(*cols)


def busy_day(year: int = 2026) -> dt.date:
    """A Tuesday in the default calendar's winter term (a term weekday: full load)."""
    day = dt.date(year, 11, 17)
    assert TermCalendar().regime(day) == "term-weekday"
    return day


def demand(
    nodes: int, *, seed: int, scale: float, day: dt.date, start_hour: float, hours: float
) -> list[Request]:
    """Every room the load model starts on the pool's nodes in the window, in start order."""
    day_index = (day - dt.date(1970, 1, 1)).days
    t0 = day_index * model.DAY + start_hour * 3600.0
    n_steps = int(hours * 3600 / STEP)
    requests: list[Request] = []
    for name in node_names("bbb", nodes):
        meetings = model.day_meetings(seed, name, day_index, TermCalendar(), scale)
        rooms: dict[str, list[Meeting]] = {}
        for m in meetings:
            if m.parent_internal_id:
                rooms.setdefault(m.parent_internal_id, []).append(m)
        for m in meetings:
            if m.parent_internal_id or not (t0 <= m.start < t0 + hours * 3600):
                continue
            step = int(np.ceil((m.start - t0) / STEP))
            steps = min(int(np.ceil((m.end - m.start) / STEP)), n_steps - step)
            if steps <= 0:
                continue
            start = t0 + step * STEP
            request = Request(
                m.meeting_id,
                step,
                m.kind,
                max(s.attendance.participants for s in m.segments),
                profile(m, start, steps, ramp=True),
            )
            for room in rooms.get(m.internal_id, []):
                offset = int(np.ceil((room.start - start) / STEP))
                length = min(int(np.ceil((room.end - room.start) / STEP)), steps - offset)
                if length > 0:
                    begin = start + offset * STEP
                    request.breakouts.append((offset, profile(room, begin, length, ramp=False)))
            requests.append(request)
    requests.sort(key=lambda r: (r.step, r.meeting_id))
    return requests


def demand_digest(requests: list[Request]) -> str:
    """A fingerprint of the demand (ids, start steps, sizes, load) to compare runs."""
    h = hashlib.sha256()
    for r in requests:
        h.update(f"{r.meeting_id}:{r.step}:{r.size}:{r.profile.participants.sum():.0f};".encode())
    return h.hexdigest()[:16]


class PoolLoad:
    """Per node and step: the load placed so far (only the future changes)."""

    QUANTITIES = ("participants", "moderators", "joins", "cores", "tx", "rx", "meetings")
    # plus "largest": the largest single room's participants (a room over the participant
    # target alone overloads any node: no placement avoids it)

    def __init__(self, names: list[str], steps: int) -> None:
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self.steps = steps
        self.q = {k: np.zeros((len(names), steps)) for k in (*self.QUANTITIES, "largest")}
        # rooms (not breakout rooms) started on the node so far: bbb_meetings_started
        self.started = np.zeros((len(names), steps))
        self.down_from = {n: steps for n in names}  # step a node fails (steps: never)
        # meeting id -> (node, start step, profile, breakouts), for failures and Scalelite
        self.placed: dict[str, tuple[str, int, Profile, list[tuple[int, Profile]]]] = {}

    def add(self, node: str, step: int, p: Profile, sign: float = 1.0, *, meeting: bool) -> None:
        j, end = self.index[node], min(self.steps, step + p.steps)
        n = end - step
        if n <= 0:
            return
        for key in ("participants", "moderators", "joins", "cores", "tx", "rx"):
            self.q[key][j, step:end] += sign * getattr(p, key)[:n]
        if meeting:
            self.q["meetings"][j, step:end] += sign
        if sign > 0:
            view = self.q["largest"][j, step:end]
            np.maximum(view, p.participants[:n], out=view)

    def place(self, request: Request, node: str, step: int) -> None:
        self.placed[request.meeting_id] = (node, step, request.profile, request.breakouts)
        self.started[self.index[node], step:] += 1
        self.add(node, step, request.profile, meeting=True)
        for offset, room in request.breakouts:
            self.add(node, step + offset, room, meeting=True)

    def fail(self, node: str, step: int) -> list[Request]:
        """``node`` dies at ``step``: its meetings end; their users re-create them later."""
        self.down_from[node] = step
        rejoin = step + int(REJOIN_SECONDS / STEP)
        again = []
        for mid, (where, start, p, rooms) in list(self.placed.items()):
            if where != node or start + p.steps <= step:
                continue
            offset = step - start
            self.add(node, step, _slice(p, offset), -1.0, meeting=True)
            for room_offset, room in rooms:
                if start + room_offset + room.steps > step:
                    cut = max(0, step - start - room_offset)
                    self.add(node, start + room_offset + cut, _slice(room, cut), -1.0, meeting=True)
            left = p.steps - offset - (rejoin - step)
            if left > 0:
                tail = p.tail(offset + (rejoin - step), int(RAMP_SECONDS / STEP))
                size = int(p.participants[offset:].max())
                again.append(Request(f"{mid}+rejoin", rejoin, "rejoin", size, tail, rejoin_of=mid))
        return again

    def up(self, node: str, step: int) -> bool:
        return step < self.down_from[node]

    # --- truth and readings ------------------------------------------------------------

    def utilisation(self, step: int) -> dict[str, np.ndarray]:
        """True CPU and link shares and participants of every node at ``step``."""
        return self.window_utilisation(step, step)

    def window_utilisation(self, first: int, last: int) -> dict[str, np.ndarray]:
        a, b = max(first, 0), last + 1
        cores = np.minimum(
            model.CPU_NODE_BASE + self.q["cores"][:, a:b], model.CPU_MAX_BUSY * CPU_COUNT
        )
        return {
            "cpu": cores.mean(axis=1) / CPU_COUNT,
            "tx": (node.TX_BASE_BYTES + self.q["tx"][:, a:b]).mean(axis=1)
            / model.LINK_CAPACITY_BYTES,
            "rx": (node.RX_BASE_BYTES + self.q["rx"][:, a:b]).mean(axis=1)
            / model.LINK_CAPACITY_BYTES,
        }

    def readings(self, step: int) -> list[NodeReading]:
        """What the planner reads at ``step``: the last exporter poll (one step old), CPU
        and link as 5-minute rates, participants and meetings as polled."""
        polled = max(step - 1, 0)
        window = int(RATE_WINDOW / STEP)
        rates = self.window_utilisation(polled - window + 1, max(polled, 0))
        t = polled * STEP
        out = []
        for j, name in enumerate(self.names):
            up = self.up(name, polled)
            out.append(
                NodeReading(
                    node=name,
                    up=up,
                    timestamp=t if up else None,
                    meetings=float(self.q["meetings"][j, polled]) if up else None,
                    meetings_started=float(self.started[j, polled]) if up else None,
                    participants=float(self.q["participants"][j, polled]) if up else None,
                    cpu_utilisation=float(rates["cpu"][j]) if up else None,
                    transmit_utilisation=float(rates["tx"][j]) if up else None,
                    receive_utilisation=float(rates["rx"][j]) if up else None,
                )
            )
        return out


def _slice(p: Profile, offset: int) -> Profile:
    return Profile(*(getattr(p, k)[offset:] for k in PoolLoad.QUANTITIES[:6]))
