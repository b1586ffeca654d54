"""The planner against VictoriaMetrics: nothing Prometheus-specific beyond the HTTP API.

Two paths into a real ``victoria-metrics`` (Debian package, 127.0.0.1, data in tmp):

- live: a real Prometheus scrapes the exporter (polling the simulator) and
  remote-writes to VictoriaMetrics; both stores then hold the same samples and the
  planner reads the same current data from either;
- history: the simulator's OpenMetrics history, plus the recording rules' series that
  Prometheus would have evaluated and remote-written with it, goes into Prometheus as
  blocks (``promtool tsdb create-blocks-from openmetrics``) and into VictoriaMetrics
  through ``/api/v1/import/prometheus``; ``confscale-planner size`` pointed at each store
  prints the same capacity answer.

Why the recorded series: the rules cannot be evaluated on 5-minute backfill (a 5 m rate
needs two samples); Prometheus evaluates them and remote-writes them in production. The
planner's raw-counter fallback (used without them) is compared series by series.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import harness
import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from confscale.planner.history import derive_rates, load_history
from confscale.planner.prometheus import (
    RULES,
    PrometheusClient,
    history_queries,
    read_prometheus_current,
)

WEEKS = 3
NODES = 4


@contextlib.contextmanager
def victoria_metrics(workdir: Path) -> Iterator[str]:
    """A real single-node VictoriaMetrics on 127.0.0.1; yields its base URL."""
    binary = harness.require_tool("victoria-metrics")
    port = harness.free_port()
    args = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={workdir / 'vm-data'}",
        "-retentionPeriod=100y",  # the backfilled weeks must stay queryable
        "-search.latencyOffset=0s",  # remote-written samples are visible at once
        "-search.disableCache",  # backfill lands behind the rollup cache otherwise
        "-loggerLevel=WARN",
    ]
    url = f"http://127.0.0.1:{port}"
    with harness.running(harness.Proc("victoria-metrics", args), f"{url}/health"):
        yield url


def openmetrics_to_prometheus_text(source: Path, target: Path) -> None:
    """OpenMetrics (timestamps in seconds) -> Prometheus text (milliseconds) for VM import."""
    with source.open() as lines, target.open("w") as out:
        for line in lines:
            if not line or line.startswith("#"):
                continue
            series, value, stamp = line.rsplit(" ", 2)
            out.write(f"{series} {value} {round(float(stamp) * 1000)}\n")


def shift_openmetrics(source: Path, target: Path, seconds: int) -> None:
    """The same OpenMetrics file with every timestamp moved by ``seconds``."""
    with source.open() as lines, target.open("w") as out:
        for line in lines:
            if line.startswith("#"):
                out.write(line)
                continue
            series, value, stamp = line.rsplit(" ", 2)
            out.write(f"{series} {value} {int(stamp) + seconds}\n")


def recorded_series(history_csv: Path, target: Path) -> None:
    """The recording rules the planner reads, per 5-minute step, as OpenMetrics."""
    frame = derive_rates(load_history(history_csv))
    stamps = frame["timestamp"].astype("int64") // 10**9
    with target.open("w") as out:
        for column, rule in RULES.items():
            out.write(f"# TYPE {rule} gauge\n")
            for node, stamp, value in zip(frame["node"], stamps, frame[column], strict=True):
                if pd.notna(value):
                    labels = f'job="confscale",pool="sim",node="{node}"'
                    out.write(f"{rule}{{{labels}}} {value!r} {stamp}\n")
        out.write("# EOF\n")


def import_into_victoria(url: str, text_file: Path) -> None:
    with text_file.open("rb") as body:
        response = requests.post(f"{url}/api/v1/import/prometheus", data=body, timeout=120)
    assert response.status_code == 204, response.text
    requests.get(f"{url}/internal/force_flush", timeout=30)


def size(url: str) -> dict:
    run = subprocess.run(
        harness.python_module(
            "confscale.planner.cli", "size", "--prometheus.url", url, "--prometheus.lookback", "3w"
        ),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=harness.REPO,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def history_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    harness.require_tool("promtool")
    work = tmp_path_factory.mktemp("scale-vm")
    # The simulator ends its history on a 5-minute step; the files are shifted so the last
    # sample is at most a minute old and every node counts as online (not stale) in both.
    now = pd.Timestamp.now(tz="UTC")
    end = now.floor("5min")
    shift = int((now.floor("min") - end).total_seconds())
    for name in ("history.om", "history.csv"):
        subprocess.run(
            harness.python_module(
                "confscale.simulator.cli",
                "history",
                f"--history.weeks={WEEKS}",
                f"--pool.nodes={NODES}",
                "--model.seed=7",
                f"--history.end={end.isoformat()}",
                f"--output.file={work / ('raw-' + name)}",
            ),
            check=True,
            cwd=harness.REPO,
            capture_output=True,
            timeout=120,
        )
    shift_openmetrics(work / "raw-history.om", work / "history.om", shift)
    frame = pd.read_csv(work / "raw-history.csv")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]) + pd.Timedelta(seconds=shift)
    frame.to_csv(work / "history.csv", index=False)
    recorded_series(work / "history.csv", work / "recorded.om")
    for name in ("history", "recorded"):
        harness.backfill(work / f"{name}.om", work / "prom-data")
        openmetrics_to_prometheus_text(work / f"{name}.om", work / f"{name}.prom")
    with (
        victoria_metrics(work) as vm_url,
        harness.prometheus(
            "global: {}\n",
            work,
            storage=work / "prom-data",
            extra_args=["--storage.tsdb.retention.time=100y"],
        ) as prom_url,
    ):
        import_into_victoria(vm_url, work / "history.prom")
        import_into_victoria(vm_url, work / "recorded.prom")
        yield {"prometheus": prom_url, "victoria": vm_url, "end": end.timestamp() + shift}


def test_victoria_holds_the_same_history_as_prometheus(history_stores) -> None:
    end = history_stores["end"] - 3600
    for expr in ("count(bbb_meetings_participants)", "sum(bbb_meetings_participants)"):
        prom = harness.prom_query(history_stores["prometheus"], expr, time=end)
        victoria = harness.prom_query(history_stores["victoria"], expr, time=end)
        assert prom and prom[0]["value"][1] == victoria[0]["value"][1], (expr, prom, victoria)


def test_planner_size_is_the_same_against_victoria_and_prometheus(history_stores) -> None:
    prom = size(history_stores["prometheus"])
    victoria = size(history_stores["victoria"])
    for answer in (prom, victoria):
        answer.pop("generated_at")  # wall clock of the run
    assert prom["servers_online"] == NODES
    # the answer: servers needed per horizon and constraint, which constraint binds
    assert victoria["servers_needed"] == prom["servers_needed"]
    assert victoria["binding_constraint"] == prom["binding_constraint"]
    for name, constraint in prom["per_constraint"].items():
        assert victoria["per_constraint"][name]["servers_needed"] == constraint["servers_needed"]
    # VictoriaMetrics keeps 12 significant digits of a float (its documented
    # compression), so the stored rates differ in the 13th digit; the quantile fit turns
    # that into differences of a few 1e-3 in fitted figures. Everything else is equal.
    # Single coefficients of correlated features (listeners vs voice users) are poorly
    # determined and moved 2.4 % in one CI run, while what they predict (the demand per
    # constraint, compared at 2 % with the rest) did not: compare them more loosely.
    victoria_model, prom_model = victoria.pop("model"), prom.pop("model")
    assert_close(victoria, prom, rel=0.02)
    assert_close(victoria_model, prom_model, rel=0.10, where=".model")


def assert_close(got: object, want: object, *, rel: float, where: str = "") -> None:
    """Same structure and strings, numbers within ``rel``."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for key, item in want.items():
            assert_close(got[key], item, rel=rel, where=f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_close(a, b, rel=rel, where=f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=rel, abs=1e-9), where
    else:
        assert got == want, where


def test_prometheus_remote_writes_to_victoria_and_the_planner_reads_the_same(
    tmp_path: Path,
) -> None:
    from test_exporter_support import exporter

    rules = harness.REPO / "alerts" / "rules" / "confscale-recording.yml"
    with (
        harness.simulator(nodes=NODES, frozen=False, speed=60) as sim,
        victoria_metrics(tmp_path) as vm_url,
    ):
        pool = sim.write_config(tmp_path / "pool.yml")
        data = yaml.safe_load(pool.read_text())
        data["interval"], data["timeout"] = "2s", "1500ms"  # wide: busy shared cores
        pool.write_text(yaml.safe_dump(data))
        with exporter(pool, log_level="info") as running_exporter:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "confscale",
                        "honor_labels": True,
                        "static_configs": [
                            {"targets": [running_exporter.url.removeprefix("http://")]}
                        ],
                    }
                ],
                "remote_write": [{"url": f"{vm_url}/api/v1/write"}],
            }
            with harness.prometheus(yaml.safe_dump(config), tmp_path / "prom") as prom_url:
                recorded = "count_over_time(node:confscale_cpu_utilisation:ratio_rate5m[1m]) >= 8"
                harness.wait_until(
                    lambda: len(harness.prom_query(vm_url, recorded)) == NODES,
                    timeout=60,
                    what="recorded CPU utilisation remote-written for every node",
                )
                at = time.time() - 3  # a past instant, recorded for 5 s before it
                prom = read_prometheus_current(PrometheusClient(prom_url), at=at)
                victoria = read_prometheus_current(PrometheusClient(vm_url), at=at)
                exprs = ("count by (node) (confscale_node_up)", "count by (node) (bbb_meetings)")
                counts = {e: harness.prom_query(vm_url, e, time=at) for e in exprs}
    assert [r.node for r in prom] == sim.names
    for e, found in counts.items():
        assert sorted(x["metric"]["node"] for x in found) == sim.names, e
    assert [r.node for r in victoria] == [r.node for r in prom]
    for ours, theirs in zip(victoria, prom, strict=True):
        assert ours.up and theirs.up
        assert ours.cpu_utilisation is not None
        assert_close(dataclasses.asdict(ours), dataclasses.asdict(theirs), rel=1e-9)


def test_the_raw_counter_fallback_reads_the_same_from_both_stores(history_stores) -> None:
    """Without recorded series the planner derives rates itself; both stores agree."""
    end = history_stores["end"]
    start = end - 2 * 86400
    prom = PrometheusClient(history_stores["prometheus"])
    victoria = PrometheusClient(history_stores["victoria"])
    fallbacks = {c: exprs[-1] for c, exprs in history_queries(300).items() if len(exprs) > 1}
    assert set(fallbacks) == set(RULES)
    for column, expr in fallbacks.items():
        ours, theirs = (
            victoria.query_range(expr, start, end, 300),
            prom.query_range(expr, start, end, 300),
        )
        assert set(ours) == set(theirs) and len(theirs) == NODES, column
        for key, series in theirs.items():
            other = ours[key].reindex(series.index)
            assert other.notna().mean() > 0.99, column
            both = series.notna() & other.notna()
            np.testing.assert_allclose(other[both], series[both], rtol=1e-6, err_msg=column)
