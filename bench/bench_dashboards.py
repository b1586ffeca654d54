"""Dashboard load: the pool overview's panel queries read recording rules; the obvious
alternative inlines the rules' expressions and sums the raw per-node series on every load.

Takes a week of history for N nodes from ``confscale-sim history`` (Parquet), writes the
raw per-node gauges the pool-total rules of alerts/ read plus those rules' series (the pool
sums at the same 5-minute instants, what Prometheus records) as OpenMetrics, backfills both
with ``promtool tsdb create-blocks-from openmetrics``, starts a real Prometheus on 127.0.0.1
and times each panel query over the week as Grafana issues it (`query_range`, 10-minute
step) both ways. Both ways must return the same numbers before anything is timed.

    .venv/bin/python -m bench.bench_dashboards [--nodes 50] [--weeks 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from dashboards import checks, pool_overview

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "alerts" / "rules" / "confscale-recording.yml"
STEP_SECONDS = 600


def raw_pool_rules() -> dict[str, str]:
    """Recording rules of the pool totals computed straight from raw gauges."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {r["record"]: r["expr"].strip() for g in groups for r in g["rules"] if "record" in r}
    return {
        name: expr
        for name, expr in rules.items()
        if name.startswith("pool:") and ":" not in expr and "rate" not in expr
    }


def inline(expr: str, rules: dict[str, str]) -> str:
    """``expr`` with each recorded series replaced by the rule's expression."""
    for name, body in rules.items():
        expr = re.sub(rf"\b{re.escape(name)}(\{{[^}}]*\}})?", f"({body})", expr)
    return expr


def panel_pairs(rules: dict[str, str]) -> list[tuple[str, str, str]]:
    """(panel, recorded query, inlined query) for the overview queries using those rules."""
    values = {"pool": ".*", "__rate_interval": "615s", "__interval": "600s"}
    pairs = []
    for query in checks.panel_queries(pool_overview.build()):
        used = [name for name in rules if name in query.expr]
        others = re.findall(r"\b[a-z]+:[a-z0-9_]+:[a-z0-9_]+\b", query.expr)
        if used and set(others) <= set(rules):
            recorded = checks.substitute(query.expr, values)
            pairs.append((f"{query.panel} {query.ref_id}", recorded, inline(recorded, rules)))
    return pairs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        sys.exit(f"{what} failed:\n{done.stderr[-2000:]}")


@contextlib.contextmanager
def prometheus(workdir: Path, data: Path) -> Iterator[str]:
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\n")
    binary = shutil.which("prometheus") or sys.exit("prometheus not found")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=60d",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            sys.exit("prometheus did not become ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def query_range(url: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    response = requests.get(
        f"{url}/api/v1/query_range",
        timeout=60,
        params={"query": expr, "start": start, "end": end, "step": STEP_SECONDS},
    )
    body = response.json()
    if body.get("status") != "success":
        sys.exit(f"query failed: {expr}: {body.get('error')}")
    return body["data"]["result"]


def values(result: list[dict[str, Any]]) -> dict[str, list[tuple[float, str]]]:
    return {json.dumps(r["metric"], sort_keys=True): r["values"] for r in result}


def timed(url: str, expr: str, start: float, end: float, rounds: int) -> float:
    """Median seconds of ``rounds`` runs (after one warm-up)."""
    query_range(url, expr, start, end)
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        query_range(url, expr, start, end)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def write_openmetrics(history: Path, out: Path, rules: dict[str, str]) -> int:
    """Raw gauges the rules read, and the rules' pool sums; returns the sample count."""
    import pandas as pd

    frame = pd.read_parquet(history)
    frame["t"] = frame["timestamp"].astype("int64") // 10**9
    columns = {
        re.search(r"\((\w+)\)\s*$", expr).group(1): name  # type: ignore[union-attr]
        for name, expr in rules.items()
    }
    samples = 0
    with out.open("w") as handle:
        for metric, record in columns.items():
            column = metric.removeprefix("bbb_meetings_").removeprefix("bbb_")
            column = {"meetings": "meetings", "jitsi_participants": "participants"}.get(
                column, column
            )
            rows = frame[frame["kind"] == ("jitsi" if metric.startswith("jitsi") else "bbb")]
            if rows.empty:
                continue
            handle.write(f"# TYPE {metric} gauge\n")
            for node, series in rows.groupby("node"):
                for t, value in zip(series["t"], series[column], strict=True):
                    handle.write(f'{metric}{{pool="sim",node="{node}"}} {value} {t}\n')
                samples += len(series)
            handle.write(f"# TYPE {record} gauge\n")
            for t, value in rows.groupby("t")[column].sum().items():
                handle.write(f'{record}{{pool="sim"}} {value} {t}\n')
                samples += 1
        handle.write("# EOF\n")
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--weeks", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    promtool = shutil.which("promtool") or sys.exit("promtool not found")
    rules = raw_pool_rules()
    pairs = panel_pairs(rules)
    end = (time.time() // 3600 - 1) * 3600
    start = end - args.weeks * 7 * 86400 + 3600
    with tempfile.TemporaryDirectory(prefix="bench-dashboards-") as tmp:
        work, data = Path(tmp), Path(tmp) / "data"
        began = time.perf_counter()
        history = work / "history.parquet"
        end_iso = dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        run(
            [
                sys.executable,
                "-m",
                "confscale.simulator.cli",
                "history",
                "--history.weeks",
                str(args.weeks),
                "--pool.nodes",
                str(args.nodes),
                "--pool.jitsi",
                str(max(1, args.nodes // 10)),
                "--history.end",
                end_iso,
                "--output.file",
                str(history),
            ],
            "confscale-sim history",
        )
        samples = write_openmetrics(history, work / "series.om", rules)
        run(
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(work / "series.om"),
                str(data),
            ],
            "promtool create-blocks-from openmetrics",
        )
        print(
            f"setup: {args.nodes} nodes, {args.weeks} week(s) at 5 minutes, {samples:,} "
            f"samples of {len(rules)} raw gauges and their pool rules, "
            f"{time.perf_counter() - began:.1f}s"
        )
        with prometheus(work, data) as url:
            print(f"{'panel query':<40} {'recorded':>10} {'inlined':>10} {'ratio':>7}")
            total_recorded = total_inlined = 0.0
            for panel, recorded, inlined in pairs:
                a = values(query_range(url, recorded, start, end))
                b = values(query_range(url, inlined, start, end))
                if not a or a != b:
                    sys.exit(f"{panel}: recorded and inlined answers differ (or are empty)")
                t_recorded = timed(url, recorded, start, end, args.rounds)
                t_inlined = timed(url, inlined, start, end, args.rounds)
                total_recorded += t_recorded
                total_inlined += t_inlined
                print(
                    f"{panel[:40]:<40} {t_recorded * 1e3:>8.1f}ms {t_inlined * 1e3:>8.1f}ms "
                    f"{t_inlined / t_recorded:>6.1f}x"
                )
            print(
                f"{f'all {len(pairs)} (one overview load, median)':<40} "
                f"{total_recorded * 1e3:>8.1f}ms {total_inlined * 1e3:>8.1f}ms "
                f"{total_inlined / total_recorded:>6.1f}x"
            )


if __name__ == "__main__":
    main()
