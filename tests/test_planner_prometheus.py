"""History from a real Prometheus backfilled with the simulator's OpenMetrics output.

Blocks are built by ``promtool tsdb create-blocks-from openmetrics`` into the data dir
before Prometheus starts, with a long retention so the simulated weeks stay queryable.
Backfilled data has no recorded series, so the reader must fall back to the rules'
formulas on the raw contract series.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import harness
import numpy as np
import pandas as pd
import pytest
import requests
from confscale.planner.history import derive_rates, load_history
from confscale.planner.prometheus import (
    PrometheusClient,
    PrometheusError,
    PrometheusUnreachable,
    load_prometheus_history,
    read_prometheus_current,
)
from confscale.planner.snapshot import compute_snapshot
from localhttp import serving

WEEKS = 3
NODES = 4


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    harness.require_tool("promtool")
    harness.require_tool("prometheus")
    work = tmp_path_factory.mktemp("planner-prom")
    end = pd.Timestamp.now(tz="UTC").floor("5min") - pd.Timedelta(minutes=5)
    for name in ("history.om", "history.csv"):
        harness.sim_history(work / name, end=end.isoformat(), weeks=WEEKS, nodes=NODES, seed=7)
    with harness.backfilled_prometheus(work / "history.om", work) as url:
        yield {"url": url, "end": end.timestamp(), "csv": work / "history.csv"}


def test_history_from_prometheus_equals_the_file_and_uses_rule_fallback(backfilled) -> None:
    client = PrometheusClient(backfilled["url"])
    end = backfilled["end"]
    start = end - 2 * 86400  # two days are enough to compare values
    frame, used = load_prometheus_history(client, start=start, end=end)
    assert sorted(frame["node"].unique()) == [f"bbb-0{i}" for i in range(1, NODES + 1)]
    assert used["cpu_utilisation"].startswith("1 - (sum by (node) ((")  # no rules here
    assert used["participants"].startswith("max by (node) (max_over_time(")
    from_file = derive_rates(load_history(backfilled["csv"]))
    merged = frame.merge(from_file, on=["node", "timestamp"], suffixes=("_prom", "_file"))
    assert len(merged) >= 0.95 * len(frame) > 0
    for column in ("participants", "video_fanout", "listeners", "participants_max"):
        np.testing.assert_array_equal(merged[f"{column}_prom"], merged[f"{column}_file"])
    both = merged.dropna(subset=["cpu_utilisation_prom", "cpu_utilisation_file"])
    assert len(both) > 0.9 * len(merged)
    np.testing.assert_allclose(
        both["cpu_utilisation_prom"], both["cpu_utilisation_file"], atol=1e-5
    )  # counters are printed rounded
    tx = merged.dropna(subset=["transmit_bytes_per_second_prom", "transmit_bytes_per_second_file"])
    np.testing.assert_allclose(
        tx["transmit_bytes_per_second_prom"], tx["transmit_bytes_per_second_file"], rtol=1e-6
    )


def test_pool_peaks_for_the_forecast_cover_more_than_the_node_window(backfilled) -> None:
    from confscale.planner.peaks import hourly_peaks, pool_totals
    from confscale.planner.prometheus import POOL_HOURLY_ATTR

    client = PrometheusClient(backfilled["url"])
    end = backfilled["end"]
    start = end - WEEKS * 7 * 86400
    frame, used = load_prometheus_history(client, start=start, end=end, node_lookback=7 * 86400)
    span = frame["timestamp"].max() - frame["timestamp"].min()
    assert span <= pd.Timedelta(days=7)
    pool = frame.attrs[POOL_HOURLY_ATTR]
    assert pool.index[-1] - pool.index[0] >= pd.Timedelta(days=WEEKS * 7 - 2)
    assert used[POOL_HOURLY_ATTR].startswith("max_over_time(sum(")
    expected = hourly_peaks(pool_totals(load_history(backfilled["csv"]))["participants"])
    both = pd.concat([pool.rename("prom"), expected.rename("file")], axis=1).dropna()
    both = both.iloc[1:-1]  # the first and last hours are partial in one of the two
    assert len(both) > 24 * 7 * (WEEKS - 1)
    np.testing.assert_array_equal(both["prom"], both["file"])
    snapshot = compute_snapshot(frame, now=end, rates_included=True)
    observed = snapshot.forecast["actual"].dropna()
    assert observed.index[-1] - observed.index[0] >= pd.Timedelta(days=WEEKS * 7 - 2)


def test_query_range_is_chunked_below_the_points_limit(backfilled) -> None:
    url, end = backfilled["url"], backfilled["end"]
    start = end - WEEKS * 7 * 86400 + 600
    expr = 'confscale_node_cpu_count{node="bbb-01"}'
    refused = requests.get(
        f"{url}/api/v1/query_range",
        timeout=30,
        params={"query": expr, "start": start, "end": end, "step": 60},
    ).json()
    assert refused["status"] == "error" and "11,000" in refused["error"]
    series = PrometheusClient(url).query_range(expr, start, end, 60)
    (values,) = series.values()
    assert len(values) == int((end - start) // 60) + 1  # every step, no duplicates
    assert values.index.is_monotonic_increasing


def test_planner_sizes_from_prometheus_and_reads_current_data(backfilled) -> None:
    client = PrometheusClient(backfilled["url"])
    end = backfilled["end"]
    frame, _ = load_prometheus_history(client, start=end - WEEKS * 7 * 86400, end=end)
    readings = read_prometheus_current(client, at=end)
    assert {r.node for r in readings} == {f"bbb-0{i}" for i in range(1, NODES + 1)}
    assert all(r.up and r.cpu_utilisation is not None for r in readings)
    snapshot = compute_snapshot(frame, readings=readings, now=end, rates_included=True)
    assert snapshot.servers_online == NODES
    assert snapshot.model.source == {"cpu": "fitted", "transmit": "fitted"}
    assert all(isinstance(v, int) for v in snapshot.servers_needed.values())
    cli = subprocess.run(
        harness.python_module(
            "confscale.planner.cli",
            "size",
            "--prometheus.url",
            backfilled["url"],
            "--prometheus.lookback",
            "3w",
        ),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=harness.REPO,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["servers_online"] in (0, NODES)  # now vs. data end


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first requests, then a valid empty vector."""

    failures = 2
    seen: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Flaky.seen.append(self.path)
        if len(Flaky.seen) <= Flaky.failures:
            self.send_response(503)
            self.end_headers()
            return
        body = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": []}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_retries_with_backoff_then_success() -> None:
    sleeps: list[float] = []
    with serving(Flaky) as server:
        client = PrometheusClient(server.url, retries=3, backoff=0.5, sleep=sleeps.append)
        assert client.query("up") == []
    assert len(Flaky.seen) == 3
    assert sleeps == [0.5, 1.0]


def test_unreachable_prometheus_is_one_clear_error_without_credentials() -> None:
    port = harness.free_port()
    client = PrometheusClient(
        f"http://admin:hunter2@127.0.0.1:{port}", retries=1, timeout=2, sleep=lambda _: None
    )
    with pytest.raises(PrometheusUnreachable) as caught:
        client.query("up")
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}" in message and "after 2 attempt(s)" in message
    assert "hunter2" not in message and "admin" not in message
    # the cause in an operator's words, not the HTTP library's repr with the query in it
    assert message.endswith("attempt(s): connection refused"), message
    assert "HTTPConnectionPool" not in message and "query" not in message


def test_a_bad_query_is_not_retried_and_says_what_prometheus_said(backfilled) -> None:
    with pytest.raises(PrometheusError, match="parse error"):
        PrometheusClient(backfilled["url"]).query("sum(")


def test_current_data_uses_the_recording_rules_when_they_exist(tmp_path: Path) -> None:
    import yaml
    from confscale.planner.placement import place
    from test_exporter_support import exporter

    rules = harness.REPO / "alerts" / "rules" / "confscale-recording.yml"
    with harness.simulator(nodes=3, frozen=False, speed=1, faults=["bbb-02=cpu_high:0.97"]) as sim:
        pool = sim.write_config(tmp_path / "pool.yml")
        data = yaml.safe_load(pool.read_text())
        data["interval"], data["timeout"] = "1s", "800ms"
        pool.write_text(yaml.safe_dump(data))
        with exporter(pool, log_level="info") as running_exporter:
            config = {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "confscale",
                        "static_configs": [
                            {"targets": [running_exporter.url.removeprefix("http://")]}
                        ],
                    }
                ],
            }
            with harness.prometheus(yaml.safe_dump(config), tmp_path / "prom") as url:
                recorded = "count_over_time(node:confscale_cpu_utilisation:ratio_rate5m[1m]) >= 5"
                harness.wait_until(
                    lambda: len(harness.prom_query(url, recorded)) == 3,
                    timeout=60,
                    what="5 s of recorded CPU utilisation for 3 nodes",
                )
                client = PrometheusClient(url)
                readings = {r.node: r for r in read_prometheus_current(client)}
                now = time.time()
                end = now - 1
                frame, used = load_prometheus_history(client, start=end - 30, end=end, step=5)
    assert set(readings) == {"bbb-01", "bbb-02", "bbb-03"}
    # the exporter's rooms-started counter: how the planner sees rooms Scalelite placed
    assert all(
        r.meetings_started is not None and r.meetings_started >= 0 for r in readings.values()
    )
    assert readings["bbb-02"].pressure is not None and readings["bbb-02"].pressure > 1.2
    assert readings["bbb-02"].cpu_utilisation == pytest.approx(0.97, abs=0.02)
    placement = place(readings.values(), now=now)
    states = {n.node: n.state for n in placement.nodes}
    assert states["bbb-02"] == "out" and placement.recommended in ("bbb-01", "bbb-03")
    assert used["cpu_utilisation"] == "max by (node) (node:confscale_cpu_utilisation:ratio_rate5m)"
    assert not frame.empty


def test_current_data_from_prometheus_carries_recordings_processing(tmp_path: Path) -> None:
    """The scale-in check's figure on the Prometheus path, summed as the scrape sums it."""
    at = int(time.time() // 60 * 60) - 3 * 3600
    lines = ["# TYPE confscale_node_up gauge"]
    series = {
        "bbb_recordings": [
            ('node="bbb-01",state="processing"', 2),
            ('node="bbb-01",state="published"', 9),
            ('node="bbb-02",state="published"', 4),
        ],
        "bbb_recordings_unprocessed": [('node="bbb-01"', 1), ('node="bbb-02"', 0)],
    }
    stamps = range(at - 600, at + 1, 60)
    for node in ("bbb-01", "bbb-02", "bbb-03"):
        lines += [f'confscale_node_up{{node="{node}",source="bbb"}} 1 {t}' for t in stamps]
    for name, samples in series.items():
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            lines += [f"{name}{{{labels}}} {value} {t}" for t in stamps]
    (tmp_path / "recordings.om").write_text("\n".join(lines) + "\n# EOF\n")
    with harness.backfilled_prometheus(tmp_path / "recordings.om", tmp_path) as url:
        readings = {r.node: r for r in read_prometheus_current(PrometheusClient(url), at)}
    assert readings["bbb-01"].recordings_processing == 3  # 2 processing + 1 waiting
    assert readings["bbb-02"].recordings_processing == 0  # published ones do not count
    assert readings["bbb-03"].recordings_processing is None  # no recordings source: unknown
