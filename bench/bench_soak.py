"""Soak: the real exporter process over many cycles of a faulty 1,000-node pool.

RSS after the first cycle and after the last (flat memory), and the latency of
``/metrics`` scrapes taken continuously while cycles run (scrapes never wait for a cycle)
compared with what a poll-on-scrape exporter (the greenstatic style) would answer in: one
whole cycle per scrape. The simulator's frozen clock moves 15 s before every cycle, so
every cycle sees new meetings; the pool has the fault plan of ``bench/bench_scale.py``.

    .venv/bin/python -m bench.bench_soak [--nodes 1000] [--cycles 8] [--interval 6]
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
import yaml

from bench.bench_scale import apply_faults, exporter_process, fault_plan, node_names, rss_mb
from bench.simpool import prepare, start_simulator

REPO = Path(__file__).resolve().parent.parent
_LAST = re.compile(rb"^confscale_exporter_last_cycle_timestamp_seconds (\S+)$", re.M)
_DURATION = re.compile(rb"^confscale_exporter_cycle_duration_seconds (\S+)$", re.M)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Scraper(threading.Thread):
    """GET /metrics every ``period`` seconds; keeps (start, latency, cycle end, duration)."""

    def __init__(self, url: str, period: float) -> None:
        super().__init__(name="scraper", daemon=True)
        self.url, self.period = url, period
        self.samples: list[tuple[float, float, float, float]] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                started = time.time()
                try:
                    body = session.get(self.url, timeout=10).content
                except requests.RequestException:
                    self.errors += 1
                else:
                    latency = time.time() - started
                    last, duration = _LAST.search(body), _DURATION.search(body)
                    if last and duration:
                        self.samples.append(
                            (started, latency, float(last.group(1)), float(duration.group(1)))
                        )
                self.stop.wait(self.period)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--interval", type=float, default=6.0)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=128)
    parser.add_argument("--scrape-every", type=float, default=0.2)
    args = parser.parse_args(argv)
    secret = secrets.token_hex(16)
    sim, url, sim_args = start_simulator(args.nodes, secret)
    apply_faults(url, fault_plan(node_names(args.nodes), hold=args.timeout + 2))
    exporter = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = prepare(url, sim_args, secret, Path(tmp))
            data = yaml.safe_load(config.read_text())
            data["interval"], data["timeout"] = f"{args.interval:g}s", f"{args.timeout:g}s"
            config.write_text(yaml.safe_dump(data))
            exporter, metrics = exporter_process(config, f"--poll.workers={args.workers}")
            scraper = Scraper(metrics, args.scrape_every)
            rss: list[float] = []
            cycles_seen: list[float] = []
            deadline = time.monotonic() + args.cycles * args.interval * 3 + 60
            while len(rss) < args.cycles and time.monotonic() < deadline:
                try:
                    body = requests.get(metrics, timeout=10).content
                except requests.RequestException:
                    time.sleep(0.2)
                    continue
                last = _LAST.search(body)
                if last and (not cycles_seen or float(last.group(1)) > cycles_seen[-1]):
                    cycles_seen.append(float(last.group(1)))
                    rss.append(rss_mb(exporter.pid))
                    requests.post(f"{url}/_admin/clock", json={"advance": 15}, timeout=10)
                    if not scraper.is_alive():
                        scraper.start()  # from the end of the first cycle on
                time.sleep(0.05)
            scraper.stop.set()
            scraper.join(15)
    finally:
        if exporter is not None:
            exporter.terminate()
            exporter.wait(30)
        sim.terminate()
        sim.wait(30)
    if len(rss) < 2:
        raise SystemExit("the exporter finished fewer than two cycles")
    durations = sorted({d for *_, d in scraper.samples})
    during, between = [], []
    ends = sorted({(end, d) for _, _, end, d in scraper.samples})
    for started, latency, _, _ in scraper.samples:
        in_cycle = any(end - d <= started <= end for end, d in ends) or any(
            started > end for end, _ in ends[-1:]
        )
        (during if in_cycle else between).append(latency)
    cycle = statistics.median(durations) if durations else float("nan")
    print(
        f"pool: {args.nodes} nodes (20 % broken), interval {args.interval:g} s, timeout "
        f"{args.timeout:g} s, {args.workers} workers; {len(rss)} cycles"
    )
    print(
        f"  RSS after cycle 1: {rss[0]:.0f} MB; after cycle {len(rss)}: {rss[-1]:.0f} MB; "
        f"max {max(rss):.0f} MB; last half {statistics.mean(rss[len(rss) // 2 :]):.0f} MB "
        f"average"
    )
    step = max(1, len(rss) // 8)
    trace = ", ".join(f"{i + 1}: {rss[i]:.0f}" for i in range(0, len(rss), step))
    print(f"  RSS (MB) by cycle: {trace}")
    print(f"  cycle duration median {cycle:.2f} s (max {max(durations, default=0):.2f} s)")
    for name, values in (("scrapes during a cycle", during), ("scrapes between", between)):
        if values:
            print(
                f"  {name}: {len(values)}, p50 {percentile(values, 0.5) * 1e3:.1f} ms, "
                f"p99 {percentile(values, 0.99) * 1e3:.1f} ms, max {max(values) * 1e3:.1f} ms"
            )
    print(f"  scrape errors: {scraper.errors}")
    if during:
        print(
            f"  poll-on-scrape would answer in one cycle ({cycle:.2f} s): "
            f"{cycle / percentile(during, 0.99):.0f}x the p99 of scrapes during a cycle"
        )


if __name__ == "__main__":
    main()
