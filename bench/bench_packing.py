"""Packing-aware sizing on known-truth pools, against the analytic bound, and its what-if time.

Each pool's history is drawn from a known meeting mixture; the planner sees only the
history. Prints, per pool: the truth (planner.synthetic.true_servers, 2,000 trials of
fresh meetings), the packing-aware count, the fluid and analytic bounds, and the time of
a what-if with a new input (a new Monte Carlo) and of a repeated one (a cached result),
and the count with every arrival placed one by one (no even spread of the early ones).

    nice .venv/bin/python -m bench.bench_packing
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from confscale.planner.mix import demand_mix, meeting_table
from confscale.planner.packing import place_least_loaded
from confscale.planner.peaks import pool_totals
from confscale.planner.resources import prior_model
from confscale.planner.sizing import NodeCapacity, WhatIf, effective_capacity, size_pool
from confscale.planner.synthetic import MeetingKind, meeting_history, true_servers

SMALL = MeetingKind(0.5, (2, 6), 0.8, 0.2, (1, 4))
SEMINAR = MeetingKind(0.35, (10, 30), 0.6, 0.4, (3, 8))
LECTURE = MeetingKind(0.15, (40, 120), 0.1, 0.9, (1, 2))
POOLS = (
    ("equal meetings (R=0)", [MeetingKind(1, (20, 20), 0.3, 0.7)], 1000, NodeCapacity(), 0),
    ("equal meetings", [MeetingKind(1, (20, 20), 0.3, 0.7)], 1000, NodeCapacity(), 1),
    ("mix of sizes", [SMALL, SEMINAR, LECTURE], 1500, NodeCapacity(), 1),
    (
        "cpu-bound (2 cores)",
        [MeetingKind(1, (22, 28), 1.0, 0.0)],
        600,
        NodeCapacity(cpu_cores=2),
        1,
    ),
    (
        "bandwidth-bound (100 Mbit/s)",
        [MeetingKind(1, (12, 18), 0.5, 0.5, (3, 5))],
        900,
        NodeCapacity(link_bytes_per_second=12.5e6),
        1,
    ),
    (
        "one huge lecture",
        [MeetingKind(0.98, (3, 10), 0.5, 0.5, (0, 2)), MeetingKind(0.02, (140, 160), 0.05, 0.95)],
        1200,
        NodeCapacity(),
        1,
    ),
    ("big pool, small meetings", [SMALL, SEMINAR], 12000, NodeCapacity(), 1),
)


def main() -> None:
    model = prior_model()
    print(f"{'pool':30} {'truth':>5} {'count':>5} {'fluid':>5} {'analytic':>8} "
          f"{'used':>8} {'new what-if':>11} {'repeat':>7} {'all placed':>10}")  # fmt: skip
    for name, kinds, demand, capacity, redundancy in POOLS:
        what_if = WhatIf(redundancy=redundancy)
        history = meeting_history(
            kinds,
            nodes=8,
            days=7,
            seed=1,
            cpu_count=capacity.cpu_cores,
            link_bytes_per_second=capacity.link_bytes_per_second,
        )
        pool = pool_totals(history)
        table, mix = meeting_table(history, pool), demand_mix(pool)
        index = pd.date_range("2026-10-01", periods=3, freq="1h", tz="UTC")
        forecast = pd.DataFrame(
            {
                "actual": [demand, np.nan, np.nan],
                "median": demand,
                "upper_95": [np.nan, demand, demand],
            },
            index=index,
        )
        args = dict(mix=mix, model=model, capacity=capacity, servers_online=4, meetings=table)
        started = time.perf_counter()
        sizing = size_pool(forecast, what_if=what_if, **args)
        fresh = time.perf_counter() - started
        started = time.perf_counter()
        size_pool(forecast, what_if=what_if, **args)
        repeat = time.perf_counter() - started
        packing = sizing.packing["next_peak"]
        caps = effective_capacity(capacity, model, what_if)
        truth = (
            true_servers(
                kinds, demand, caps, model, what_if, trials=2000, start=packing["fluid_bound"]
            )
            if demand <= 2000
            else None
        )
        exact = packing["servers"]
        if packing["used"] == "packing":  # the same count with every arrival placed
            full = place_least_loaded.__defaults__
            place_least_loaded.__defaults__ = (None,)
            table.results.clear()
            exact = size_pool(forecast, what_if=what_if, **args).packing["next_peak"]["servers"]
            place_least_loaded.__defaults__ = full
        print(
            f"{name:30} {truth if truth is not None else '-':>5} {packing['servers']:>5} "
            f"{packing['fluid_bound']:>5} {packing['analytic_bound']:>8} {packing['used']:>8} "
            f"{fresh * 1e3:>9.0f}ms {repeat * 1e3:>5.1f}ms {exact:>10}",
            flush=True,
        )


if __name__ == "__main__":
    main()
