"""1,000 simulated nodes in one confscale-sim process: getMeetings for every node.

One cycle = one signed getMeetings per node, as the exporter polls the pool. Cycles run
with 32 client threads (keep-alive session per thread) against the simulator in its own
process. Compared in the same run:
  * the simulator with its render cache (whole answer per instant, each meeting's XML
    per attendance segment) vs the same pool rendering every answer from scratch, and
  * 32 concurrent client threads vs one sequential client.
Each cycle polls a new simulated instant 15 s after the last, as the exporter would.

    .venv/bin/python -m bench.bench_sim [--nodes 1000] [--threads 32] [--cycles 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
from confscale.simulator.admin import SimPool

SECRET = "bench-secret"  # noqa: S105 - a throwaway pool's secret


def start_simulator(
    nodes: int, load_scale: float, start: str, *extra: str
) -> tuple[subprocess.Popen, str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "confscale.simulator.cli",
            "--web.listen-address=127.0.0.1:0",
            f"--pool.nodes={nodes}",
            "--clock.frozen",
            "--bbb.checksum=sha256",
            f"--model.load-scale={load_scale}",
            f"--clock.start={start}",
            "--log.format=json",
            *extra,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CONFSCALE_SIM_SECRET": SECRET},
    )
    assert proc.stderr is not None
    line = proc.stderr.readline().strip()
    try:
        address = json.loads(line)["address"]  # the "listening" line names the bound port
    except (ValueError, KeyError):
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}") from None
    return proc, address, time.perf_counter() - started


def cycle(urls: list[str], threads: int) -> tuple[float, int]:
    """Wall seconds and bytes for one getMeetings per URL."""
    local = threading.local()

    def fetch(url: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        response = session.get(url, timeout=30)
        response.raise_for_status()
        return len(response.content)

    started = time.perf_counter()
    if threads == 1:
        sizes = [fetch(u) for u in urls]
    else:
        with ThreadPoolExecutor(threads) as pool:
            sizes = list(pool.map(fetch, urls))
    return time.perf_counter() - started, sum(sizes)


def measure(
    label: str, runs: int, before: Callable[[], object], urls: list[str], threads: int
) -> float:
    times = []
    size = 0
    for _ in range(runs):
        before()
        seconds, size = cycle(urls, threads)
        times.append(seconds)
    best, median = min(times), statistics.median(times)
    print(
        f"{label:<44} median {median:6.2f}s  best {best:6.2f}s  "
        f"{len(urls) / median:7.0f} req/s  {size / len(urls) / 1024:6.1f} KiB/node"
    )
    return median


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--start", default="2026-10-06T13:00:00Z", help="simulated instant")
    parser.add_argument(
        "--load-scale",
        type=float,
        default=4.0,
        help="4 ≈ 10 meetings per node at the default instant",
    )
    args = parser.parse_args(argv if argv is not None else [])
    cached_proc, url, startup = start_simulator(args.nodes, args.load_scale, args.start)
    plain_proc, plain_url, _ = start_simulator(
        args.nodes, args.load_scale, args.start, "--web.no-render-cache"
    )
    try:
        pool = SimPool(url, secret=SECRET)
        plain = SimPool(plain_url, secret=SECRET)
        urls = [pool.api_url(name, "getMeetings") for name in pool.names]
        plain_urls = [plain.api_url(name, "getMeetings") for name in plain.names]
        truth = pool.truth()["nodes"]
        meetings = sum(n["meetings"] for n in truth.values()) / len(truth)
        print(
            f"{args.nodes} nodes ready in {startup:.2f}s; {meetings:.1f} meetings/node; "
            f"{os.cpu_count()} CPUs shared by server and client"
        )
        # every cycle polls a new simulated instant 15 s later, as the exporter would
        cached = measure(
            f"{args.threads} threads, render cache", args.cycles,
            lambda: pool.advance(15), urls, args.threads,
        )  # fmt: skip
        uncached = measure(
            f"{args.threads} threads, no render cache", args.cycles,
            lambda: plain.advance(15), plain_urls, args.threads,
        )  # fmt: skip
        sequential = measure(
            "1 thread, render cache", 1, lambda: pool.advance(15), urls, 1
        )  # fmt: skip
        print(f"ratio no cache / cache ({args.threads} threads): {uncached / cached:.2f}x")
        print(f"ratio 1 thread / {args.threads} threads (cache): {sequential / cached:.2f}x")
    finally:
        for proc in (cached_proc, plain_proc):
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main(sys.argv[1:])
