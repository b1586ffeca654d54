"""Every panel query runs against a real Prometheus that scraped the exporter over the
simulated pool, with the real prometheus.yml and recording rules, and a week of history
backfilled with `promtool tsdb create-blocks-from openmetrics` from `confscale-sim history`,
and `confscale-planner serve` reading that Prometheus and scraped by it (planner panels).

Each query runs through /api/v1/query_range over two days (history and the live end),
with the template variables substituted as Grafana would, and must return data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import pytest
import requests
import yaml
from test_deploy_prometheus import SCRAPED_WITHOUT_NODE
from test_exporter_support import exporter

from dashboards import checks, generate

REPO = harness.REPO
SCRAPE_SECONDS = 1
RANGE_SECONDS = 2 * 86400
STEP_SECONDS = 1800
BBB_NODES, JITSI_NODES = 3, 2  # jvb-02 is an older bridge: conference sizes
FAULTY_NODE = "bbb-03"  # answers checksumError: node_up 0 and poll errors, no meeting gauges
NODE_CANDIDATES = ("bbb-01", FAULTY_NODE, "jvb-01")


@dataclass(frozen=True)
class Planner:
    proc: harness.Proc
    address: str


@dataclass(frozen=True)
class Stack:
    prometheus: str
    end: float


def live_prometheus_config(
    exporter_address: str, planner_address: str | None, turn_address: str | None = None
) -> str:
    """prometheus/prometheus.yml as shipped, with the test's addresses and a 1 s clock."""
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(
        scrape_interval=f"{SCRAPE_SECONDS}s",
        scrape_timeout="1s",
        evaluation_interval=f"{SCRAPE_SECONDS}s",
    )
    config.pop("alerting")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["confscale"]["static_configs"] = [{"targets": [exporter_address]}]
    if planner_address:
        jobs["confscale-planner"]["static_configs"] = [{"targets": [planner_address]}]
    config["scrape_configs"] = [jobs["confscale"]]
    if planner_address:
        config["scrape_configs"].append(jobs["confscale-planner"])
    if turn_address:  # the simulator's coturn page, in place of the file_sd targets
        turn = jobs["coturn"]
        turn.pop("file_sd_configs")
        targets = [{"targets": [turn_address], "labels": {"pool": "sim"}}]  # as file_sd's
        turn.update(static_configs=targets, metrics_path="/_turn/metrics")
        config["scrape_configs"].append(turn)
    return yaml.safe_dump(config, sort_keys=False)


def backfill_history(workdir: Path, data_dir: Path, end: float) -> None:
    """A week of 5-minute history for the same pool, as TSDB blocks in ``data_dir``."""
    promtool = harness.require_tool("promtool")
    history = workdir / "history.om"
    end_iso = dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sim = subprocess.run(
        harness.python_module(
            "confscale.simulator.cli",
            "history",
            "--history.weeks",
            "1",
            "--pool.nodes",
            str(BBB_NODES),
            "--pool.jitsi",
            str(JITSI_NODES),
            "--model.seed",
            "1",
            "--history.end",
            end_iso,
            "--output.file",
            str(history),
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sim.returncode == 0, f"confscale-sim history failed:\n{sim.stderr}"
    blocks = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(history), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert blocks.returncode == 0, f"promtool create-blocks-from failed:\n{blocks.stderr}"


@contextlib.contextmanager
def planner_process(prometheus_url: str, exporter_url: str) -> Iterator[Planner]:
    """confscale-planner serve over the test's Prometheus (its history and placement)."""
    port = harness.free_port()
    args = harness.python_module(
        "confscale.planner.cli",
        "serve",
        f"--prometheus.url={prometheus_url}",
        "--prometheus.lookback=1w",
        f"--exporter.url={exporter_url}/metrics",
        f"--web.listen-address=127.0.0.1:{port}",
        "--placement.interval=2s",
    )
    proc = harness.Proc("confscale-planner", args, cwd=REPO)
    url = f"http://127.0.0.1:{port}"

    def healthy_or_exited() -> bool:
        if not proc.alive():
            return True
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{url}/-/healthy", timeout=2).status_code == 200
        return False

    try:
        try:
            harness.wait_until(
                healthy_or_exited, timeout=120, interval=0.5, what="confscale-planner /-/healthy"
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- planner log ---\n{proc.log()}") from exc
        if not proc.alive():
            raise AssertionError(f"confscale-planner exited:\n{proc.log()[-3000:]}")
        yield Planner(proc, f"127.0.0.1:{port}")
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("dashboards-queries")
    shutil.copytree(REPO / "alerts" / "rules", workdir / "rules")
    data_dir = workdir / "data"
    history_end = time.time() - 120
    backfill_history(workdir, data_dir, history_end)
    with contextlib.ExitStack() as stack:
        sim = stack.enter_context(
            harness.simulator(
                nodes=BBB_NODES,
                jitsi=JITSI_NODES,
                frozen=False,
                speed=60,
                faults=[f"{FAULTY_NODE}=checksum"],
            )
        )
        config_path = sim.write_config(workdir / "exporter.yml")
        config = yaml.safe_load(config_path.read_text())
        config.update(interval="2s", timeout="1s")
        for node in config["nodes"]:
            if "bbb" in node:
                node["bbb"]["recordings"] = True  # the health board's recording panels
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        live = stack.enter_context(exporter(config_path, log_level="info"))
        # The planner reads the same Prometheus it is scraped by; its address is only known
        # once Prometheus runs, so Prometheus is reloaded with the planner job added.
        exporter_address = live.url.removeprefix("http://")
        url = stack.enter_context(
            harness.prometheus(
                live_prometheus_config(exporter_address, None, sim.url.removeprefix("http://")),
                workdir,
                storage=data_dir,
                extra_args=["--storage.tsdb.retention.time=30d"],
            )
        )
        planner = stack.enter_context(planner_process(url, live.url))
        (workdir / "prometheus.yml").write_text(
            live_prometheus_config(
                exporter_address, planner.address, sim.url.removeprefix("http://")
            )
        )
        requests.post(f"{url}/-/reload", timeout=10).raise_for_status()
        waits = [
            "node:confscale_cpu_utilisation:ratio_rate5m",
            "node:confscale_network_transmit_utilisation:ratio_rate5m",
            "pool:confscale_headroom:ratio",
            "node:confscale_pressure:ratio",
            "confscale_node_placement_weight",
            "confscale_pool_servers_needed",  # the planner's first sizing, after its refit
            # the TURN job has only live samples (no backfill): its rate needs two scrapes
            "rate(turn_total_traffic_sentb[1m])",
        ]
        for expr in waits:
            try:
                harness.wait_until(
                    lambda e=expr: harness.prom_query(url, e),
                    timeout=90,
                    interval=0.5,
                    what=f"{expr} in Prometheus",
                )
            except TimeoutError as exc:
                log = planner.proc.log()[-3000:]
                raise AssertionError(f"{exc}\n--- planner log ---\n{log}") from exc
        yield Stack(url, time.time())


def query_range(url: str, expr: str, end: float) -> list[dict[str, Any]]:
    response = requests.get(
        f"{url}/api/v1/query_range",
        timeout=30,
        params={"query": expr, "start": end - RANGE_SECONDS, "end": end, "step": STEP_SECONDS},
    )
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]["result"]


def variables(stack: Stack, node: str) -> dict[str, str]:
    pools = harness.prom_query(stack.prometheus, "group by (pool) (confscale_node_up)")
    return {
        "pool": "|".join(sorted(r["metric"]["pool"] for r in pools)),
        "node": node,
        "__rate_interval": checks.grafana_rate_interval(STEP_SECONDS, SCRAPE_SECONDS),
        "__interval": f"{STEP_SECONDS}s",
        "__range": f"{RANGE_SECONDS}s",
    }


def dashboards() -> list[dict[str, Any]]:
    return [json.loads((generate.JSON_DIR / name).read_text()) for name, _ in generate.BUILDERS]


def test_the_live_scrape_gives_every_series_a_node(stack):
    """prometheus.yml's relabelling: no exporter series without `node`, none renamed."""
    assert harness.prom_query(stack.prometheus, SCRAPED_WITHOUT_NODE) == []
    assert harness.prom_query(stack.prometheus, '{job="confscale", exported_node!=""}') == []
    nodes = harness.prom_query(stack.prometheus, "group by (node) (confscale_node_up)")
    assert {r["metric"]["node"] for r in nodes} >= set(NODE_CANDIDATES)


def test_history_was_backfilled(stack):
    week_ago = stack.end - 6 * 86400
    old = harness.prom_query(stack.prometheus, 'bbb_meetings{node="bbb-01"}', time=week_ago)
    assert old, "no backfilled history six days back"


@pytest.mark.parametrize("board", dashboards(), ids=lambda board: board["uid"])
def test_every_panel_query_returns_data(stack, board):
    """With `$node`, each query runs for a healthy BBB node, a failing one and a Jitsi
    bridge: it must never error, and must return data for at least one of them."""
    failures = []
    candidates = NODE_CANDIDATES if "$node" in json.dumps(board) else NODE_CANDIDATES[:1]
    for query in checks.panel_queries(board):
        found = False
        for node in candidates:
            expr = checks.substitute(query.expr, variables(stack, node))
            try:
                result = query_range(stack.prometheus, expr, stack.end)
            except AssertionError as exc:
                failures.append(f"{query.panel!r} {query.ref_id}: {expr}: {exc}")
            else:
                found = found or bool(result)
        if not found:
            failures.append(
                f"{query.panel!r} {query.ref_id}: no data for any of {candidates}: {query.expr}"
            )
    assert failures == []
