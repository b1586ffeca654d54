"""Planner benchmark: 90 days × 200 nodes of 5-minute history.

Prints the time to generate, load (Parquet + validation), and compute one snapshot
(rates, fit, backtest, forecast, sizing, placement), then the placement API's latency
under concurrent load on loopback — answered from memory — against the obvious
alternative, recomputing the placement (from the history's last rows) on every request.

    .venv/bin/python -m bench.bench_planner [--days 90] [--nodes 200] [--requests 2000]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from confscale.planner.api import create_app
from confscale.planner.forecast import ForecastConfig
from confscale.planner.history import derive_rates, load_history
from confscale.planner.nodes import readings_from_history
from confscale.planner.placement import place
from confscale.planner.service import PlannerService
from confscale.planner.snapshot import PlannerConfig, json_safe, what_if
from confscale.planner.synthetic import synthetic_history
from flask import Flask, Response
from werkzeug.serving import make_server


def timed(label: str, action: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {seconds:8.2f} s", flush=True)
    return result, seconds


def latencies(url: str, total: int, workers: int) -> list[float]:
    """Seconds per GET of ``url`` with ``workers`` concurrent keep-alive clients."""

    def worker(count: int) -> list[float]:
        session = requests.Session()
        out = []
        for _ in range(count):
            started = time.perf_counter()
            response = session.get(url, timeout=30)
            response.raise_for_status()
            out.append(time.perf_counter() - started)
        return out

    share = [total // workers] * workers
    with ThreadPoolExecutor(workers) as pool:
        return [x for chunk in pool.map(worker, share) for x in chunk]


def serve(app: Flask) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` from a forked child process, so clients and server do not share a GIL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    child = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    child.start()
    server.socket.close()  # the child owns the listening socket now

    def stop() -> None:
        child.terminate()
        child.join(10)

    return f"http://127.0.0.1:{server.server_port}", stop


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_planner")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--refit-only", action="store_true", help="only the refits (with and without ets)"
    )
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    weeks = max(1, round(args.days / 7))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.parquet"
        frame, _ = timed(
            f"generate {weeks} weeks × {args.nodes} nodes",
            lambda: synthetic_history(nodes=args.nodes, weeks=weeks, seed=1),
        )
        print(f"rows: {len(frame):,}")
        timed("write Parquet", lambda: frame.to_parquet(path, index=False))
        history, load_s = timed("load + validate Parquet", lambda: load_history(path))
    service = PlannerService(lambda: history, PlannerConfig())
    snapshot, snap_s = timed(
        "snapshot (rates, fit, backtest, forecast, size)", service.refresh
    )  # what one refit of the service costs; the scheduler is not started
    if snapshot is None:
        raise SystemExit(f"planner refresh failed: {service.status().last_error}")
    print(f"servers needed {snapshot.servers_needed}, binding {snapshot.sizing.binding_constraint}")
    print(f"methods by horizon {snapshot.method_by_horizon}")
    # the same refit without the statistical candidate: the slot-median and seasonal-naive
    # pair the planner chose from before (bands still adaptive; packing still on)
    before = PlannerService(
        lambda: history,
        PlannerConfig(forecast=ForecastConfig(methods=("confscale", "seasonal_naive"))),
    )
    _, before_s = timed("snapshot without the ets candidate", before.refresh)
    print(f"refit ratio with / without ets: {snap_s / before_s:.2f}x")
    # the first refit of a process also imports statsmodels (~1.5-2.5 s); a running
    # service pays that once, so the steady-state refit is this one
    _, warm_s = timed("snapshot again (statsmodels imported)", service.refresh)
    print(f"steady-state refit ratio with / without ets: {warm_s / before_s:.2f}x")
    sized, whatif_s = timed("what_if (re-size, no refit)", lambda: what_if(snapshot, growth=1.5))
    timed("what_if again (cached)", lambda: what_if(snapshot, growth=1.5))
    print(f"what_if servers needed {sized.servers_needed}")  # type: ignore[attr-defined]
    if args.refit_only:
        return

    fast_url, stop_fast = serve(create_app(service))
    rates = derive_rates(history.groupby("node").tail(2))

    naive = Flask("naive")

    @naive.get("/api/v1/placement")
    def recompute() -> Response:  # the obvious alternative: compute on every request
        readings = readings_from_history(rates)
        placement = place(readings, now=snapshot.generated_at)
        return Response(json.dumps(json_safe(placement.as_dict())), mimetype="application/json")

    naive_url, stop_naive = serve(naive)
    try:
        latencies(f"{fast_url}/api/v1/placement", 100, args.workers)  # warm up
        fast = latencies(f"{fast_url}/api/v1/placement", args.requests, args.workers)
        slow_n = max(args.workers * 10, args.requests // 10)
        slow = latencies(f"{naive_url}/api/v1/placement", slow_n, args.workers)
    finally:
        stop_fast()
        stop_naive()
    print(
        f"placement from memory ({args.requests} req, {args.workers} clients): "
        f"p50 {pct(fast, 0.5):.2f} ms  p99 {pct(fast, 0.99):.2f} ms"
    )
    print(
        f"placement recomputed per request ({slow_n} req): "
        f"p50 {pct(slow, 0.5):.2f} ms  p99 {pct(slow, 0.99):.2f} ms"
    )
    print(
        f"ratio recompute/memory: p50 {pct(slow, 0.5) / pct(fast, 0.5):.1f}x  "
        f"p99 {pct(slow, 0.99) / pct(fast, 0.99):.1f}x"
    )
    print(
        f"full recompute per request would cost {load_s + snap_s:.1f} s "
        f"(load + snapshot), {(load_s + snap_s) / (pct(fast, 0.5) / 1000):,.0f}x the p50"
    )
    print(
        f"what_if {whatif_s * 1000:.1f} ms vs refit {snap_s:.2f} s: "
        f"{snap_s / max(whatif_s, 1e-9):,.0f}x"
    )


if __name__ == "__main__":
    main()
