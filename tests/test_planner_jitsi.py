"""Jitsi bridges sized (planner/jitsi.py): stress fit, N+R at the stress target, history."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from confscale.planner import jitsi
from confscale.planner.demand import WhatIf
from confscale.planner.history import HISTORY_COLUMNS, load_history
from confscale.planner.metrics import PlannerCollector
from confscale.planner.service import RefreshStatus
from confscale.planner.snapshot import compute_snapshot, what_if
from confscale.planner.web.view import messages, overview_cards
from confscale.simulator import history, jvb, node
from confscale.simulator.terms import TermCalendar

from confscale.thresholds import FAILURE, TARGET

END = dt.datetime(2026, 10, 9, 0, 0, tzinfo=dt.UTC).timestamp()
START = pd.Timestamp("2026-10-01", tz="UTC")


def bridge_rows(k: float, days: float = 3, bridges: int = 2, noise: float = 0.0, seed: int = 1):
    """Jitsi rows whose stress is exactly k per participant (plus optional noise)."""
    rng = np.random.default_rng(seed)
    steps = int(days * 288)
    stamps = START + pd.to_timedelta(np.arange(steps) * 300, unit="s")
    frames = []
    for b in range(bridges):
        day = np.sin(np.arange(steps) / 288 * 2 * np.pi) * 40 + 45
        participants = np.maximum(np.round(day + rng.normal(0, 5, steps)), 0)
        video = rng.binomial(participants.astype(int), 0.2).astype(float)
        stress = k * participants + rng.normal(0, noise, steps)
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": stamps,
                    "node": f"jvb-{b + 1:02d}",
                    "kind": "jitsi",
                    "participants": participants,
                    "video_participants": video,
                    "participants_max": np.minimum(participants, 12),
                    "jitsi_stress": np.maximum(stress, 0),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def forecast_for(peak: float, now: float = 100.0) -> pd.DataFrame:
    index = pd.date_range(START, periods=24 + 672, freq="1h")
    actual = np.full(len(index), np.nan)
    actual[:24] = now
    upper = np.full(len(index), np.nan)
    upper[24:] = peak / 2
    upper[24 + 50] = peak  # within the next week
    upper[24 + 600] = peak * 1.5  # in week 4
    return pd.DataFrame({"actual": actual, "median": upper / 1.2, "upper_95": upper}, index=index)


def expected(stress: float, what: WhatIf) -> int:
    target, failure = what.headroom_jitsi_stress, what.failure_jitsi_stress
    return max(
        math.ceil(stress / target - 1e-9),
        math.ceil(stress / failure - 1e-9) + what.redundancy,
        what.min_servers,
    )


def test_known_truth_pool_stress_linear_in_participants():
    k = 0.004
    rows = bridge_rows(k)
    sized_hourly = rows.groupby("timestamp")["participants"].sum().resample("1h").max() * 2
    model = jitsi.jitsi_model(rows, sized_hourly, own=False)
    assert model is not None and model.fit.source == "fitted"
    assert model.fit.coefficients["participants"] == pytest.approx(k, rel=1e-6)
    assert model.fit.coefficients.get("video_participants", 0) == pytest.approx(0, abs=1e-9)
    assert model.ratio == pytest.approx(0.5, rel=1e-9)  # Jitsi is half the sized pool
    forecast = forecast_for(peak=4000)
    for what in (WhatIf(), WhatIf(redundancy=0), WhatIf(growth=2, redundancy=3, min_servers=2)):
        block = jitsi.size_jitsi(model, forecast, what.validated(), bridges_online=2)
        now = model.participants_now * what.growth * k
        assert block["servers_needed"] == {
            "now": expected(now, what),
            "next_peak": expected(4000 * 0.5 * what.growth * k, what),
            "4w": expected(6000 * 0.5 * what.growth * k, what),
        }
        assert block["binding_constraint"] == "jitsi_stress"
    # the defaults are the thresholds' table; with R=1 the count is ⌈D·k/0.8⌉ or ⌈D·k/0.9⌉+1
    block = jitsi.size_jitsi(model, forecast, WhatIf(), 2)
    assert block["target_stress"] == TARGET["jitsi_stress"]
    assert block["failure_stress"] == FAILURE["jitsi_stress"]
    assert block["servers_needed"]["next_peak"] == 10  # D·k = 8: ⌈10⌉ vs ⌈8.9⌉ + 1
    lower = jitsi.size_jitsi(model, forecast, WhatIf(headroom_jitsi_stress=0.5).validated(), 2)
    assert lower["servers_needed"]["next_peak"] == 16  # 8 / 0.5


def test_fit_is_robust_to_outliers_and_uses_video_when_it_matters():
    rows = bridge_rows(0.003, noise=0.002)
    rows["jitsi_stress"] += 0.01 * rows["video_participants"]
    spikes = rows.sample(frac=0.02, random_state=3).index
    rows.loc[spikes, "jitsi_stress"] = 5.0  # a bridge's garbage readings
    fit = jitsi.fit_stress(rows)
    assert fit.source == "fitted"
    assert fit.coefficients["participants"] == pytest.approx(0.003, rel=0.05)
    assert fit.coefficients["video_participants"] == pytest.approx(0.01, rel=0.05)


def test_short_history_uses_priors_and_says_so():
    rows = bridge_rows(0.004, days=0.25, bridges=1)  # 72 samples < 288
    model = jitsi.jitsi_model(rows, pd.Series(dtype=float), own=True)
    assert model is not None and model.fit.source == "prior"
    assert model.fit.coefficients["participants"] == pytest.approx(jitsi.PRIOR["participants"])
    assert any("priors" in note for note in model.notes)
    block = jitsi.size_jitsi(model, forecast_for(800), WhatIf(), 1)
    assert block["fit"]["source"] == "prior" and block["servers_needed"]["now"] is not None


def test_no_stress_in_the_history_means_no_jitsi_sizing():
    rows = bridge_rows(0.004).drop(columns="jitsi_stress")
    assert jitsi.jitsi_model(rows, pd.Series(dtype=float), own=True) is None


def test_history_stress_is_the_live_bridges_packet_rate_stress():
    frame = history.history_frame(nodes=1, jitsi=1, seed=4, end=END, weeks=1 / 7)
    assert (frame.loc[frame["kind"] == "bbb", "jitsi_stress"] == 0).all()
    rows = frame[frame["node"] == "jvb-01"].reset_index(drop=True)
    assert rows["jitsi_stress"].max() > 0
    seconds = rows["timestamp"].astype("int64").to_numpy() / 1e9
    live = node.NodeState("jvb-01", "jitsi", seed=4, calendar=TermCalendar(), origin=seconds[0])
    for index in range(0, len(rows), 23):
        t = float(seconds[index])
        sizes = [m.attendance(t) for m in live.active(t)]
        tx = node.TX_BASE_BYTES + sum(a.tx_bytes_per_second() for a in sizes)
        up, down = jvb.packet_rates(sizes, tx)
        truth = (up + down) / jvb.JVB_PACKET_RATE_LOAD_THRESHOLD
        assert rows.loc[index, "jitsi_stress"] == pytest.approx(truth, abs=1e-4)


def test_history_round_trip_and_an_old_file_without_the_column(tmp_path):
    frame = history.history_frame(nodes=1, jitsi=1, seed=4, end=END, weeks=1 / 7)
    for name in ("h.csv.gz", "h.parquet"):
        path = tmp_path / name
        history.write_tabular(frame, path, "parquet" if name.endswith("parquet") else "csv")
        loaded = load_history(path)
        assert "jitsi_stress" in loaded
        stress = loaded.groupby("node")["jitsi_stress"].max()
        assert stress["bbb-01"] == 0 and stress["jvb-01"] == pytest.approx(
            frame.loc[frame["node"] == "jvb-01", "jitsi_stress"].max(), abs=1e-3
        )
    old = tmp_path / "old.csv"
    history.write_tabular(frame[list(HISTORY_COLUMNS)], old, "csv")
    loaded = load_history(old)
    assert "jitsi_stress" not in loaded and len(loaded) == len(frame)
    # a BBB row's empty stress is 0; a Jitsi row's is a missing figure (the row is dropped)
    text = frame.assign(jitsi_stress=frame["jitsi_stress"].astype(object))
    text.loc[text["kind"] == "bbb", "jitsi_stress"] = None
    text.loc[text.index[-1], "jitsi_stress"] = None
    path = tmp_path / "blank.csv"
    history.write_tabular(text, path, "csv")
    loaded = load_history(path)
    assert len(loaded) == len(frame) - 1
    assert (loaded.loc[loaded["kind"] == "bbb", "jitsi_stress"] == 0).all()
    too_high = frame.assign(jitsi_stress=frame["jitsi_stress"] + 20.0)
    history.write_tabular(too_high, path, "csv")
    with pytest.raises(ValueError, match=r"jitsi_stress.*plausible"):
        load_history(path)


def test_openmetrics_carries_the_stress_gauge():
    noon = END - 12 * 3600
    options = {"nodes": 1, "jitsi": 1, "seed": 4, "end": noon, "weeks": 1 / 24}
    lines = list(history.openmetrics_lines(**options))
    stress = [line for line in lines if line.startswith("jitsi_stress_level{")]
    assert stress and all('node="jvb-01"' in line for line in stress)
    frame = history.history_frame(**options)
    truth = frame.loc[frame["node"] == "jvb-01", "jitsi_stress"].to_numpy()
    values = np.array([float(line.split()[1]) for line in stress])
    assert truth.max() > 0 and values == pytest.approx(truth, abs=1e-4)


@pytest.fixture(scope="module")
def snapshot():
    frame = history.history_frame(nodes=3, jitsi=2, seed=5, end=END, weeks=3)
    return compute_snapshot(frame)


def test_capacity_json_and_page_report_bbb_and_jitsi_apart(snapshot):
    body = snapshot.capacity_dict()
    block = body["jitsi"]
    assert block["binding_constraint"] == "jitsi_stress"
    assert block["servers_online"] == 2
    assert set(block["servers_needed"]) == {"now", "next_peak", "4w"}
    assert all(isinstance(v, int) and v >= 1 for v in block["servers_needed"].values())
    assert block["fit"]["source"] == "fitted" and set(block["bridges"]) == {"jvb-01", "jvb-02"}
    # the fit recovers the packet-rate stress it was fitted on (within its own residuals)
    assert block["fit"]["rmse"] < 0.02
    assert body["scope"]["not_sized"] == {}
    assert "sized separately" in body["scope"]["note"]
    assert body["binding_constraint"] in ("participants", "cpu", "transmit")
    assert body["servers_online"] == 3  # BBB only
    cards = {c.key: c for c in overview_cards(snapshot, snapshot.sizing, 14)}
    assert cards["jitsi"].value == " / ".join(
        str(block["servers_needed"][h]) for h in jitsi.HORIZONS
    )
    assert "jitsi_stress" in cards["jitsi"].detail
    titles = [m.title for m in messages(snapshot, RefreshStatus(), "history")]
    assert "Sizing covers the BBB part of the pool" not in titles


def test_what_if_resizes_the_bridges_too(snapshot):
    base = snapshot.sizing.jitsi["servers_needed"]["4w"]
    grown = what_if(snapshot, growth=3.0, redundancy=2).jitsi
    assert grown["servers_needed"]["4w"] >= base
    stress = grown["demand"]["4w"]["stress"]
    assert grown["servers_needed"]["4w"] == expected(stress, WhatIf(growth=3.0, redundancy=2))


def test_metrics_have_a_jitsi_family_and_keep_the_bbb_one(snapshot):
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(PlannerCollector(lambda: snapshot))
    text = generate_latest(registry).decode()
    needed = snapshot.sizing.jitsi["servers_needed"]
    for horizon, value in needed.items():
        assert f'confscale_pool_jitsi_servers_needed{{horizon="{horizon}"}} {value:.1f}' in text
    for horizon, value in snapshot.sizing.servers_needed.items():
        assert f'confscale_pool_servers_needed{{horizon="{horizon}"}} {value:.1f}' in text


def test_prometheus_history_reads_the_bridges_stress(tmp_path):
    import harness
    from confscale.planner.prometheus import PrometheusClient, load_prometheus_history

    end = pd.Timestamp.now(tz="UTC").floor("5min") - pd.Timedelta(minutes=5)
    options = {"nodes": 1, "jitsi": 1, "seed": 4, "end": end.timestamp(), "weeks": 2 / 7}
    (tmp_path / "h.om").write_text("".join(history.openmetrics_lines(**options)))
    with harness.backfilled_prometheus(tmp_path / "h.om", tmp_path) as url:
        client = PrometheusClient(url)
        frame, used = load_prometheus_history(
            client, start=end.timestamp() - 86400, end=end.timestamp()
        )
    assert used["jitsi:jitsi_stress"].startswith("max by (node) (max_over_time(jitsi_stress_level")
    kinds = frame.groupby("node")["kind"].first().to_dict()
    assert kinds == {"bbb-01": "bbb", "jvb-01": "jitsi"}
    truth = history.history_frame(**options)
    merged = frame.merge(truth, on=["node", "timestamp"], suffixes=("_prom", "_file"))
    bridge = merged[merged["node"] == "jvb-01"]
    assert len(bridge) > 200 and bridge["jitsi_stress_file"].max() > 0
    np.testing.assert_allclose(bridge["jitsi_stress_prom"], bridge["jitsi_stress_file"], atol=1e-4)
    np.testing.assert_array_equal(bridge["participants_prom"], bridge["participants_file"])
    np.testing.assert_array_equal(
        bridge["video_participants_prom"], bridge["video_participants_file"]
    )
    assert (merged.loc[merged["node"] == "bbb-01", "jitsi_stress_prom"] == 0).all()
    # the Prometheus path sizes the bridge too (one day: under the fit's minimum, so priors)
    block = compute_snapshot(frame, rates_included=True).capacity_dict()["jitsi"]
    assert block["servers_online"] == 1 and block["fit"]["source"] == "prior"
    assert "video_fanout" not in block["fit"]["coefficients"]  # not a Jitsi gauge
