"""Rule evaluation at pool scale: alerts/ (recording rules + alerts on the recorded series)
against the obvious alternative, the same alerts with the recorded expressions inlined.

Writes 40 minutes of contract series for N nodes (CPU, uplink counters, link capacity,
up) as OpenMetrics, backfills them with ``promtool tsdb create-blocks-from openmetrics``,
starts a real Prometheus on 127.0.0.1 with both rule sets (evaluated at the same instants
over the same data), and reads Prometheus's own per-group evaluation durations.

The inlined variant is what one writes without recording rules: every alert computes its
rates from the raw counters, and the 30-minute trend of the link alert becomes a
subquery. Both variants sit in one Prometheus, so they share the 2 cores equally.

    .venv/bin/python -m bench.bench_alerts [--nodes 1000] [--seconds 15] [--interval 5]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "alerts" / "rules"
CAPACITY = 62.5e6  # bytes/s, 500 Mbit/s
HISTORY_MINUTES = 40
STEP_SECONDS = 15
LAST_DURATION = re.compile(
    r'^prometheus_rule_group_last_duration_seconds\{rule_group="[^"]*;([^"]+)"\} (\S+)$', re.M
)
# Recorded series the inlined alerts compute themselves (the rate-based ones).
INLINED = (
    "node:confscale_network_transmit_utilisation:ratio_rate5m",
    "node:confscale_network_receive_utilisation:ratio_rate5m",
    "node:confscale_network_transmit_bytes:rate5m",
    "node:confscale_network_receive_bytes:rate5m",
    "node:confscale_link_capacity_bytes_per_second:max",
    "node:confscale_cpu_utilisation:ratio_rate5m",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_history(path: Path, nodes: int, end: int) -> int:
    """OpenMetrics text of the contract series the rules read; returns the sample count."""
    rng = random.Random(1)
    steps = range(end - HISTORY_MINUTES * 60, end + 1, STEP_SECONDS)
    names = [f"bbb-{i:04d}" for i in range(1, nodes + 1)]
    # Per node a base utilisation and a slope per minute; a few nodes run hot.
    load = {
        n: (rng.uniform(0.1, 0.6) if rng.random() > 0.02 else 0.85, rng.uniform(-1, 1) / 400)
        for n in names
    }
    samples = 0
    with path.open("w") as out:

        def family(name: str, kind: str, series: dict[str, list[tuple[int, float]]]) -> None:
            nonlocal samples
            out.write(f"# TYPE {name} {kind}\n")
            sample_name = f"{name}_total" if kind == "counter" else name
            for labels, points in series.items():
                for t, v in points:
                    out.write(f"{sample_name}{{{labels}}} {v:.17g} {t}\n")
                samples += len(points)

        def utilisation(node: str, t: int) -> float:
            base, slope = load[node]
            return min(1.1, max(0.0, base + slope * (t - steps[0]) / 60))

        def counter(node: str, scale: float, share: float) -> list[tuple[int, float]]:
            total, points = 0.0, []
            for t in steps:
                total += utilisation(node, t) * share * scale * STEP_SECONDS
                points.append((t, total))
            return points

        lab = 'job="confscale",pool="bench",node="{}"'
        family(
            "confscale_node_up",
            "gauge",
            {lab.format(n) + ',source="bbb"': [(t, 1) for t in steps] for n in names},
        )
        family(
            "confscale_node_link_capacity_bytes_per_second",
            "gauge",
            {lab.format(n): [(t, CAPACITY) for t in steps] for n in names},
        )
        family(
            "confscale_node_network_transmit_bytes",
            "counter",
            {lab.format(n): counter(n, CAPACITY, 1.0) for n in names},
        )
        family(
            "confscale_node_network_receive_bytes",
            "counter",
            {lab.format(n): counter(n, CAPACITY, 0.2) for n in names},
        )
        cpu: dict[str, list[tuple[int, float]]] = {}
        for n in names:
            cpu[lab.format(n) + ',mode="user"'] = counter(n, 8, 0.9)
            idle, points = 0.0, []
            for t in steps:
                idle += (1 - 0.9 * utilisation(n, t)) * 8 * STEP_SECONDS
                points.append((t, idle))
            cpu[lab.format(n) + ',mode="idle"'] = points
        family("confscale_node_cpu_seconds", "counter", cpu)
        out.write("# EOF\n")
    return samples


def inline_alerts(interval: int) -> dict[str, Any]:
    """The alerts of alerts/rules with the rate-based recorded series written out."""
    records: dict[str, str] = {}
    alerts: list[dict[str, Any]] = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule and "labels" not in rule:
                    records[rule["record"]] = rule["expr"].strip()
                elif "alert" in rule and group["name"] == "confscale-node.alerts":
                    alerts.append(rule)

    def expand(expr: str) -> str:
        for name in INLINED:
            if name not in expr:
                continue
            body = expand(records[name])
            # A recorded series read over a range becomes a subquery.
            expr = re.sub(
                re.escape(name) + r"\[(\d+[smh])\]",
                lambda m, b=body: f"({b})[{m.group(1)}:{interval}s]",
                expr,
            )
            expr = re.sub(re.escape(name) + r"(?![\w:])", lambda _m, b=body: f"({b})", expr)
        return expr

    rules = []
    for alert in alerts:
        rule = {
            **alert,
            "alert": "Inline" + alert["alert"],
            "expr": expand(alert["expr"]).replace(
                'alertname="Confscale', 'alertname="InlineConfscale'
            ),
        }
        rule.pop("annotations", None)
        rules.append(rule)
    return {"groups": [{"name": "inline.alerts", "rules": rules}]}


def run_prometheus(
    binary: str, work: Path, data: Path, rule_files: list[Path], args: argparse.Namespace
) -> tuple[dict[str, list[float]], int]:
    """Evaluate ``rule_files`` over ``data``; per-group durations and nodes recorded."""
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"evaluation_interval": f"{args.interval}s"},
                "rule_files": [str(p) for p in rule_files],
            }
        )
    )
    log_path = work / f"prometheus-{data.name}.log"
    url = f"http://127.0.0.1:{port}"
    durations: dict[str, list[float]] = {}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            time.sleep(args.interval)  # the first evaluation warms the caches
            stop = time.monotonic() + args.seconds
            while time.monotonic() < stop:
                # Prometheus's own metrics (no self-scrape needed): last duration per group.
                text = requests.get(f"{url}/metrics", timeout=10).text
                for group, value in LAST_DURATION.findall(text):
                    durations.setdefault(group, []).append(float(value))
                time.sleep(args.interval)
            check = requests.get(
                f"{url}/api/v1/query",
                timeout=10,
                params={"query": "count(rate(confscale_node_network_transmit_bytes_total[5m]))"},
            ).json()
        finally:
            proc.terminate()
            proc.wait(30)
    if not durations:
        raise SystemExit("no rule evaluations: " + log_path.read_text()[-2000:])
    result = check["data"]["result"]
    return durations, int(float(result[0]["value"][1])) if result else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15, help="measuring time per variant")
    parser.add_argument("--interval", type=int, default=5, help="evaluation interval, s")
    args = parser.parse_args(argv)
    prometheus = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if not prometheus or not promtool:
        raise SystemExit("prometheus/promtool not found: bash scripts/install-debian-deps.sh test")

    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        work = Path(tmp)
        end = int(time.time())
        started = time.perf_counter()
        samples = write_history(work / "history.om", args.nodes, end)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                str(work / "history.om"),
                str(work / "data"),
            ],
            check=True,
            timeout=600,
        )
        backfilled = time.perf_counter() - started
        (work / "history.om").unlink()

        ours_files = []
        for path in sorted(RULES.glob("*.yml")):
            # Annotations are expanded only for active alerts; drop them on both sides so
            # the comparison is about the expressions.
            data = yaml.safe_load(path.read_text())
            for group in data["groups"]:
                for rule in group["rules"]:
                    rule.pop("annotations", None)
            copy = work / path.name
            copy.write_text(yaml.safe_dump(data, sort_keys=False))
            ours_files.append(copy)
        inline_file = work / "inline.yml"
        inline_file.write_text(yaml.safe_dump(inline_alerts(args.interval), sort_keys=False))
        # One after the other, each on its own copy of the backfilled blocks, so neither
        # variant's evaluations compete with the other's for the CPU.
        shutil.copytree(work / "data", work / "data-inline")
        durations, nodes_seen = run_prometheus(prometheus, work, work / "data", ours_files, args)
        inline_durations, _ = run_prometheus(
            prometheus, work, work / "data-inline", [inline_file], args
        )
        durations.update(inline_durations)

    median = {group: statistics.median(values) * 1000 for group, values in durations.items()}
    ours = median.get("confscale-node.rules", 0) + median.get("confscale-node.alerts", 0)
    inline = median.get("inline.alerts", 0)
    print(
        f"nodes {args.nodes}, {samples:,} backfilled samples "
        f"(generated in {generated:.1f} s, backfilled in {backfilled:.1f} s); "
        f"{nodes_seen} nodes with data at evaluation time"
    )
    for group, value in sorted(median.items()):
        print(
            f"  {group:28s} median {value:8.1f} ms per evaluation "
            f"({len(durations[group])} readings)"
        )
    print(
        f"node rules: recording + alerts {ours:.1f} ms vs inlined alerts {inline:.1f} ms "
        f"per evaluation: inlined is {inline / ours if ours else float('nan'):.1f}x slower"
    )


if __name__ == "__main__":
    main()
