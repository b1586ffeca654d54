"""Planner HTTP server: waitress (what ``confscale-planner serve`` runs) vs werkzeug's
development server (what it ran before), ``GET /api/v1/placement`` at a fixed rate.

Open loop: request *i* is due at ``start + i / rate`` whatever the answers before it did;
its latency runs from that due time to the last byte of the answer, so a server that falls
behind is charged for the queue it builds (no coordinated omission). Clients are separate
processes on loopback, each with keep-alive connections; the servers run one after the
other in a forked child each, on the same planner (a 200-node placement, answered from
memory). Prints p50 / p99 / max, errors and the achieved rate per server, and the ratio.

    .venv/bin/python -m bench.bench_wsgi [--rate 500] [--seconds 15] [--nodes 200]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from confscale.planner.api import create_app
from confscale.planner.service import PlannerService
from confscale.planner.snapshot import PlannerConfig
from confscale.planner.synthetic import synthetic_history
from confscale.planner.wsgi import DEFAULT_THREADS, PlannerServer

from confscale.flags import ListenAddress

PATH = "/api/v1/placement"
FORK = multiprocessing.get_context("fork")


def _serve_waitress(app: Callable[..., Any], port_out: Connection) -> None:
    server = PlannerServer(app, ListenAddress("127.0.0.1", 0))  # threads start in this child
    port_out.send(server.port)
    server.run()


def _serve_werkzeug(app: Callable[..., Any], port_out: Connection) -> None:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    port_out.send(server.server_port)
    server.serve_forever()


def start_server(kind: str, app: Callable[..., Any]) -> tuple[int, Callable[[], None]]:
    """Serve ``app`` with ``kind`` in a forked child; returns its port and a stop function."""
    target = _serve_waitress if kind == "waitress" else _serve_werkzeug
    ours, theirs = FORK.Pipe()
    child = FORK.Process(target=target, args=(app, theirs), daemon=True)
    child.start()
    if not ours.poll(60):
        child.kill()
        raise RuntimeError(f"{kind} did not start")
    port = int(ours.recv())

    def stop() -> None:
        child.terminate()
        child.join(15)
        if child.is_alive():
            child.kill()
            child.join(5)

    return port, stop


def _client(
    port: int, due: list[float], threads: int, out: Connection
) -> None:  # one client process: ``threads`` keep-alive connections share its due times
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    queue = iter(due)

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                at = next(queue, None)
            if at is None:
                break
            wait = at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                conn.request("GET", PATH)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            done = time.perf_counter()
            with lock:
                if ok:
                    latencies.append(done - at)
                else:
                    errors += 1
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.send((latencies, errors))


def load(port: int, rate: float, seconds: float, processes: int, threads: int) -> dict[str, Any]:
    """Send ``rate`` requests per second for ``seconds``; latency figures in ms."""
    count = int(rate * seconds)
    start = time.perf_counter() + 0.5  # every client process is up by then
    due = [start + i / rate for i in range(count)]
    children = []
    for index in range(processes):
        ours, theirs = FORK.Pipe()
        child = FORK.Process(target=_client, args=(port, due[index::processes], threads, theirs))
        child.start()
        children.append((child, ours))
    latencies: list[float] = []
    errors = 0
    for child, ours in children:
        part, failed = ours.recv()
        latencies += part
        errors += failed
        child.join(30)
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [float("nan")]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "requests": count,
        "errors": errors,
        "achieved": len(latencies) / elapsed,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": ordered[-1] * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_wsgi", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per server")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=16, help="connections per process")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N"
    history = synthetic_history(nodes=args.nodes, weeks=3, seed=1)
    service = PlannerService(lambda: history, PlannerConfig())
    if service.refresh() is None:
        raise SystemExit(f"planner refresh failed: {service.status().last_error}")
    app = create_app(service)
    print(
        f"GET {PATH} ({args.nodes} nodes), {args.rate:g} req/s open loop for {args.seconds:g} s, "
        f"{args.processes} client processes × {args.threads} keep-alive connections, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results = {}
    for kind in ("waitress", "werkzeug"):
        port, stop = start_server(kind, app)
        try:
            load(port, args.rate, 2.0, args.processes, args.threads)  # warm up, not counted
            results[kind] = figures = load(
                port, args.rate, args.seconds, args.processes, args.threads
            )
        finally:
            stop()
        threads = f"{DEFAULT_THREADS} threads" if kind == "waitress" else "thread per request"
        print(
            f"{kind:<9} ({threads}): p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms  "
            f"max {figures['max']:7.1f} ms  {figures['achieved']:6.1f} req/s  "
            f"errors {figures['errors']}/{figures['requests']}",
            flush=True,
        )
    fast, slow = results["waitress"], results["werkzeug"]
    print(
        f"ratio werkzeug/waitress: p50 {slow['p50'] / fast['p50']:.2f}x  "
        f"p99 {slow['p99'] / fast['p99']:.2f}x  "
        f"(target: waitress p99 <= 10 ms: {'met' if fast['p99'] <= 10 else 'NOT met'}); "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
