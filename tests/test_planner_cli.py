"""confscale-planner as a real process: backtest and size JSON, serve over HTTP, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import harness
import pandas as pd
import pytest
import requests
from confscale.planner.forecast import METHODS
from confscale.planner.synthetic import synthetic_history
from prometheus_client.parser import text_string_to_metric_families


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        harness.python_module("confscale.planner.cli", *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=harness.REPO,
    )


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("planner") / "history.csv.gz"
    synthetic_history(nodes=5, weeks=5, seed=21).to_csv(path, index=False)
    return path


def test_backtest_command_prints_metrics_for_both_methods(tmp_path: Path) -> None:
    frame = synthetic_history(nodes=3, weeks=6, seed=8)
    pool = frame.groupby("timestamp")["participants"].sum().reset_index()
    pool.columns = ["when", "users"]
    path = tmp_path / "series.csv"
    pool.to_csv(path, index=False)
    result = run(
        "backtest",
        "--csv.file",
        str(path),
        "--csv.time-column",
        "when",
        "--csv.value-column",
        "users",
        "--backtest.horizon",
        "168h",
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    for method in METHODS:
        assert set(body[method]) == {
            "mase",
            "coverage_80",
            "coverage_95",
            "peak_ape",
            "width_95",
            "width_95_busy",
            "origins",
        }
        assert body[method]["origins"] >= 5
    assert body["confscale"]["mase"] < body["seasonal_naive"]["mase"]


def test_backtest_errors_are_one_actionable_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("when,users\n2026-01-01T00:00:00Z,3\n2026-01-01T01:00:00Z,lots\n")
    result = run(
        "backtest",
        "--csv.file",
        str(path),
        "--csv.time-column",
        "when",
        "--csv.value-column",
        "users",
    )
    assert result.returncode == 2
    assert "bad.csv: line 3: column users: 'lots' is not a number" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run(
        "backtest", "--csv.file", str(path), "--csv.time-column", "t", "--csv.value-column", "users"
    )
    assert missing.returncode == 2 and "no column 't'" in missing.stderr
    daily = tmp_path / "daily.csv"
    pd.DataFrame({"t": pd.date_range("2026-01-01", periods=60, freq="1D"), "v": 1}).to_csv(
        daily, index=False
    )
    coarse = run(
        "backtest", "--csv.file", str(daily), "--csv.time-column", "t", "--csv.value-column", "v"
    )
    assert coarse.returncode == 2 and "hourly or finer" in coarse.stderr


def test_size_command_json_and_what_if(history_file: Path) -> None:
    result = run("size", "--history.file", str(history_file))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body["servers_needed"]) == {"now", "next_peak", "4w"}
    assert body["servers_online"] == 5
    assert body["binding_constraint"] in ("participants", "cpu", "transmit")
    assert set(body["per_constraint"]) == {"participants", "cpu", "transmit"}
    assert set(body["headroom"]) == {"participants", "cpu", "transmit"}
    assert "time_to_saturation_seconds" in body
    assert body["scope"]["sized_kind"] == "bbb" and body["scope"]["not_sized"] == {}
    bigger = json.loads(
        run(
            "size",
            "--history.file",
            str(history_file),
            "--sizing.growth",
            "3",
            "--sizing.redundancy",
            "2",
        ).stdout
    )
    assert bigger["servers_needed"]["next_peak"] > body["servers_needed"]["next_peak"]
    assert bigger["what_if"]["redundancy"] == 2


def test_size_with_bad_history_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("timestamp,node\n2026-01-01T00:00:00Z,bbb-01\n")
    result = run("size", "--history.file", str(path))
    assert result.returncode == 2
    assert "missing column(s) kind" in result.stderr
    gone = run(
        "size",
        "--prometheus.url",
        f"http://127.0.0.1:{harness.free_port()}",
        "--prometheus.lookback",
        "1d",
    )
    assert gone.returncode == 2
    assert "unreachable" in gone.stderr and "Traceback" not in gone.stderr


def test_serve_answers_api_and_metrics_from_the_same_snapshot(history_file: Path) -> None:
    port = harness.free_port()
    proc = harness.Proc(
        "planner",
        harness.python_module(
            "confscale.planner.cli",
            "serve",
            "--history.file",
            str(history_file),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--next.ttl",
            "20m",
        ),
        cwd=harness.REPO,
    )
    base = f"http://127.0.0.1:{port}"
    with harness.running(proc, f"{base}/-/healthy"):
        capacity = harness.wait_until(
            lambda: (
                requests.get(f"{base}/api/v1/capacity", timeout=5).json()
                if requests.get(f"{base}/api/v1/capacity", timeout=5).status_code == 200
                else None
            ),
            timeout=60,
            what="first planner result",
        )
        placement = requests.get(f"{base}/api/v1/placement", timeout=5).json()
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        nexts = [requests.get(f"{base}/api/v1/placement/next", timeout=5) for _ in range(2)]
        unknown_pool = requests.get(f"{base}/api/v1/placement/next?pool=x", timeout=5)
        assert requests.get(f"{base}/-/healthy", timeout=5).json()["ready"] is True
    assert [r.status_code for r in nexts] == [200, 200] and unknown_pool.status_code == 404
    first, second = (r.json()["reservation"] for r in nexts)
    assert first["id"] != second["id"]
    assert first["expires_at"] - first["created"] == pytest.approx(1200)  # --next.ttl
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    for horizon, value in capacity["servers_needed"].items():
        assert samples[("confscale_pool_servers_needed", (("horizon", horizon),))] == value
    assert samples[("confscale_pool_servers_online", ())] == capacity["servers_online"]
    binding = capacity["binding_constraint"]
    assert samples[("confscale_pool_binding_constraint", (("constraint", binding),))] == 1
    for node in placement["nodes"]:
        key = ("confscale_node_placement_weight", (("node", node["node"]),))
        assert samples[key] == pytest.approx(node["weight"], abs=1e-4)
    assert placement["recommended"] == placement["nodes"][0]["node"]
    assert placement["generated_at"] > 0
    assert proc.popen.returncode is not None  # stopped by running()
    assert "Traceback" not in proc.log_path.read_text()


def test_serve_refuses_bad_flags_without_secret_leak(tmp_path: Path, history_file: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    result = run(
        "serve", "--history.file", str(history_file), "--scalelite.url", "http://127.0.0.1:1"
    )
    assert result.returncode == 2 and "--scalelite.secret-file" in result.stderr
    assert "s3cr3t" not in run("serve", "--help").stdout
    short = run(
        "serve", "--history.file", str(history_file), "--next.settle", "20m", "--next.ttl", "5m"
    )
    assert short.returncode == 2 and "--next.ttl" in short.stderr and "settle" in short.stderr
