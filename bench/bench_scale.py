"""1,000 nodes with a fifth of them broken: one exporter vs sequential polling vs one
exporter process per node.

The simulator (frozen clock, its own Tuesday 10:30) serves 1,000 BBB nodes on 127.0.0.1;
10 % hold the connection without answering, 5 % answer garbage (HTML or truncated XML),
5 % answer ``checksumError`` (``fault_plan``, shared with tests/test_scale_faults.py). The
exporter's cycle runs in a child process (``bench.bench_exporter``'s: warm-up cycles,
then five measured, the median reported) with the pool's ``timeout`` (default 2 s):

- concurrent with a worker for every dead source and some to spare (``--workers 256``:
  the 100 silent nodes are 200 sources, getMeetings and node_exporter), with 128 (two
  waves of them) and the exporter's default 64 (four), or any counts given;
- sequential (one worker) on the first ``--sequential-nodes`` nodes, scaled to the pool;
- one exporter process per node (the "one exporter per server" setup): RSS of a few
  real ``confscale-exporter`` processes with a one-node configuration, times the pool.

First, without any process: the share of nodes a resize of ``--shard`` moves, rendezvous
hashing (``exporter/sharding.py``) vs ``crc32(name) mod N``.

    .venv/bin/python -m bench.bench_scale [--nodes 1000] [--timeout 2] [--workers 256,128,64]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import requests
import yaml

from bench.bench_exporter import TARGET_CPU, TARGET_RSS_MB, run_child
from bench.simpool import free_port, load_average, prepare, start_simulator

REPO = Path(__file__).resolve().parent.parent

Plan = dict[str, tuple[str, float | None, str, str | None]]


def fault_plan(names: list[str], hold: float = 3) -> Plan:
    """node -> (simulator fault, argument, bbb reason, host reason or None when host is up).

    Of the BBB nodes, every 10th times out (the connection is held ``hold`` seconds),
    every 20th answers garbage (HTML or truncated XML), every 20th a checksum error.
    """
    bbb = [n for n in names if n.startswith("bbb-")]
    plan: Plan = {}
    for i, node in enumerate(bbb):
        if i % 10 == 3:
            plan[node] = ("timeout", hold, "timeout", "timeout")
        elif i % 40 == 5:
            plan[node] = ("html", None, "parse", "parse")
        elif i % 40 == 25:
            plan[node] = ("invalid_xml", None, "parse", "parse")
        elif i % 20 == 7:
            plan[node] = ("checksum", None, "checksum", None)
    return plan


def apply_faults(url: str, plan: Plan) -> None:
    with requests.Session() as session:
        session.delete(f"{url}/_admin/faults", timeout=30).raise_for_status()
        for node, (mode, arg, _, _) in plan.items():
            body = {"node": node, "mode": mode, "arg": arg}
            session.post(f"{url}/_admin/faults", json=body, timeout=30).raise_for_status()


def node_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"bbb-{i:0{width}d}" for i in range(1, count + 1)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def exporter_process(config: Path, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """A real confscale-exporter on a free 127.0.0.1 port; (process, its /metrics URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "confscale.exporter.cli",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
            *flags,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}/metrics"


def one_process_per_node(config: Path, processes: int, workdir: Path) -> list[float]:
    """RSS of ``processes`` real exporters, each configured with one node of the pool."""
    data = yaml.safe_load(config.read_text())
    procs = []
    try:
        for index in range(processes):
            one = {**data, "nodes": [data["nodes"][index]]}
            path = workdir / f"one-{index}.yml"
            path.write_text(yaml.safe_dump(one))
            procs.append(exporter_process(path))
        sizes = []
        for proc, url in procs:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if (
                        "confscale_exporter_cycle_duration_seconds "
                        in requests.get(url, timeout=5).text
                    ):
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            sizes.append(rss_mb(proc.pid))
        return sizes
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(30)


def resize_moves(names: list[str]) -> None:
    """Share of nodes that change owner on N -> N+1 shards, rendezvous vs modulo."""
    from confscale.exporter.sharding import assignment

    for before in (2, 4, 8):
        after = before + 1
        old, new = assignment(names, before), assignment(names, after)
        rendezvous = sum(old[n] != new[n] for n in names) / len(names)
        modulo = sum(
            zlib.crc32(n.encode()) % before != zlib.crc32(n.encode()) % after for n in names
        ) / len(names)
        print(
            f"  resize {before} -> {after} shards: rendezvous moves {rendezvous:.1%} of "
            f"{len(names)} nodes (ideal {1 / after:.1%}), mod-N {modulo:.1%}: "
            f"{modulo / rendezvous:.1f}x fewer moves"
        )
    started = time.perf_counter()
    assignment(names, 8)
    print(f"  owner of every node among 8 shards: {(time.perf_counter() - started) * 1e3:.1f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=2.0, help="the pool's poll timeout")
    parser.add_argument(
        "--workers",
        default="256,128,64",
        help="worker counts to measure, comma-separated; the first is the reference",
    )
    parser.add_argument("--sequential-nodes", type=int, default=20)
    parser.add_argument("--processes", type=int, default=4, help="one-node exporters to start")
    args = parser.parse_args(argv)
    resize_moves(node_names(args.nodes))
    secret = secrets.token_hex(16)
    sim, url, sim_args = start_simulator(args.nodes, secret)
    plan = fault_plan(node_names(args.nodes), hold=args.timeout + 2)
    kinds = [mode for mode, *_ in plan.values()]
    print(
        f"pool: {args.nodes} simulated BBB nodes on 127.0.0.1 ({os.cpu_count()} cores shared "
        f"with the simulator); faults: "
        + ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))
        + f"; timeout {args.timeout:g} s; {load_average()}"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = prepare(url, sim_args, secret, Path(tmp))
            data = yaml.safe_load(config.read_text())
            data["timeout"] = f"{args.timeout:g}s"
            data["interval"] = f"{max(15, 4 * args.timeout):g}s"
            config.write_text(yaml.safe_dump(data))
            apply_faults(url, plan)
            results = {}
            counts = [int(w) for w in args.workers.split(",")]
            runs = [(f"concurrent, {w} workers", w, args.nodes) for w in counts]
            runs.append(("sequential, 1 worker", 1, args.sequential_nodes))
            for label, workers, nodes in runs:
                if nodes <= 0:
                    continue
                result = run_child(config, workers, nodes, sim.pid)
                results[label] = (result, nodes)
                names = node_names(args.nodes)[:nodes]
                expected = sum(1 + (plan[n][3] is not None) for n in names if n in plan)
                print(
                    f"  {label:<26} {nodes:5d} nodes: cycle {result['wall']:6.2f} s wall, "
                    f"{result['cpu']:5.2f} s CPU, peak RSS {result['rss_mb']:4.0f} MB, "
                    f"{result['failed']} of {result['polls']} polls failed "
                    f"({expected} broken; {result['failed'] - expected} healthy polls missed "
                    f"the timeout); quick polls at once "
                    f"{'->'.join(map(str, result['concurrency']))}; {result['load']}"
                )
            best, _ = results[f"concurrent, {counts[0]} workers"]
            print(
                f"  cycle / timeout: {best['wall'] / args.timeout:.2f} "
                f"(dead sources wait one timeout side by side)"
            )
            print(
                f"  targets (#18, a fifth broken): cycle bounded by the timeout: "
                f"{best['wall']:.2f} s for a {args.timeout:g} s timeout "
                f"({'met' if best['wall'] <= args.timeout + TARGET_CPU else 'NOT met'}: at most "
                f"the timeout plus the healthy polls' {TARGET_CPU:g} s); exporter CPU "
                f"{best['cpu']:.2f} s <= {TARGET_CPU:g} s "
                f"{'met' if best['cpu'] <= TARGET_CPU else 'NOT met'}; RSS "
                f"{best['rss_mb']:.0f} MB <= {TARGET_RSS_MB} MB "
                f"{'met' if best['rss_mb'] <= TARGET_RSS_MB else 'NOT met'}"
            )
            if "sequential, 1 worker" in results:
                seq, nodes = results["sequential, 1 worker"]
                scaled = seq["wall"] * args.nodes / nodes
                print(
                    f"  sequential scaled to {args.nodes} nodes: {scaled:.1f} s; "
                    f"ratio sequential / concurrent: {scaled / best['wall']:.0f}x"
                )
            if args.processes > 0:
                sizes = one_process_per_node(config, args.processes, Path(tmp))
                each = statistics.median(sizes)
                print(
                    f"  one exporter process per node: {each:.0f} MB RSS each "
                    f"({', '.join(f'{s:.0f}' for s in sizes)}), x{args.nodes} = "
                    f"{each * args.nodes / 1024:.1f} GB vs {best['rss_mb']:.0f} MB for one "
                    f"process: {each * args.nodes / best['rss_mb']:.0f}x"
                )
    finally:
        sim.terminate()
        sim.wait(30)


if __name__ == "__main__":
    main()
