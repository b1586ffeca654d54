"""GET /api/v1/placement/next: burst-safe choice with reservations (planner.reservations)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import requests
from confscale.planner.api import create_app
from confscale.planner.placement import NodeReading, PressureTargets
from confscale.planner.reservations import (
    MeetingCost,
    NoNodeAvailable,
    Reservation,
    effective_pressure,
    remaining_share,
    typical_meeting,
)
from confscale.planner.service import PlannerService
from werkzeug.serving import make_server

T0 = 1_790_000_000.0
PRESSURES = {"bbb-01": 0.1, "bbb-02": 0.3, "bbb-03": 0.5, "bbb-04": 0.7, "bbb-05": 0.95}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Pool:
    """Current data: participants-bound nodes at given pressures, read at ``stamp``."""

    def __init__(self, clock: Clock, pressures: dict[str, float]) -> None:
        self.clock = clock
        self.pressures = dict(pressures)
        self.stamp = clock.now
        self.up = set(pressures)
        self.started: dict[str, float] = {}  # bbb_meetings_started per node, when exported

    def __call__(self) -> list[NodeReading]:
        return [
            NodeReading(
                node=n,
                up=n in self.up,
                timestamp=self.stamp,
                meetings=max(1.0, p * 10),
                meetings_started=self.started.get(n),
                participants=p * 200,
                cpu_utilisation=p * 0.3,
                transmit_utilisation=p * 0.2,
                receive_utilisation=p * 0.05,
            )
            for n, p in self.pressures.items()
        ]


def service_for(pressures: dict[str, float] = PRESSURES, **kwargs: object):
    clock = Clock(T0)
    pool = Pool(clock, pressures)
    service = PlannerService(
        lambda: pd.DataFrame(), read_current=pool, clock=clock, **kwargs
    )  # no history: the placement still works
    service.refresh_placement()
    return service, clock, pool


def water_fill(pressures: dict[str, float], delta: float, n: int) -> Counter:
    """The ideal split of n rooms of pressure ``delta``: each to the emptiest node then."""
    level, counts = dict(pressures), Counter()
    for _ in range(n):
        node = min(level, key=lambda k: (level[k], k))
        level[node] += delta
        counts[node] += 1
    return counts


def test_a_burst_of_50_creates_spreads_over_the_nodes_by_weight() -> None:
    service, clock, _ = service_for()
    weights = {n.node: n.weight for n in service.placement().nodes if n.state == "available"}
    assert set(weights) == {"bbb-01", "bbb-02", "bbb-03", "bbb-04"}  # bbb-05 is out
    picks = []
    for i in range(50):  # one second, no new reading: only the reservations change
        clock.now = T0 + i * 0.02
        picks.append(service.next_node(expected_participants=4)["node"])
    counts = Counter(picks)
    # each room reserves 4 of 200 participants (the binding term here): the burst fills
    # the nodes' weight (headroom) from the emptiest down, never all onto the best one
    ideal = water_fill({n: 1 - w for n, w in weights.items()}, 4 / 200, 50)
    assert ideal["bbb-01"] > ideal["bbb-02"] > ideal["bbb-03"] > 0 == ideal["bbb-04"]
    for node in weights:
        assert abs(counts[node] - ideal[node]) <= 1.5, (node, counts, ideal)
    assert counts["bbb-01"] < 50 and "bbb-05" not in counts
    assert service.reservations.open_count() == 50


def test_a_wider_spread_follows_the_weights_in_proportion() -> None:
    from confscale.planner.reservations import ReservationPolicy
    from confscale.planner.snapshot import PlannerConfig

    config = PlannerConfig(reservations=ReservationPolicy(spread_meetings=1000.0))
    service, _, _ = service_for(config=config)
    weights = {n.node: n.weight for n in service.placement().nodes if n.state == "available"}
    counts = Counter(service.next_node(expected_participants=0.2)["node"] for _ in range(50))
    total = sum(weights.values())  # smooth weighted round-robin: within one per node
    for node, weight in weights.items():
        assert abs(counts[node] - 50 * weight / total) <= 1.5, (node, counts)


def test_reservations_fill_nodes_so_a_burst_never_piles_onto_the_best_one() -> None:
    service, _, _ = service_for({"bbb-01": 0.1, "bbb-02": 0.6, "bbb-03": 0.6})
    answers = [service.next_node(expected_participants=20) for _ in range(12)]
    counts = Counter(a["node"] for a in answers)
    assert counts["bbb-01"] > counts["bbb-02"] > 0 and counts["bbb-03"] > 0
    # every answer saw the earlier reservations: no node was pushed past 'out' (0.9)
    for a in answers:
        assert a["effective_pressure"] < 0.9
        assert a["reservation"]["cost"]["participants"] == 20
        assert "round-robin" in a["reason"] and "reserved 20 participants" in a["reason"]
    reserved = service.reserved_pressure()
    assert reserved["bbb-01"] == pytest.approx(counts["bbb-01"] * 20 / 200, abs=1e-6)
    # the pool fills up: no node can take another large meeting
    with pytest.raises(NoNodeAvailable):
        for _ in range(40):
            service.next_node(expected_participants=20)


def test_reservations_fade_with_newer_readings_and_expire() -> None:
    service, clock, pool = service_for({"bbb-01": 0.1, "bbb-02": 0.1})
    settle = service.config.reservations.settle_seconds
    ttl = service.config.reservations.ttl_seconds
    for _ in range(4):
        service.next_node(expected_participants=10)
    full = dict(service.reserved_pressure())
    assert sum(full.values()) == pytest.approx(4 * 10 / 200)
    # a reading half the settle time newer shows half of each meeting
    clock.now += settle / 2
    pool.stamp = clock.now
    service.refresh_placement()
    assert sum(service.reserved_pressure().values()) == pytest.approx(sum(full.values()) / 2)
    clock.now += settle / 2
    pool.stamp = clock.now
    service.refresh_placement()
    assert service.reservations.open_count() == 0 and service.reservations.released == 4
    # without newer readings (the node stopped answering) the ttl removes them
    service.next_node(expected_participants=10)
    clock.now += ttl - 1
    assert service.reservations.open_count() == 1
    clock.now += 1
    assert service.reserved_pressure() == {}
    assert service.reservations.expired == 1


def test_typical_meeting_comes_from_the_pools_own_readings() -> None:
    readings = [
        NodeReading(
            "a", meetings=4, participants=80, cpu_utilisation=0.2, transmit_utilisation=0.4
        ),
        NodeReading(
            "b", meetings=6, participants=120, cpu_utilisation=0.3, transmit_utilisation=0.1
        ),
        NodeReading("c", up=False, meetings=9, participants=900),
    ]
    cost = typical_meeting(readings)
    assert cost.source == "readings"
    assert cost.participants == pytest.approx(20)  # 200 participants in 10 meetings
    assert cost.cpu == pytest.approx(0.5 / 200 * 20)
    assert cost.transmit == pytest.approx(0.5 / 200 * 20)
    assert typical_meeting(readings, expected_participants=40).cpu == pytest.approx(2 * cost.cpu)
    empty = typical_meeting([NodeReading("a", participants=0)], expected_participants=30)
    assert empty.source == "prior" and empty.participants == pytest.approx(30)


def test_effective_pressure_adds_the_load_term_by_term() -> None:
    t = PressureTargets()
    reading = NodeReading("a", participants=100, cpu_utilisation=0.6, transmit_utilisation=0.1)
    assert effective_pressure(reading, MeetingCost(0.0), t) == pytest.approx(0.8)
    load = MeetingCost(participants=20, cpu=0.0, transmit=0.6)
    assert effective_pressure(reading, load, t) == pytest.approx(0.7 / 0.8)  # now link binds
    load = MeetingCost(participants=20, cpu=0.15, transmit=0.0)
    assert effective_pressure(reading, load, t) == pytest.approx(0.75 / 0.75)
    only_rule = NodeReading("b", pressure=0.5)
    assert effective_pressure(only_rule, MeetingCost(40), t) == pytest.approx(0.7)
    r = Reservation("r1", "a", load, created=100.0, expires=1000.0)
    assert remaining_share(r, None, 600) == 1 and remaining_share(r, 90.0, 600) == 1
    assert remaining_share(r, 400.0, 600) == pytest.approx(0.5)
    assert remaining_share(r, 800.0, 600) == 0


def test_http_next_is_safe_under_concurrent_calls_and_validates_its_input() -> None:
    pressures = {f"bbb-{i:02d}": 0.05 * i for i in range(1, 7)}
    service, _, _ = service_for(pressures, pools=("campus",))
    server = make_server("127.0.0.1", 0, create_app(service), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/api/v1/placement/next"
    try:

        def call(_: int) -> dict:
            with requests.Session() as session:
                out = []
                for _ in range(10):
                    r = session.get(base, params={"expected_participants": "0.5"}, timeout=30)
                    assert r.status_code == 200, r.text
                    out.append(r.json())
                return out

        with ThreadPoolExecutor(8) as executor:
            answers = [a for batch in executor.map(call, range(8)) for a in batch]
        ids = [a["reservation"]["id"] for a in answers]
        assert len(set(ids)) == 80 == service.reservations.open_count()
        counts = Counter(a["node"] for a in answers)
        ideal = water_fill(pressures, 0.5 / 200, 80)
        for node in pressures:  # concurrent calls saw each other's reservations
            assert abs(counts[node] - ideal[node]) <= 1.5, (counts, ideal)
        one = requests.get(base, params={"pool": "campus"}, timeout=10)
        assert one.status_code == 200 and one.json()["pool"] == "campus"
        body = one.json()
        assert {"node", "reason", "reservation", "candidates", "weight"} <= set(body)
        unknown = requests.get(base, params={"pool": "other"}, timeout=10)
        assert unknown.status_code == 404 and "campus" in unknown.json()["error"]
        for bad in ("-1", "0", "x", "nan", "1e9"):
            r = requests.get(base, params={"expected_participants": bad}, timeout=10)
            assert r.status_code == 400 and "expected_participants" in r.json()["error"]
        assert requests.get(base, params={"size": "3"}, timeout=10).status_code == 400
        assert service.reservations.open_count() == 81  # bad requests reserved nothing
    finally:
        server.shutdown()


def test_next_before_any_reading_is_503_and_a_full_pool_says_why() -> None:
    service = PlannerService(lambda: pd.DataFrame(), read_current=lambda: [], clock=Clock(T0))
    server = make_server("127.0.0.1", 0, create_app(service), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/api/v1/placement/next"
    try:
        assert requests.get(base, timeout=10).status_code == 503
        service.refresh_placement()  # a placement with no nodes
        r = requests.get(base, timeout=10)
        assert r.status_code == 503 and "no bbb node" in r.json()["error"]
    finally:
        server.shutdown()


def test_the_adapters_see_the_reservations_between_readings() -> None:
    from confscale.planner.adapters.b3lb import B3lbAdapter
    from confscale.planner.adapters.scalelite import Server, plan
    from confscale.planner.reservations import with_reserved

    service, _, _ = service_for({"bbb-01": 0.6, "bbb-02": 0.6})
    b3lb = B3lbAdapter(dry_run=False, reserved=service.reserved_pressure)
    b3lb.apply(service.placement())
    assert b3lb.body("bbb-01") == "6000\n"
    for _ in range(4):  # 4 rooms of 20: 2 per node, +0.2 pressure each
        service.next_node(expected_participants=20)
    assert service.reserved_pressure() == pytest.approx({"bbb-01": 0.2, "bbb-02": 0.2})
    assert b3lb.body("bbb-01") == "8000\n"  # no new reading: the fetch sees the rooms
    seen = with_reserved(service.placement(), service.reserved_pressure())
    assert {n.node: n.state for n in seen.nodes} == {"bbb-01": "available", "bbb-02": "available"}
    servers = {
        n: Server(
            id=n,
            url=f"https://{n}.example.org/bigbluebutton/api",
            state="enabled",
            load_multiplier=1.0,
            tag="",
            online=True,
        )
        for n in ("bbb-01", "bbb-02")
    }
    before = plan(service.placement(), servers, {})
    after = plan(seen, servers, {})
    multiplier = lambda p: {a.node: a.server.get("load_multiplier") for a in p.actions}  # noqa: E731
    assert multiplier(before) == {"bbb-01": 1.2, "bbb-02": 1.2}  # 1 + 2·(0.6 − 0.5)
    assert multiplier(after) == {"bbb-01": 1.6, "bbb-02": 1.6}  # 0.8 with the reservations


def test_rooms_the_balancer_placed_itself_are_reserved_until_the_readings_show_them() -> None:
    """Point 3 of #16: b3lb's load (and Scalelite's multiplier) count the rooms their own
    balancer placed since the last reading, not only /next's."""
    from confscale.planner.adapters.b3lb import B3lbAdapter

    service, clock, pool = service_for({"bbb-01": 0.3, "bbb-02": 0.3})
    settle = service.config.reservations.settle_seconds
    b3lb = B3lbAdapter(dry_run=False, reserved=service.reserved_pressure)
    pool.started = {"bbb-01": 10.0, "bbb-02": 4.0}

    def reading(after: float) -> None:
        clock.now += after
        pool.stamp = clock.now
        b3lb.apply(service.refresh_placement())

    reading(15)  # the first count is only a baseline
    assert service.reserved_pressure() == {} and b3lb.body("bbb-01") == "3000\n"
    cost = service.meeting_cost(service.placement()).participants  # the typical meeting
    assert cost == pytest.approx(60 / 3)  # 60 participants in 3 meetings per node
    pool.started["bbb-01"] = 12.0  # b3lb put two rooms on bbb-01: nobody asked /next
    reading(15)
    assert service.reservations.observed == 2
    assert service.reserved_pressure() == pytest.approx({"bbb-01": 2 * cost / 200})
    assert b3lb.body("bbb-01") == f"{round((0.3 + 2 * cost / 200) * 10000)}\n"
    assert b3lb.body("bbb-02") == "3000\n"
    # a room /next sent is reserved once: the reading that shows it started adds nothing
    assert service.next_node(expected_participants=30)["node"] == "bbb-02"
    pool.started["bbb-02"] = 5.0
    reading(15)
    assert service.reservations.observed == 2
    assert service.reserved_pressure()["bbb-02"] == pytest.approx(30 / 200 * (1 - 15 / settle))
    # an exporter restart resets the counter: no room, a new baseline
    pool.started["bbb-01"] = 0.0
    reading(15)
    pool.started["bbb-01"] = 1.0
    reading(15)
    assert service.reservations.observed == 3
    # the readings catch up with every room: nothing stays reserved
    reading(settle)
    assert service.reserved_pressure() == {} and service.reservations.open_count() == 0


def test_a_node_filling_up_is_seen_fuller_until_the_next_reading() -> None:
    service, clock, pool = service_for({"bbb-01": 0.3, "bbb-02": 0.3})
    settle = service.config.reservations.settle_seconds
    clock.now += 15
    pool.stamp = clock.now
    pool.pressures["bbb-01"] = 0.305  # 60 → 61 participants in 15 s (no new room)
    service.refresh_placement()
    assert service.reservations.observed == 0
    rise = 1 / 15 * settle  # kept up while a room's users join: 40 participants
    assert service.reserved_pressure() == pytest.approx({"bbb-01": rise / 200})
    # /next reserves per answer and does not add the rise (it would count rooms twice)
    (one,) = [c for c in service.next_node()["candidates"] if c["node"] == "bbb-01"]
    assert one["effective_pressure"] == one["pressure"]
    clock.now += 15
    pool.stamp = clock.now
    service.refresh_placement()  # no rise since: nothing added
    assert "bbb-01" not in service.reserved_pressure()


def test_without_the_counter_a_rise_in_meetings_counts() -> None:
    service, clock, pool = service_for({"bbb-01": 0.3, "bbb-02": 0.3})
    pool.pressures["bbb-01"] = 0.5  # 3 → 5 meetings (breakout rooms count here too)
    clock.now += 15
    pool.stamp = clock.now
    service.refresh_placement()
    assert service.reservations.observed == 2 and set(service.reserved_pressure()) == {"bbb-01"}


def test_nodes_not_available_are_never_named() -> None:
    clock = Clock(T0)

    def current() -> list[NodeReading]:
        return [
            NodeReading("bbb-01", timestamp=T0, meetings=1, participants=10),
            NodeReading("bbb-02", timestamp=T0, meetings=1, participants=0, held="cordoned"),
            NodeReading("bbb-03", up=False),
            NodeReading("bbb-04", timestamp=T0 - 3600, meetings=0, participants=0),  # stale
            NodeReading("jvb-01", kind="jitsi", timestamp=T0, jitsi_stress=0.0),
        ]

    service = PlannerService(lambda: pd.DataFrame(), read_current=current, clock=clock)
    service.refresh_placement()
    names = {service.next_node(expected_participants=1)["node"] for _ in range(20)}
    assert names == {"bbb-01"}  # held (operator/maintenance), down, stale, Jitsi: never


def test_a_stale_placement_names_no_node() -> None:
    service, clock, pool = service_for({"bbb-01": 0.1})
    service.next_node()
    clock.now += service.placement_max_age + 1  # current data stopped coming
    with pytest.raises(NoNodeAvailable, match="old"):
        service.next_node()
    pool.stamp = clock.now
    service.refresh_placement()
    assert service.next_node()["node"] == "bbb-01"


def test_best_nodes_are_one_band_from_the_least_pressed() -> None:
    from confscale.planner.reservations import best_nodes

    pressures = {"a": 0.1, "b": 0.3, "c": 0.35, "d": 0.2}
    assert best_nodes(pressures, 0.1) == {"a", "d"}  # 0.2 is exactly one band up: in
    assert best_nodes(pressures, 0.0) == {"a"} and best_nodes({}, 1.0) == frozenset()
    assert best_nodes(pressures, 1.0) == set(pressures)
