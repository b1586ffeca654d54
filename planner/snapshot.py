"""One planner result: history → forecast, backtest, fit, sizing, placement (pure).

:func:`compute_snapshot` does the whole computation from a history frame; the
:class:`Snapshot` it returns is immutable and is what the HTTP API, ``/metrics`` and the
Dash page read. :func:`what_if` re-sizes from a snapshot without refitting anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
from confscale.planner.backtest import BacktestResult, empty_horizon_table, rolling_origin
from confscale.planner.calendar import RegimeCalendar
from confscale.planner.forecast import (
    LEAD_BUCKETS,
    WEEK_HOURS,
    ForecastConfig,
    forecast_frame,
    growth_factor,
    is_short,
)
from confscale.planner.history import derive_rates
from confscale.planner.jitsi import JitsiModel, jitsi_model, with_jitsi
from confscale.planner.mix import (
    demand_mix,
    meeting_table,
    node_capacity,
    with_largest_meeting_shares,
)
from confscale.planner.nodes import node_table, readings_from_history
from confscale.planner.packing import MeetingTable
from confscale.planner.peaks import five_minute_peaks, hourly_peaks, pool_totals
from confscale.planner.placement import (
    Hysteresis,
    NodeReading,
    Placement,
    PressureTargets,
    place,
)
from confscale.planner.prometheus import POOL_HOURLY_ATTR
from confscale.planner.reservations import ReservationPolicy
from confscale.planner.resources import ResourceModel, fit_resource_model
from confscale.planner.sizing import (
    FOUR_WEEKS_HOURS,
    DemandMix,
    NodeCapacity,
    Sizing,
    WhatIf,
    size_pool,
    with_changes,
)

MIN_BACKTEST_HOURS = 3 * WEEK_HOURS


@dataclass(frozen=True)
class PlannerConfig:
    """Everything the computation depends on besides the data."""

    calendar: RegimeCalendar = field(default_factory=RegimeCalendar)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    what_if: WhatIf = field(default_factory=WhatIf)
    targets: PressureTargets = field(default_factory=PressureTargets)
    hysteresis: Hysteresis = field(default_factory=Hysteresis)
    quantile: float = 0.9
    horizon_hours: int = FOUR_WEEKS_HOURS
    stale_after: float = 180.0
    reservations: ReservationPolicy = field(default_factory=ReservationPolicy)  # /next


@dataclass(frozen=True)
class Snapshot:
    """The last computed answer; every figure the page, API and /metrics show."""

    generated_at: float
    data_until: float | None
    sizing: Sizing
    forecast: pd.DataFrame = field(repr=False)  # hourly: actual, median, lower/upper_50|80|95
    backtest: pd.DataFrame = field(repr=False)  # per method: mase, coverage_80/95, peak_ape
    method_by_horizon: dict[str, str]
    nodes: pd.DataFrame = field(repr=False)  # the node table, in placement order
    placement: Placement
    model: ResourceModel
    mix: DemandMix
    capacity: NodeCapacity
    weekly_growth: float
    warnings: tuple[str, ...] = ()
    sized_kind: str | None = "bbb"  # the node kind the sizing counts (None: every node)
    # per method and lead-time bucket: mase, coverage_80/95, n, chosen
    backtest_by_horizon: pd.DataFrame = field(default_factory=empty_horizon_table, repr=False)
    # the day-ahead forecasts the backtest's origins issued (the 1-24h method), by target
    # hour: median, lower/upper_50|80|95, origin, lead_hours, actual (None: no backtest)
    past_forecasts: pd.DataFrame | None = field(default=None, repr=False)
    # out-of-sample residuals: method, bucket, lead_hours, hour (local), error (scaled),
    # raw_error (participants), target_time (None: no backtest)
    residuals: pd.DataFrame | None = field(default=None, repr=False)
    # the pool's meetings at busy instants (packing-aware sizing; the draw is cached on it)
    meetings: MeetingTable | None = field(default=None, repr=False)
    # how the forecast bands were calibrated: "full", "short" (widened) or "none"
    bands: dict[str, object] = field(default_factory=dict)
    # the Jitsi bridges' stress fit and demand (planner/jitsi.py); None: no bridges sized
    jitsi: JitsiModel | None = field(default=None, repr=False)

    @property
    def servers_online(self) -> int:
        return self.sizing.servers_online

    @property
    def servers_needed(self) -> dict[str, int | None]:
        return self.sizing.servers_needed

    def sizing_scope(self) -> dict[str, object]:
        """What the sizing counts: the node kind, and the nodes of other kinds it leaves out
        (Jitsi bridges are sized apart, in the ``jitsi`` block, when the history has their
        stress; otherwise they are placed and drained by the signal, not sized)."""
        others: dict[str, int] = {}
        if self.sized_kind is not None:
            for node in self.placement.nodes:
                if node.kind == "jitsi" and self.jitsi is not None:
                    continue
                if node.kind != self.sized_kind:
                    others[node.kind] = others.get(node.kind, 0) + 1
        note = (
            f"servers_needed counts {self.sized_kind.upper()} nodes only"
            if self.sized_kind
            else "servers_needed counts every node"
        )
        if others:
            names = {"jitsi": "Jitsi bridge(s)", "bbb": "BBB node(s)"}
            left = ", ".join(
                f"{n} {names.get(kind, kind + ' node(s)')}" for kind, n in sorted(others.items())
            )
            note += f"; {left} of the pool are in the placement signal but not sized"
        if self.jitsi is not None and self.sized_kind is not None:
            note += "; Jitsi bridges are sized separately (the jitsi block, at jitsi_stress)"
        return {"sized_kind": self.sized_kind, "not_sized": others, "note": note}

    def capacity_dict(self) -> dict[str, object]:
        """The ``/api/v1/capacity`` and ``confscale-planner size`` JSON."""
        return {
            **self.sizing.as_dict(),
            "scope": self.sizing_scope(),
            "generated_at": self.generated_at,
            "data_until": self.data_until,
            "weekly_growth": round(self.weekly_growth, 4),
            "model": self.model.as_dict(),
            "method_by_horizon": dict(self.method_by_horizon),
            "bands": dict(self.bands),
            "warnings": list(self.warnings),
        }

    @cached_property
    def capacity_json(self) -> bytes:
        return json.dumps(json_safe(self.capacity_dict())).encode()

    @cached_property
    def placement_json(self) -> bytes:
        return json.dumps(json_safe(self.placement.as_dict())).encode()


def what_if(snapshot: Snapshot, **changes: object) -> Sizing:
    """Re-size from ``snapshot`` with changed what-if inputs (no refit, no new forecast)."""
    inputs = with_changes(snapshot.sizing.what_if, **changes)
    sizing = size_pool(
        snapshot.forecast,
        mix=snapshot.mix,
        model=snapshot.model,
        capacity=snapshot.capacity,
        servers_online=snapshot.servers_online,
        what_if=inputs,
        weekly_growth=snapshot.weekly_growth,
        meetings=snapshot.meetings,
    )
    bridges = servers_online(snapshot.placement, "jitsi")
    return with_jitsi(sizing, snapshot.jitsi, snapshot.forecast, bridges)


def compute_snapshot(
    history: pd.DataFrame,
    config: PlannerConfig | None = None,
    *,
    now: float | None = None,
    readings: Sequence[NodeReading] | None = None,
    previous_out: frozenset[str] = frozenset(),
    rates_included: bool = False,
) -> Snapshot:
    """Everything from a validated history frame (see :mod:`planner.history`).

    ``readings`` are the current node figures (default: the last rows of the history, and
    ``now`` defaults to the history's last timestamp so a file replays consistently).
    ``rates_included``: the frame already has rate columns (Prometheus path).
    """
    config = config or PlannerConfig()
    warnings: list[str] = []
    frame = five_minute_peaks(history)
    if not rates_included:
        frame = derive_rates(frame, config.targets)
    data_until = frame["timestamp"].max().timestamp() if not frame.empty else None
    now = data_until if now is None else now
    if now is None:
        raise ValueError("empty history and no current time")
    if readings is None:
        readings = readings_from_history(frame)
    placement = place(
        readings,
        now=now,
        previous_out=previous_out,
        targets=config.targets,
        hysteresis=config.hysteresis,
        stale_after=config.stale_after,
    )

    is_bbb = (frame["kind"] == "bbb").to_numpy()
    sized = frame if is_bbb.all() or not is_bbb.any() else frame[is_bbb]
    pool = pool_totals(sized)
    hourly = hourly_peaks(pool["participants"])
    longer = history.attrs.get(POOL_HOURLY_ATTR)  # Prometheus: pool peaks over a longer span
    if isinstance(longer, pd.Series) and not longer.dropna().empty:
        hourly = hourly.combine_first(longer).asfreq("1h")

    def regime_of(index: pd.DatetimeIndex) -> np.ndarray:
        local = index.tz_convert(config.forecast.timezone)
        return np.asarray(config.calendar.regimes(local.date))

    backtest = _backtest(hourly, regime_of, config, warnings)
    if backtest is None:
        residuals, chosen, table = {}, {}, _empty_backtest()
        by_horizon, past, residual_frame = empty_horizon_table(), None, None
    else:
        residuals, chosen, table = backtest.residuals, backtest.method_by_bucket, backtest.table()
        by_horizon = backtest.horizon_table()
        past = backtest.past_forecasts(chosen.get(LEAD_BUCKETS[0][0], "confscale"))
        residual_frame = backtest.residual_frame(config.forecast.timezone)
    forecast = forecast_frame(
        hourly,
        regime_of,
        config.horizon_hours,
        residuals,
        chosen,
        config.forecast,
        None if backtest is None else backtest.widen,
    )
    bands = band_calibration(hourly, backtest, chosen)
    if bands["calibration"] == "short":
        warnings.append(str(bands["note"]))
    growth = growth_factor(hourly, regime_of(hourly.index), config.forecast)
    model = fit_resource_model(sized, config.quantile)
    if model.source.get("cpu") == "prior" or model.source.get("transmit") == "prior":
        warnings.append("resource model uses priors: " + "; ".join(model.notes))
    mix = with_largest_meeting_shares(demand_mix(pool), sized)
    capacity = node_capacity(sized, config.targets)
    meetings = meeting_table(sized, pool)
    sized_kind = "bbb" if is_bbb.any() else None
    online = servers_online(placement, sized_kind)
    sizing = size_pool(
        forecast,
        mix=mix,
        model=model,
        capacity=capacity,
        servers_online=online,
        what_if=config.what_if,
        weekly_growth=growth,
        meetings=meetings,
    )
    bridges = jitsi_model(frame, hourly, own=sized_kind is None)
    if bridges is not None:
        warnings.extend(bridges.notes)
        sizing = with_jitsi(sizing, bridges, forecast, servers_online(placement, "jitsi"))
    return Snapshot(
        generated_at=now,
        data_until=data_until,
        sizing=sizing,
        forecast=forecast,
        backtest=table,
        method_by_horizon=dict(chosen),
        nodes=node_table(placement),
        placement=placement,
        model=model,
        mix=mix,
        capacity=capacity,
        weekly_growth=growth,
        warnings=tuple(warnings),
        sized_kind=sized_kind,
        backtest_by_horizon=by_horizon,
        past_forecasts=past,
        residuals=residual_frame,
        meetings=meetings,
        bands=bands,
        jitsi=bridges,
    )


def band_calibration(
    hourly: pd.Series, backtest: BacktestResult | None, chosen: dict[str, str]
) -> dict[str, object]:
    """How the bands were calibrated, for the JSON and the page (see docs/planner.md)."""
    weeks = round(int(hourly.notna().sum()) / WEEK_HOURS, 1)
    if backtest is None:
        return {
            "calibration": "none",
            "history_weeks": weeks,
            "note": "no backtest (under 3 weeks of history): no bands; demand = median × 1.25",
        }
    used = sorted(set(chosen.values()))
    residuals = sum(len(backtest.residuals.get(m, ())) for m in used)
    widen = {m: backtest.widen.get(m, {}) for m in used}
    if is_short(hourly):
        return {
            "calibration": "short",
            "history_weeks": weeks,
            "residuals": residuals,
            "widen": widen,
            "note": (
                f"bands from a short history ({weeks:g} weeks, {residuals} out-of-sample "
                "residuals): widened by the finite-sample conformal correction over "
                "distinct days; coverage is less certain than with 6+ weeks"
            ),
        }
    return {
        "calibration": "full",
        "history_weeks": weeks,
        "residuals": residuals,
        "widen": widen,
        "note": "split-conformal bands, widths adapted to the coverage the backtest achieved",
    }


def servers_online(placement: Placement, kind: str | None) -> int:
    """Nodes (of ``kind``, if given) that are up and fresh: available or out."""
    return sum(
        1
        for p in placement.nodes
        if p.state in ("available", "out") and (kind is None or p.kind == kind)
    )


def with_placement(snapshot: Snapshot, placement: Placement) -> Snapshot:
    """The snapshot with a fresh placement (the cheap, frequent refresh).

    When the number of servers online changed, the sizing is redone from the same
    forecast and model (milliseconds), so headroom and saturation stay current.
    """
    online = servers_online(placement, snapshot.sized_kind)
    sizing = snapshot.sizing
    if online != sizing.servers_online:
        sizing = size_pool(
            snapshot.forecast,
            mix=snapshot.mix,
            model=snapshot.model,
            capacity=snapshot.capacity,
            servers_online=online,
            what_if=sizing.what_if,
            weekly_growth=snapshot.weekly_growth,
            meetings=snapshot.meetings,
        )
    sizing = with_jitsi(
        sizing, snapshot.jitsi, snapshot.forecast, servers_online(placement, "jitsi")
    )
    return replace(
        snapshot,
        placement=placement,
        nodes=node_table(placement),
        sizing=sizing,
        generated_at=placement.generated_at,
    )


def _backtest(
    hourly: pd.Series, regime_of, config: PlannerConfig, warnings: list[str]
) -> BacktestResult | None:
    known = int(hourly.notna().sum())
    if known < MIN_BACKTEST_HOURS:
        warnings.append(
            f"only {known} hours of history; need {MIN_BACKTEST_HOURS} for a "
            "backtest: bands are not calibrated, method is confscale"
        )
        return None
    horizon = min(config.horizon_hours, max(WEEK_HOURS, len(hourly) - 2 * WEEK_HOURS - 7 * 24))
    warmup = min(4 * WEEK_HOURS, max(2 * WEEK_HOURS, len(hourly) - horizon - 7 * 24))
    return rolling_origin(hourly, regime_of, horizon, config.forecast, warmup_hours=warmup)


def _empty_backtest() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[
            "mase",
            "coverage_80",
            "coverage_95",
            "peak_ape",
            "width_95",
            "width_95_busy",
            "origins",
        ]
    ).rename_axis("method")


def json_safe(value: object) -> object:
    """JSON has no NaN: replace non-finite floats by null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value
