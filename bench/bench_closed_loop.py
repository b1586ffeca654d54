"""Closed loop: the same busy term day placed by four balancer policies, in-process.

The simulator's load model gives the demand (every room the pool's nodes would start that
day, users joining over the first minutes); a policy places each new room on a node; the
nodes' load follows; the signal flows as it really does — the exporter polls every 15 s,
Prometheus' 5-minute rates, the planner's placement every 30 s, Scalelite's poller every
60 s. A discrete-time simulation on a 15-second grid, no sleeps. Policies and the source
they follow: ``bench/closedloop_policies.py``; the world: ``bench/closedloop_pool.py``.
Scenarios: the day as it is, and the same day with one node failing at the peak (its users
re-create their rooms a minute later, through the same balancer).

Figures per policy: node-minutes above any target (CPU 0.75, link 0.8, 200 participants:
``PressureTargets``, the recording rules' table), peak link utilisation, creates sent to a
node that was down, rooms started on a node already over a target, the spread of pressure
across nodes at busy times, and the least-loaded node's share (starvation).

    .venv/bin/python -m bench.bench_closed_loop [--nodes 12] [--scale 2] [--hours 12]
        [--seeds 1,2,3,4,5] [--scenarios day,fail] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from confscale.planner.reservations import NoNodeAvailable
from confscale.simulator.pool import node_names

from bench.closedloop_policies import (
    EXTRA_POLICIES,
    PLACEMENT_SECONDS,
    POLICIES,
    SCALELITE_POLL_SECONDS,
    make_policy,
)
from bench.closedloop_pool import (
    STEP,
    TARGETS,
    PoolLoad,
    Request,
    busy_day,
    demand,
    demand_digest,
)

RETRY_SECONDS = 30.0  # a user whose create failed tries again half a minute later


@dataclass
class Result:
    policy: str
    scenario: str
    demand: str
    rooms: int
    placements: dict[str, int] = field(default_factory=dict)  # meeting id -> times placed
    overload_node_minutes: float = 0.0
    avoidable_node_minutes: float = 0.0  # minus node-minutes a single room alone is over
    by_target: dict[str, float] = field(default_factory=dict)
    peak_link: float = 0.0
    creates_on_down_node: int = 0
    started_overloaded: int = 0
    spread: float = 0.0
    least_share: float = 0.0
    participant_minutes: float = 0.0  # on the nodes within the day
    placed_participant_minutes: float = 0.0  # of the rooms placed (wherever, whenever)
    unplaced: int = 0  # rooms still refused when the day ended
    unplaced_ids: set[str] = field(default_factory=set)
    refused: int = 0  # creates the balancer refused (no server available); retried
    reservations: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0

    def row(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "scenario": self.scenario,
            "overload_node_minutes": round(self.overload_node_minutes, 1),
            "avoidable_overload_node_minutes": round(self.avoidable_node_minutes, 1),
            "by_target": {k: round(v, 1) for k, v in self.by_target.items()},
            "peak_link_utilisation": round(self.peak_link, 3),
            "creates_on_down_node": self.creates_on_down_node,
            "rooms_started_on_overloaded_node": self.started_overloaded,
            "pressure_spread_cv": round(self.spread, 3),
            "least_loaded_node_share": round(self.least_share, 3),
            "rooms": self.rooms,
            "refused_creates": self.refused,
            "rooms_never_placed": self.unplaced,
            "fallbacks": self.fallbacks,
            "reservations": self.reservations,
        }


def run(
    policy_name: str,
    requests: list[Request],
    names: list[str],
    steps: int,
    *,
    fail_at: int | None = None,
    drain_steps: int = 0,
) -> Result:
    """Place ``requests`` with one policy over ``steps`` grid steps (plus ``drain_steps``
    with no new rooms, so reservations can be seen released)."""
    pool = PoolLoad(names, steps + drain_steps)
    policy = make_policy(policy_name, names)
    pending: dict[int, list[Request]] = defaultdict(list)
    for r in requests:
        pending[r.step].append(Request(**{**r.__dict__, "breakouts": list(r.breakouts)}))
    result = Result(
        policy_name, "fail" if fail_at is not None else "day", demand_digest(requests), 0
    )
    over = np.zeros(len(names))
    avoidable = np.zeros(len(names))
    over_by = {"cpu": 0.0, "link": 0.0, "participants": 0.0}
    busy_cv: list[float] = []
    busy = 0.5 * demand_curve(requests, steps).max()  # busy: half the day's peak or more
    total = np.zeros(len(names))
    retry = max(1, round(RETRY_SECONDS / STEP))
    for step in range(steps + drain_steps):
        if step == fail_at:
            for again in pool.fail(names[0], step):
                pending[again.step].append(again)
        policy.tick(pool, step)
        for request in pending.pop(step, []):
            if step >= steps:
                result.unplaced += 1
                result.unplaced_ids.add(request.meeting_id)
                continue
            try:
                node = policy.choose(pool, step, request)
            except NoNodeAvailable:
                result.refused += 1
                request.attempt += 1
                pending[step + retry].append(request)
                continue
            ok = pool.up(node, step)
            policy.created(pool, step, request, node, ok)
            if not ok:
                result.creates_on_down_node += 1
                request.attempt += 1
                pending[step + retry].append(request)
                continue
            u = pool.utilisation(step)
            j = pool.index[node]
            if _over(u, pool, j, step):
                result.started_overloaded += 1
            pool.place(request, node, step)
            result.placed_participant_minutes += (
                (
                    request.profile.participants.sum()
                    + sum(room.participants.sum() for _, room in request.breakouts)
                )
                * STEP
                / 60
            )
            result.placements[request.meeting_id] = result.placements.get(request.meeting_id, 0) + 1
        if step >= steps:
            continue
        u = pool.utilisation(step)
        people = pool.q["participants"][:, step]
        up = np.array([pool.up(n, step) for n in names])
        link = np.maximum(u["tx"], u["rx"])
        flags = {
            "cpu": u["cpu"] > TARGETS.cpu,
            "link": link > TARGETS.link,
            "participants": people > TARGETS.participants,
        }
        any_over = up & (flags["cpu"] | flags["link"] | flags["participants"])
        over += any_over
        avoidable += any_over & ~(pool.q["largest"][:, step] > TARGETS.participants)
        for key, flag in flags.items():
            over_by[key] += float((flag & up).sum()) * STEP / 60
        result.peak_link = max(result.peak_link, float(link[up].max(initial=0.0)))
        pressure = np.maximum.reduce(
            [u["cpu"] / TARGETS.cpu, link / TARGETS.link, people / TARGETS.participants]
        )[up]
        if people.sum() >= busy and pressure.mean() > 0:
            busy_cv.append(float(pressure.std() / pressure.mean()))
        total += np.where(up, people, 0.0)
    result.rooms = len(result.placements)
    result.overload_node_minutes = float(over.sum()) * STEP / 60
    result.avoidable_node_minutes = float(avoidable.sum()) * STEP / 60
    result.by_target = over_by
    result.spread = float(np.mean(busy_cv)) if busy_cv else 0.0
    alive = [j for j, n in enumerate(names) if pool.down_from[n] >= steps]
    mean = total[alive].mean() if alive else 0.0
    result.least_share = float(total[alive].min() / mean) if mean else 0.0
    result.participant_minutes = float(pool.q["participants"][:, :steps].sum()) * STEP / 60
    service = getattr(policy, "service", None)
    if service is not None:  # /next's answers and the rooms the readings showed started
        book = service.reservations
        result.fallbacks = getattr(policy, "fallbacks", 0)
        result.reservations = {
            "answers": getattr(policy, "answers", 0),
            "observed": book.observed,
            "released": book.released,
            "expired": book.expired,
            "open": book.open_count(),
        }
    return result


def _over(u: dict[str, np.ndarray], pool: PoolLoad, j: int, step: int) -> bool:
    return bool(
        u["cpu"][j] > TARGETS.cpu
        or max(u["tx"][j], u["rx"][j]) > TARGETS.link
        or pool.q["participants"][j, step] > TARGETS.participants
    )


def demand_curve(requests: list[Request], steps: int) -> np.ndarray:
    """Pool participants per step as demanded (placement-independent: all rooms summed)."""
    people = np.zeros(steps)
    for r in requests:
        n = min(r.profile.steps, steps - r.step)
        if n <= 0:
            continue
        people[r.step : r.step + n] += r.profile.participants[:n]
    return people


def peak_step(requests: list[Request], steps: int) -> int:
    """The step of the day's highest demand."""
    return int(demand_curve(requests, steps).argmax())


HEADER = (
    f"{'policy':22} {'over':>7} {'avoid':>7} {'vs 1':>5} {'cpu':>5} {'link':>5} {'users':>6} "
    f"{'peak link':>9} {'on down':>7} {'on over':>7} {'refused':>7} {'spread':>6} {'least':>5}"
)


def aggregate(results: list[Result]) -> dict[str, float]:
    """One policy over several days: sums of minutes and counts, worst peak and share."""
    return {
        "over": sum(r.overload_node_minutes for r in results),
        "avoidable": sum(r.avoidable_node_minutes for r in results),
        "cpu": sum(r.by_target["cpu"] for r in results),
        "link": sum(r.by_target["link"] for r in results),
        "users": sum(r.by_target["participants"] for r in results),
        "peak_link": max(r.peak_link for r in results),
        "on_down": sum(r.creates_on_down_node for r in results),
        "on_over": sum(r.started_overloaded for r in results),
        "refused": sum(r.refused for r in results),
        "spread": float(np.mean([r.spread for r in results])),
        "least": min(r.least_share for r in results),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--scale", type=float, default=2.0, help="load model's meetings/day ×")
    parser.add_argument("--hours", type=float, default=12.0, help="from 07:00 UTC")
    parser.add_argument("--seeds", default="1,2,3,4,5", help="one busy day per load-model seed")
    parser.add_argument("--scenarios", default="day,fail", help="day, fail or both")
    parser.add_argument(
        "--policies",
        default=",".join(POLICIES),
        help=f"the first is the anchor (vs 1); also: {', '.join(EXTRA_POLICIES)}",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    started, cpu = time.perf_counter(), time.process_time()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    names = node_names("bbb", args.nodes)
    steps = int(args.hours * 3600 / STEP)
    seeds = [int(x) for x in args.seeds.split(",")]
    days = []
    for seed in seeds:
        requests = demand(
            args.nodes,
            seed=seed,
            scale=args.scale,
            day=busy_day(),
            start_hour=7.0,
            hours=args.hours,
        )
        peak = peak_step(requests, steps)
        curve = demand_curve(requests, steps)
        days.append((seed, requests, peak))
        share = curve.max() / (args.nodes * TARGETS.participants)
        alone = sum((r.profile.participants > TARGETS.participants).sum() for r in requests)
        print(
            f"seed {seed}: {len(requests)} rooms, {sum(r.size for r in requests)} participants, "
            f"peak {curve.max():.0f} participants = {share:.0%} of the pool's target at "
            f"{7 + peak * STEP / 3600:.2f} h UTC (a node fails there in 'fail'); a single room "
            f"over a target alone: {alone * STEP / 60:.1f} node-min; "
            f"demand {demand_digest(requests)}"
        )
    print(
        f"closed loop: {args.nodes} nodes, {busy_day()} 07:00 + {args.hours:g} h, load scale "
        f"{args.scale:g}, {len(seeds)} day(s); step {STEP:g} s, placement every "
        f"{PLACEMENT_SECONDS:g} s, Scalelite poll {SCALELITE_POLL_SECONDS:g} s"
    )
    rows = []
    scenarios = [x for x in args.scenarios.split(",") if x]
    if not scenarios or set(scenarios) - {"day", "fail"}:
        parser.error(f"--scenarios: day, fail or day,fail, got {args.scenarios!r}")
    policies = [x for x in args.policies.split(",") if x]
    unknown = set(policies) - set(POLICIES) - set(EXTRA_POLICIES)
    if not policies or unknown:
        parser.error(f"--policies: unknown {sorted(unknown)}; known {POLICIES + EXTRA_POLICIES}")
    for scenario in scenarios:
        per_policy: dict[str, list[Result]] = {p: [] for p in policies}
        for seed, requests, peak in days:
            fail_at = peak if scenario == "fail" else None
            for p in policies:
                r = run(p, requests, names, steps, fail_at=fail_at)
                per_policy[p].append(r)
                rows.append({"seed": seed, **r.row()})
            assert len({per_policy[p][-1].demand for p in policies}) == 1  # same demand
        totals = {p: aggregate(rs) for p, rs in per_policy.items()}
        anchor = totals[policies[0]]["avoidable"]
        print(f"\n[{scenario}] {HEADER}")
        for p, t in totals.items():
            ratio = t["avoidable"] / anchor if anchor else float("nan")
            print(
                f"{'':{len(scenario) + 3}}{p:22} {t['over']:7.1f} {t['avoidable']:7.1f} "
                f"{ratio:5.2f} {t['cpu']:5.1f} {t['link']:5.1f} {t['users']:6.1f} "
                f"{t['peak_link']:9.3f} {t['on_down']:7d} {t['on_over']:7d} {t['refused']:7d} "
                f"{t['spread']:6.3f} "
                f"{t['least']:5.2f}"
            )
        print(
            f"{'':{len(scenario) + 3}}avoidable per day: "
            + "; ".join(
                f"{p} " + "/".join(f"{r.avoidable_node_minutes:.1f}" for r in rs)
                for p, rs in per_policy.items()
            )
        )
    one, five, fifteen = os.getloadavg()  # the machine may be shared: say how busy
    print(
        f"\n(took {time.perf_counter() - started:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU; load average {one:.2f} {five:.2f} "
        f"{fifteen:.2f} at the end, {load_before} at the start)"
    )
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
