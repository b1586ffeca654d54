"""The page's pure layer: cards, messages, node rows, figures, auth (no browser)."""

from __future__ import annotations

import base64
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from confscale.planner.calendar import HOLIDAY, Period, RegimeCalendar
from confscale.planner.forecast import METHODS
from confscale.planner.service import PlannerService, RefreshStatus
from confscale.planner.snapshot import PlannerConfig, compute_snapshot, what_if
from confscale.planner.synthetic import synthetic_history
from confscale.planner.web import WebOptions, create_app
from confscale.planner.web.app import options_from_env
from confscale.planner.web.auth import (
    AuthConfigError,
    BasicAuth,
    auth_from_env,
    load_auth_file,
    protect,
)
from confscale.planner.web.context import what_if_changes, what_if_inputs
from confscale.planner.web.figures import (
    capacity_participants,
    constraint_chart,
    fan_chart,
    heatmaps,
    packing_factor,
    regime_spans,
    servers_for_participants,
    window_range,
)
from confscale.planner.web.pages.overview import CAMERA_PROFILES, store_from_controls
from confscale.planner.web.view import messages, node_rows, overview_cards

BREAK = (dt.date(2026, 10, 26), dt.date(2026, 10, 30))


@pytest.fixture(scope="module")
def snapshot():
    history = synthetic_history(nodes=6, weeks=6, start="2026-09-21", holidays=[BREAK])
    calendar = RegimeCalendar(periods=(Period(*BREAK, HOLIDAY),))
    return compute_snapshot(history, PlannerConfig(calendar=calendar))


@pytest.fixture(scope="module")
def short_snapshot():
    return compute_snapshot(synthetic_history(nodes=3, weeks=1, start="2026-09-21"))


def test_cards_show_the_engine_figures_and_flag_a_short_lead_time(snapshot):
    sizing = snapshot.sizing
    cards = {c.key: c for c in overview_cards(snapshot, sizing, lead_time_days=28)}
    assert cards["online"].value == str(sizing.servers_online)
    for key in ("now", "next_peak", "4w"):
        needed = sizing.servers_needed[key]
        assert cards[key].value == ("—" if needed is None else str(needed))
    assert cards["binding"].value == sizing.binding_constraint
    saturation = sizing.time_to_saturation_seconds
    long_lead = overview_cards(snapshot, sizing, lead_time_days=10_000)
    no_lead = overview_cards(snapshot, sizing, lead_time_days=0)
    tone = {c.key: c.tone for c in long_lead}["saturation"]
    assert tone == ("bad" if saturation is not None else "good")
    assert {c.key: c.tone for c in no_lead}["saturation"] == "good"
    assert "MASE" in cards["health"].value


def test_what_if_growth_raises_the_cards(snapshot):
    # (4 weeks out this pool is 3 servers at growth 1 and 2: 172 and 344 participants)
    more = what_if(snapshot, growth=3.0)
    base = snapshot.sizing.servers_needed["4w"]
    assert more.servers_needed["4w"] > base
    cards = {c.key: c for c in overview_cards(snapshot, more, 28)}
    assert cards["4w"].value == str(more.servers_needed["4w"])
    assert f"without what-if {base}" in cards["4w"].detail


def test_messages_say_what_is_missing(snapshot, short_snapshot):
    unreachable = messages(
        None,
        RefreshStatus(last_error="refresh failed: Prometheus at http://x:9 unreachable"),
        "Prometheus at http://x:9",
    )
    assert [m.tone for m in unreachable] == ["bad"]
    assert "cannot read Prometheus at http://x:9" in unreachable[0].title
    assert "unreachable" in unreachable[0].text
    assert messages(None, RefreshStatus(), "the file")[0].tone == "info"
    short = messages(short_snapshot, RefreshStatus(), "the file")
    too_short = [m for m in short if m.title == "History too short"]
    assert too_short and "need" in too_short[0].text and "hours" in too_short[0].text
    stale = messages(snapshot, RefreshStatus(last_error="refresh failed: boom"), "the file")
    assert stale[0].tone == "warn" and "boom" in stale[0].text


def test_node_rows_are_plain_json_for_every_node(snapshot):
    frame = snapshot.nodes.copy()
    frame.loc[0, "cpu_utilisation"] = np.nan
    rows = node_rows(frame)
    assert [r["node"] for r in rows] == list(frame["node"])
    assert rows[0]["cpu_utilisation"] is None
    for row in rows:
        for value in row.values():
            assert value is None or isinstance(value, str | int | float)
            assert not (isinstance(value, float) and math.isnan(value))


def test_capacity_lines_scale_with_servers_and_target_is_below_hard(snapshot):
    sizing = what_if(snapshot, headroom_participants=0.8)
    one = capacity_participants(sizing, 1)
    ten = capacity_participants(sizing, 10)
    assert one["target"] is not None and one["hard"] is not None
    assert one["target"] <= one["hard"]
    assert ten["hard"] == pytest.approx(10 * one["hard"])
    assert ten["target"] <= 10 * 200 * 0.8 + 1e-6  # participants target binds at most


def test_regimes_windows_and_fan_chart(snapshot):
    frame = snapshot.forecast
    spans = list(regime_spans(frame["regime"]))
    assert spans and spans[0][2] == HOLIDAY
    assert spans[0][0].date() == BREAK[0]
    assert (spans[0][1] - pd.Timedelta(hours=1)).date() == BREAK[1]
    last = frame["actual"].dropna().index[-1]
    for window in ("1w", "4w", "90d", "term"):
        low, high = window_range(frame, window)
        assert low <= last <= high
    assert window_range(frame, "all") is None
    with pytest.raises(ValueError, match="unknown window"):
        window_range(frame, "2y")
    fig = fan_chart(snapshot, snapshot.sizing, "4w")
    names = {t.name for t in fig.data}
    assert {"hourly peak (history)", "forecast median"} <= names
    assert any("band" in (n or "") for n in names)
    assert len(fig.layout.shapes) >= 3  # two capacity lines and the break


def test_heatmaps_use_the_engines_sizing(snapshot):
    inputs = snapshot.sizing.what_if
    demand, servers = heatmaps(snapshot, inputs)
    z = np.array(servers.data[0].z, dtype=float)
    assert np.array(demand.data[0].z).shape == (7, 24) and z.shape == (7, 24)
    upper = snapshot.forecast.loc[snapshot.forecast["actual"].isna(), "upper_95"]
    peak_slot = upper.idxmax()
    assert z[peak_slot.dayofweek, peak_slot.hour] == servers_for_participants(
        snapshot, inputs, float(upper.max())
    )
    grown = np.array(
        heatmaps(snapshot, what_if_inputs(snapshot, {"growth": 2}))[1].data[0].z, dtype=float
    )
    assert np.nansum(grown) > np.nansum(z)


def test_the_servers_heatmap_agrees_with_the_packing_aware_next_peak_card(snapshot):
    """The cells once used the analytic formula alone while the cards showed the
    packing-aware count (3 at 4 weeks where the heatmap said 2)."""
    from confscale.planner.sizing import horizon_demand

    sizing = snapshot.sizing
    factor = packing_factor(sizing)
    assert factor == sizing.packing["next_peak"]["inflation"] > 0
    participants, _ = horizon_demand(snapshot.forecast, sizing.what_if)["next_peak"]
    at_peak = servers_for_participants(snapshot, sizing.what_if, participants, factor)
    assert at_peak == sizing.servers_needed["next_peak"]
    z = np.array(heatmaps(snapshot, sizing.what_if, factor)[1].data[0].z, dtype=float)
    plain = np.array(heatmaps(snapshot, sizing.what_if)[1].data[0].z, dtype=float)
    known = ~np.isnan(plain)
    assert known.any()
    assert (z[known] >= plain[known]).all() if factor >= 1 else (z[known] <= plain[known]).all()


def test_constraint_chart_highlights_the_binding_constraint(snapshot):
    fig = constraint_chart(snapshot.sizing)
    bars = fig.data[0]
    binding = snapshot.sizing.binding_by_horizon["next_peak"]
    colours = dict(zip(bars.x, bars.marker.color, strict=True))
    assert colours[binding] == "#d62728"
    assert sum(c == "#d62728" for c in colours.values()) == 1


def test_store_from_controls_maps_to_engine_inputs(snapshot):
    store = store_from_controls(1.5, 0.4, "high", 0.1, 0.7, 0.75, 1.0, 2, 1000, 80)
    assert store["camera_kbit"] == CAMERA_PROFILES["high"]
    assert store["link_capacity_bytes_per_second"] == 125e6
    inputs = what_if_inputs(snapshot, {**store, "junk": 1, "redundancy": None})
    assert inputs.growth == 1.5 and inputs.band == 80 and inputs.redundancy == 1
    assert "junk" not in what_if_changes({"junk": 1})
    with pytest.raises(ValueError, match="growth"):
        what_if_inputs(snapshot, {"growth": -1.0})


def test_basic_auth_checks_and_never_shows_the_password(tmp_path):
    auth = BasicAuth("ops", "s3cret:with-colon")
    token = base64.b64encode(b"ops:s3cret:with-colon").decode()
    assert auth.allows(f"Basic {token}")
    assert not auth.allows("Basic " + base64.b64encode(b"ops:wrong").decode())
    assert not auth.allows("Basic !!!") and not auth.allows(None)
    assert "s3cret" not in repr(auth)
    good = tmp_path / "auth"
    good.write_text("\nops:s3cret:with-colon\n")
    assert load_auth_file(good) == auth
    bad = tmp_path / "bad"
    bad.write_text("only-a-user\n")
    with pytest.raises(AuthConfigError, match="user:password") as caught:
        load_auth_file(bad)
    assert "only-a-user" not in str(caught.value)
    with pytest.raises(AuthConfigError, match="cannot read"):
        load_auth_file(tmp_path / "missing")
    assert auth_from_env({}) is None
    assert auth_from_env({"CONFSCALE_WEB_AUTH_FILE": str(good)}) == auth
    with pytest.raises(AuthConfigError, match="both"):
        auth_from_env({"CONFSCALE_WEB_USER": "ops"})


def test_two_apps_in_one_process_share_nothing(snapshot):
    services = [PlannerService(lambda: pd.DataFrame()) for _ in range(2)]
    apps = [create_app(s, WebOptions(source=f"source {i}")) for i, s in enumerate(services)]
    assert apps[0].server is not apps[1].server
    assert apps[0].callback_map.keys() == apps[1].callback_map.keys()
    protect(apps[0].server, BasicAuth("ops", "pw"))
    assert apps[0].server.test_client().get("/").status_code == 401
    assert apps[0].server.test_client().get("/-/healthy").status_code in (200, 404)
    assert apps[1].server.test_client().get("/").status_code == 200


def test_options_from_the_environment():
    assert options_from_env({}) == WebOptions()
    options = options_from_env(
        {"CONFSCALE_WEB_LEAD_TIME_DAYS": "42", "CONFSCALE_WEB_SOURCE": "Prometheus at x"}
    )
    assert options.lead_time_days == 42 and options.source == "Prometheus at x"
    for bad in ("six weeks", "-1", "nan"):
        with pytest.raises(ValueError, match="CONFSCALE_WEB_LEAD_TIME_DAYS"):
            options_from_env({"CONFSCALE_WEB_LEAD_TIME_DAYS": bad})


def test_backtest_per_horizon_rows_and_residual_boxes_come_from_the_snapshot(
    snapshot, short_snapshot
):
    from confscale.planner.web.figures import residuals_chart
    from confscale.planner.web.view import backtest_horizon_rows

    rows = backtest_horizon_rows(snapshot)
    order = [row["bucket"] for row in rows]
    assert order == sorted(order, key=["1-24h", "25-168h", "169-672h", ">672h"].index)
    used = {row["bucket"]: row["method"] for row in rows if row["chosen"] == "yes"}
    assert used == snapshot.method_by_horizon
    assert backtest_horizon_rows(short_snapshot) == []
    assert short_snapshot.past_forecasts is None and short_snapshot.residuals is None
    figure = residuals_chart(snapshot.residuals)
    boxes = [t for t in figure.data if t.type == "box"]
    assert {b.name for b in boxes} == set(METHODS)
    for box in boxes:  # quantiles of the published residuals, in participants
        part = snapshot.residuals[snapshot.residuals["method"] == box.name]
        first = box.x[0]
        errors = part.loc[part["bucket"] == first, "raw_error"]
        assert box.median[0] == pytest.approx(errors.median())
        assert box.lowerfence[0] <= box.q1[0] <= box.median[0] <= box.q3[0] <= box.upperfence[0]


def test_the_horizon_cards_say_which_packing_bound_was_used_and_why(snapshot):
    from dataclasses import replace

    sizing = snapshot.sizing
    packing = dict(sizing.packing["next_peak"])
    packing.update(
        used="upper", risk=0.31, servers=sizing.servers_needed["next_peak"], lectures_apart=None
    )
    forced = replace(sizing, packing={**sizing.packing, "next_peak": packing})
    card = {c.key: c for c in overview_cards(snapshot, forced, lead_time_days=28)}["next_peak"]
    assert "upper bound (least-loaded over a target in 31% of peaks)" in card.detail
    assert f"analytic {packing['analytic_bound']}" in card.detail
    assert f"upper {packing['upper_bound']}" in card.detail
    assert "apart" not in card.detail
    fewer = packing["servers"] - 1
    packing.update(used="packing", risk=0.0, lectures_apart=fewer)
    forced = replace(sizing, packing={**sizing.packing, "next_peak": packing})
    card = {c.key: c for c in overview_cards(snapshot, forced, lead_time_days=28)}["next_peak"]
    assert "packed · fluid" in card.detail and "least-loaded" not in card.detail
    assert f"{fewer} with meetings over half a node apart" in card.detail
    packing.update(lectures_apart=packing["servers"] + 3)  # no way out: not on the card
    forced = replace(sizing, packing={**sizing.packing, "next_peak": packing})
    card = {c.key: c for c in overview_cards(snapshot, forced, lead_time_days=28)}["next_peak"]
    assert "apart" not in card.detail
