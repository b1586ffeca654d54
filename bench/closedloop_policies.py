"""The four placement policies of the closed-loop benchmark, each seeing the signal it
really gets, when it gets it.

1. ``scalelite``: Scalelite's own balancer, after blindsidenetworks/scalelite at
   7498a81dc813efcb5116143c64d23493292f7b57 — ``lib/tasks/poll.rake`` (poll every 60 s:
   load = Σ over non-breakout meetings of participantCount + moderatorCount, at least
   ``LOAD_MIN_USER_COUNT`` = 15 while a meeting is younger than ``LOAD_JOIN_BUFFER_TIME``
   = 15 min, × ``load_multiplier``; a server that fails ``SERVER_UNHEALTHY_THRESHOLD`` = 2
   polls goes offline and its meetings are cleared; ``config/application.rb``),
   ``app/models/server.rb`` (``find_available``: the enabled, online server of lowest
   load; ``increment_load(n)`` adds n × multiplier) and
   ``app/controllers/bigbluebutton_api_controller.rb`` (the create of a new meeting and
   every join ``increment_load(1)``, i.e. + 1 × multiplier, however large the room will
   grow; a failed create leaves the meeting on its server, so a retry goes to the same
   server — without another increment — until the poller takes it offline, or, if the
   server is cordoned, is placed afresh). ``save!`` in ``server.rb``: a cordon takes the
   server out of ``server_load`` at once, an enable puts it back with its load — but
   from ``disabled`` (the poller disables a cordoned server whose load is 0) it has no
   load and takes no create until the next poll; a new ``load_multiplier`` changes no
   load until the next poll (only the increments use it at once).
2. ``seed``: the Scaleway seed's API: least CPU (the 5-minute rate from Prometheus) among
   the nodes Prometheus has, the list refreshed every 30 s.
3. ``scalelite+confscale``: (1) with confscale's Scalelite adapter (a real
   ``ScaleliteAdapter.decide``: reservations, ``plan``) setting cordon and
   ``load_multiplier`` after every placement refresh; ``scalelite+admission`` the same
   with admission control (``--scalelite.admission``); ``scalelite-tuned`` is (1) with
   the operator settings docs/planner.md recommends (POLL_INTERVAL 30 s,
   LOAD_MIN_USER_COUNT 25, LOAD_JOIN_BUFFER_TIME 10 min) and no adapter.
4. ``confscale-next``: a real :class:`~planner.service.PlannerService` fed the readings,
   refreshed every placement interval, asked ``next_node()`` for every room.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import pandas as pd
from confscale.planner.adapters.scalelite import ScaleliteAdapter, Server
from confscale.planner.reservations import NoNodeAvailable
from confscale.planner.service import PlannerService

from bench.closedloop_pool import STEP, PoolLoad, Request

SCALELITE_POLL_SECONDS = 60.0  # poll.rake's default interval
LOAD_MIN_USER_COUNT = 15
LOAD_JOIN_BUFFER_SECONDS = 15 * 60.0
SERVER_UNHEALTHY_THRESHOLD = 2
SEED_REFRESH_SECONDS = 30.0
PLACEMENT_SECONDS = inspect.signature(PlannerService).parameters["placement_seconds"].default


def every(seconds: float, step: int) -> bool:
    return step % max(1, round(seconds / STEP)) == 0


class Policy:
    """Placement policy: ``tick`` once per step (polls), ``choose`` per create."""

    name = "policy"

    def tick(self, pool: PoolLoad, step: int) -> None: ...

    def choose(self, pool: PoolLoad, step: int, request: Request) -> str:
        raise NotImplementedError

    def created(self, pool: PoolLoad, step: int, request: Request, node: str, ok: bool) -> None:
        """Told whether the create on ``node`` worked (the node was up)."""


@dataclass
class ScaleliteServer:
    load: float | None = 0.0
    online: bool = True
    state: str = "enabled"
    load_multiplier: float = 1.0
    unhealthy: int = 0


@dataclass
class Scalelite(Policy):
    """Scalelite's own balancer (see the module docstring for the source it follows)."""

    names: list[str]
    name: str = "scalelite"
    # the operator's settings: POLL_INTERVAL, LOAD_MIN_USER_COUNT, LOAD_JOIN_BUFFER_TIME
    poll_seconds: float = SCALELITE_POLL_SECONDS
    min_user_count: int = LOAD_MIN_USER_COUNT
    join_buffer_seconds: float = LOAD_JOIN_BUFFER_SECONDS
    servers: dict[str, ScaleliteServer] = field(init=False)
    pinned: dict[str, str] = field(default_factory=dict)  # failed creates stay on a server
    _live: list = field(default_factory=list, repr=False)  # rooms not yet ended
    _seen: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.servers = {n: ScaleliteServer() for n in self.names}

    def tick(self, pool: PoolLoad, step: int) -> None:
        if every(self.poll_seconds, step):
            attendees = self._attendees(pool, step)
            for name, server in self.servers.items():
                if not pool.up(name, step):
                    if server.online:
                        server.unhealthy += 1
                        if server.unhealthy >= SERVER_UNHEALTHY_THRESHOLD:
                            server.online, server.load, server.unhealthy = False, None, 0
                            self.pinned = {m: s for m, s in self.pinned.items() if s != name}
                    continue
                server.unhealthy = 0
                server.online = True
                server.load = attendees.get(name, 0.0) * server.load_multiplier
                if server.state == "cordoned" and server.load == 0:
                    server.state = "disabled"
                if server.state == "disabled":
                    server.load = None  # save! drops a disabled server's load
        # every join is an increment_load(1) on the meeting's server
        for name, server in self.servers.items():
            joins = pool.q["joins"][pool.index[name], step]
            if joins and server.load is not None and server.state == "enabled" and server.online:
                server.load += joins * server.load_multiplier

    def _attendees(self, pool: PoolLoad, step: int) -> dict[str, float]:
        """What getMeetings of each server gives poll.rake's total_attendees."""
        placed = list(pool.placed.values())
        self._live.extend(placed[self._seen :])  # rooms placed since the last poll
        self._seen = len(placed)
        self._live = [m for m in self._live if m[1] + m[2].steps > step]
        totals: dict[str, float] = {}
        for where, start, p, _ in self._live:
            offset = step - start
            if offset < 0 or not pool.up(where, step):
                continue
            attendees = p.participants[offset] + p.moderators[offset]
            if offset * STEP < self.join_buffer_seconds:
                attendees = max(attendees, self.min_user_count)
            totals[where] = totals.get(where, 0.0) + attendees
        return totals

    def choose(self, pool: PoolLoad, step: int, request: Request) -> str:
        pinned = self.pinned.get(request.meeting_id)
        if pinned is not None and self.servers[pinned].state != "cordoned":
            return pinned  # the meeting exists in Scalelite: no find_available
        self.pinned.pop(request.meeting_id, None)  # a stale meeting on a cordoned server
        available = [
            (s.load, n)
            for n, s in self.servers.items()
            if s.state == "enabled" and s.online and s.load is not None
        ]
        if not available:
            raise NoNodeAvailable("Could not find any available servers.")
        return min(available)[1]  # Redis zrange: by score, then member

    def created(self, pool: PoolLoad, step: int, request: Request, node: str, ok: bool) -> None:
        server = self.servers[node]
        fresh = request.meeting_id not in self.pinned  # only a new meeting increments
        if fresh and server.load is not None and server.state == "enabled" and server.online:
            server.load += 1 * server.load_multiplier
        if not ok:
            self.pinned[request.meeting_id] = node
        else:
            self.pinned.pop(request.meeting_id, None)


def confscale_service(pool: PoolLoad, clock: list[float], lead: int = 0) -> PlannerService:
    """A real planner service on the benchmark's readings and clock (no history);
    ``lead`` = 1 reads the pool as it is now (no exporter or scrape delay: an ideal)."""
    return PlannerService(
        lambda: pd.DataFrame(),
        read_current=lambda: pool.readings(round(clock[0] / STEP) + lead),
        clock=lambda: clock[0],
    )


@dataclass
class ScaleliteWithConfscale(Scalelite):
    """Scalelite, with confscale's adapter — a real :class:`ScaleliteAdapter`'s
    ``decide`` (reservations, admission, ``plan``) on what getServers would answer —
    setting cordon and load_multiplier after every placement refresh, as its ``apply``
    does (getServers and updateServer are the only parts not run)."""

    name: str = "scalelite+confscale"
    admission: float | None = None  # ScaleliteAdapter.admission (typical meetings)
    interval: float = PLACEMENT_SECONDS  # how often the placement and the adapter run
    lead: int = 0  # 1: readings without delay (the ideal variant)
    service: PlannerService | None = None
    clock: list[float] = field(default_factory=lambda: [0.0])
    adapter: ScaleliteAdapter | None = None

    def tick(self, pool: PoolLoad, step: int) -> None:
        self.clock[0] = step * STEP
        if self.service is None:
            self.service = confscale_service(pool, self.clock, self.lead)
            self.adapter = ScaleliteAdapter(
                "https://scalelite.example.org",
                "unused",
                dry_run=False,
                admission=self.admission,
                reserved=self.service.reserved_pressure,
            )
        if every(self.interval, step) and step > 0:
            placement = self.service.refresh_placement()
            if placement is not None:
                self._apply(placement)
        super().tick(pool, step)

    def _apply(self, placement) -> None:
        assert self.adapter is not None
        view = [
            Server(
                n,
                f"https://{n}.example.org/bigbluebutton/api/",
                s.state,
                s.load_multiplier,
                "",
                s.online,
            )
            for n, s in self.servers.items()
        ]
        result = self.adapter.decide(placement, view)
        memory = self.adapter.memory
        for node, record in result.records.items():
            memory.put(node, record)
        for action in result.actions:
            memory.put(action.node, action.after)
            server = self.servers[action.node]
            state = action.server.get("state")
            if state == "cordon":
                server.state = "cordoned"
            elif state == "enable":
                if server.state == "disabled":
                    server.load = None  # back in server_load at the next poll only
                server.state = "enabled"
            if "load_multiplier" in action.server:
                server.load_multiplier = float(action.server["load_multiplier"])


@dataclass
class Seed(Policy):
    """Least CPU from Prometheus, the list refreshed every 30 s (no bookkeeping between)."""

    name: str = "seed"
    cpu: dict[str, float] = field(default_factory=dict)

    def tick(self, pool: PoolLoad, step: int) -> None:
        if every(SEED_REFRESH_SECONDS, step) and step > 0:
            self.cpu = {
                r.node: r.cpu_utilisation
                for r in pool.readings(step)
                if r.up and r.cpu_utilisation is not None
            }

    def choose(self, pool: PoolLoad, step: int, request: Request) -> str:
        if not self.cpu:
            return pool.names[step % len(pool.names)]  # before the first refresh
        return min((v, n) for n, v in self.cpu.items())[1]


@dataclass
class ConfscaleNext(Policy):
    """Every room asks ``/next`` of a real planner service (reservations and all)."""

    name: str = "confscale-next"
    service: PlannerService | None = None
    clock: list[float] = field(default_factory=lambda: [0.0])
    fallbacks: int = 0  # rooms /next could not place (every node full): the placement's best
    sized: bool = False  # the front end passes ?expected_participants= (the room's size)
    answers: int = 0  # nodes /next named (each with a reservation)

    def tick(self, pool: PoolLoad, step: int) -> None:
        self.clock[0] = step * STEP
        if self.service is None:
            self.service = confscale_service(pool, self.clock)
        if (every(PLACEMENT_SECONDS, step) and step > 0) or self.service.placement() is None:
            self.service.refresh_placement()

    def choose(self, pool: PoolLoad, step: int, request: Request) -> str:
        assert self.service is not None
        size = request.size if self.sized and request.size > 0 else None
        try:
            node = str(self.service.next_node(expected_participants=size)["node"])
            self.answers += 1
            return node
        except NoNodeAvailable:
            self.fallbacks += 1
            placement = self.service.placement()
            ranked = [n for n in placement.nodes if n.kind == "bbb" and n.state != "down"]
            if not ranked:
                raise
            return min(ranked, key=lambda n: (n.pressure or 0.0, n.node)).node


ADMISSION = 1.0  # the admission variant's band, in typical meetings (docs/benchmarks.md)
# the operator settings docs/planner.md recommends for Scalelite
TUNED = {"poll_seconds": 30.0, "min_user_count": 25, "join_buffer_seconds": 600.0}
POLICIES = (
    "scalelite",
    "seed",
    "scalelite+confscale",
    "scalelite+admission",
    "scalelite-tuned",
    "confscale-next",
    "confscale-next+size",
)
# opt-in (--policies): admission with every create of the previous step already in the
# readings and the adapter run every step — the most any cordon-based adapter can do
EXTRA_POLICIES = ("scalelite+admission-ideal",)


def make_policy(name: str, names: list[str]) -> Policy:
    if name == "scalelite":
        return Scalelite(list(names))
    if name == "seed":
        return Seed()
    if name == "scalelite+confscale":
        return ScaleliteWithConfscale(list(names))
    if name == "scalelite+admission":
        return ScaleliteWithConfscale(list(names), name=name, admission=ADMISSION)
    if name == "scalelite+admission-ideal":
        return ScaleliteWithConfscale(
            list(names), name=name, admission=ADMISSION, interval=STEP, lead=1
        )
    if name == "scalelite-tuned":
        return Scalelite(list(names), name=name, **TUNED)  # type: ignore[arg-type]
    if name == "confscale-next":
        return ConfscaleNext()
    if name == "confscale-next+size":
        return ConfscaleNext(name=name, sized=True)
    known = ", ".join((*POLICIES, *EXTRA_POLICIES))
    raise ValueError(f"unknown policy {name!r}; policies: {known}")
