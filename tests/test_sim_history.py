"""History output: same model as the live server, loads as CSV/Parquet, backfills with promtool."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from confscale.simulator import history, node
from confscale.simulator.history import COLUMNS
from confscale.simulator.terms import TermCalendar
from harness import REPO, require_tool
from prometheus_client.openmetrics.parser import text_string_to_metric_families

END = dt.datetime(2026, 10, 9, 0, 0, tzinfo=dt.UTC).timestamp()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "confscale.simulator.cli", "history", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_history_counters_equal_the_live_servers_integration():
    frame = history.history_frame(nodes=2, jitsi=0, seed=9, end=END, weeks=2 / 7)
    rows = frame[frame["node"] == "bbb-02"].reset_index(drop=True)
    seconds = rows["timestamp"].astype("int64").to_numpy() / 1e9
    live = node.NodeState("bbb-02", "bbb", seed=9, calendar=TermCalendar(), origin=seconds[0])
    for index in range(0, len(rows), 37):
        snap = live.snapshot(float(seconds[index]))
        assert rows.loc[index, "cpu_seconds_total"] == pytest.approx(snap.busy, rel=1e-9)
        assert rows.loc[index, "transmit_bytes_total"] == pytest.approx(snap.tx, abs=1)
        assert rows.loc[index, "receive_bytes_total"] == pytest.approx(snap.rx, abs=1)
        active = live.active(float(seconds[index]))
        t = float(seconds[index])
        assert rows.loc[index, "meetings"] == len(active)
        assert rows.loc[index, "participants"] == sum(m.attendance(t).participants for m in active)
        assert rows.loc[index, "video_fanout"] == sum(m.attendance(t).fanout for m in active)


def test_history_counters_are_monotonic_and_consistent():
    frame = history.history_frame(nodes=3, jitsi=1, seed=2, end=END, weeks=1)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 4 * 7 * 288
    for _, rows in frame.groupby("node"):
        for column in ("cpu_seconds_total", "transmit_bytes_total", "receive_bytes_total"):
            assert (np.diff(rows[column].to_numpy()) >= 0).all(), column
        busy_share = np.diff(rows["cpu_seconds_total"].to_numpy()) / (
            300 * rows["cpu_count"].iloc[0]
        )
        assert busy_share.max() < 1
        assert (rows["participants_max"] <= rows["participants"]).all()
        assert (rows["breakout_rooms"] <= rows["meetings"]).all()
    assert set(frame["kind"]) == {"bbb", "jitsi"}


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_cli_writes_loadable_tables(tmp_path, suffix):
    out = tmp_path / f"history{suffix}"
    done = run(
        "--history.weeks",
        "0.5",
        "--pool.nodes",
        "2",
        "--model.seed",
        "4",
        "--history.end",
        "2026-10-09T00:00:00Z",
        "--output.file",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(frame.columns) == list(COLUMNS)
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    assert stamps.max() == pd.Timestamp("2026-10-09T00:00:00Z")
    for _, rows in frame.assign(timestamp=stamps).groupby("node"):
        assert (rows["timestamp"].diff().dropna() == pd.Timedelta(minutes=5)).all()
    assert frame["participants"].max() > 0


def test_openmetrics_parses_and_backfills_into_prometheus_blocks(tmp_path):
    promtool = require_tool("promtool")
    out = tmp_path / "history.om"
    done = run(
        "--history.weeks",
        str(1 / 7),
        "--pool.nodes",
        "2",
        "--pool.jitsi",
        "1",
        "--model.seed",
        "3",
        "--history.end",
        "2026-10-07T00:00:00Z",
        "--output.file",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "bbb_meetings",
        "bbb_meetings_participants",
        "bbb_meetings_video_fanout",
        "confscale_node_cpu_seconds",
        "confscale_node_cpu_count",
        "confscale_node_network_transmit_bytes",
        "confscale_node_link_capacity_bytes_per_second",
        "confscale_node_up",
        "jitsi_participants",
    ):
        assert name in families, name
    sample = families["bbb_meetings"].samples[0]
    assert sample.labels == {"job": "confscale", "pool": "sim", "node": "bbb-01"}
    blocks = tmp_path / "blocks"
    created = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(out), str(blocks)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr + created.stdout
    assert any(p.is_dir() for p in blocks.iterdir())


def test_cli_errors_are_actionable(tmp_path):
    done = run("--output.file", str(tmp_path / "history.xlsx"))
    assert done.returncode != 0
    assert "history.xlsx" in done.stderr and "--output.format" in done.stderr
