"""Jitsi bridges sized: stress fitted against load, bridges counted at the stress target.

A bridge's ``stress_level`` is jitsi-videobridge's own load figure (JvbLoadManager:
the load measurement ÷ its threshold; with the ``packet-rate`` measurement, RTP packets
received plus sent per second ÷ 50,000 — jitsi/jitsi-videobridge@a29d97d1,
``jvb/src/main/kotlin/org/jitsi/videobridge/load_management/``). Packets are linear in
the streams, so the fit is linear through the origin:

    stress ≈ c_p·participants + c_v·video_participants [+ c_f·video_fanout]

by least squares on the history's Jitsi rows (each 5-minute sample with load is one
point; regressors the history lacks or never varies are left out; a negative coefficient
drops its regressor; one pass drops points beyond 3 MADs and refits). Under
``MIN_FIT_SAMPLES`` samples the coefficients are priors from the same packet-rate
formula, and the answer says so.

Demand per horizon is Jitsi participants × stress per participant (the fit's
coefficients × the regressors per participant at the bridges' busy instants) × growth.
"now" is the last hour's Jitsi peak; next_peak and 4w scale the sized pool's forecast
(its upper band) by the Jitsi ÷ sized participants ratio at busy hours (the mean of each
series' busiest 5 % of hours over the last 4 weeks); a pool of bridges only forecasts its
own participants (ratio 1). The count is BBB's N+R: ``max(⌈D/T⌉, ⌈D/F⌉ + R, N_min)``
with T, F the stress target and failure target. No largest-meeting term: a conference
can span bridges (Octo relays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from confscale.planner.demand import WhatIf
from confscale.planner.peaks import hourly_peaks, pool_totals
from confscale.planner.sizing import HORIZONS, Sizing, horizon_demand

CONSTRAINT = "jitsi_stress"
REGRESSORS: tuple[str, ...] = ("participants", "video_participants", "video_fanout")
MIN_FIT_SAMPLES = 288  # one day of 5-minute samples with load, over all bridges
# Priors from the packet-rate stress (see the module doc): a participant receives one
# 50 packet/s Opus stream and about 0.3 of them talk (50 packet/s in); a 200 kbit/s
# webcam in 1,200-byte packets is ~20.8 packet/s received once and sent once per viewer.
LOAD_THRESHOLD_PPS = 50_000.0
AUDIO_PPS, VOICE_SHARE, VIDEO_PPS, PRIOR_VIEWERS = 50.0, 0.3, 200e3 / 8 / 1_200, 14.0
PRIOR = {
    "participants": AUDIO_PPS * (1 + VOICE_SHARE) / LOAD_THRESHOLD_PPS,
    "video_participants": VIDEO_PPS / LOAD_THRESHOLD_PPS,
    "video_fanout": VIDEO_PPS / LOAD_THRESHOLD_PPS,
}
# Without a fan-out column the video endpoint carries its viewers' streams too.
PRIOR_VIDEO_NO_FANOUT = VIDEO_PPS * (1 + PRIOR_VIEWERS) / LOAD_THRESHOLD_PPS
BUSY_QUANTILE = 0.9  # shares per participant at the bridges' busiest 10 % of instants
RATIO_TOP_SHARE = 0.05
RATIO_DAYS = 28


@dataclass(frozen=True)
class StressFit:
    """Stress per unit of each regressor, and where the figures come from."""

    coefficients: dict[str, float]
    source: str  # "fitted" | "prior"
    samples: int
    rmse: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "coefficients": {k: round(v, 8) for k, v in self.coefficients.items()},
            "source": self.source,
            "samples": self.samples,
            "rmse": None if self.rmse is None else round(self.rmse, 5),
        }


def prior_fit(regressors: tuple[str, ...], samples: int = 0) -> StressFit:
    coefficients = {k: PRIOR[k] for k in regressors}
    if "video_participants" in coefficients and "video_fanout" not in coefficients:
        coefficients["video_participants"] = PRIOR_VIDEO_NO_FANOUT
    return StressFit(coefficients, "prior", samples)


def regressors_of(rows: pd.DataFrame) -> tuple[str, ...]:
    """The regressors the rows have and that vary (participants always, if present)."""
    out = []
    for k in REGRESSORS:
        if k in rows and rows[k].notna().any() and (k == "participants" or rows[k].max() > 0):
            out.append(k)
    return tuple(out)


def fit_stress(rows: pd.DataFrame, regressors: tuple[str, ...] | None = None) -> StressFit:
    """Least squares through the origin of ``jitsi_stress`` on the regressors (see above)."""
    regressors = regressors_of(rows) if regressors is None else regressors
    if "participants" not in regressors or "jitsi_stress" not in rows:
        return prior_fit(regressors or ("participants",))
    x = rows[list(regressors)].to_numpy(dtype=float)
    y = rows["jitsi_stress"].to_numpy(dtype=float)
    use = np.isfinite(y) & np.isfinite(x).all(axis=1) & (x[:, 0] > 0)
    x, y = x[use], y[use]
    if len(y) < MIN_FIT_SAMPLES:
        return prior_fit(regressors, len(y))
    names = list(regressors)
    keep = np.ones(len(y), dtype=bool)
    for trimmed in (False, True):
        columns = list(range(len(names)))
        while True:
            coef, *_ = np.linalg.lstsq(x[keep][:, columns], y[keep], rcond=None)
            if (coef >= 0).all() or len(columns) == 1:
                break
            columns.pop(int(np.argmin(coef)))
        if 0 not in columns or coef[0] <= 0:
            return prior_fit(regressors, len(y))
        residual = y - x[:, columns] @ coef
        if trimmed:
            break
        spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
        if spread <= 0:
            break
        inside = np.abs(residual - np.median(residual)) <= 3 * spread
        if inside.sum() < MIN_FIT_SAMPLES or inside.all():
            break
        keep = inside
    chosen = {names[i]: float(c) for i, c in zip(columns, coef, strict=True)}
    rmse = float(np.sqrt(np.mean(residual[keep] ** 2)))
    return StressFit({k: chosen.get(k, 0.0) for k in names}, "fitted", int(keep.sum()), rmse)


@dataclass(frozen=True)
class JitsiModel:
    """What Jitsi sizing needs from the history; a what-if re-sizes from it in microseconds."""

    fit: StressFit
    bridges: dict[str, StressFit]
    shares: dict[str, float]  # each regressor per participant at busy instants
    participants_now: float
    now_at: str | None
    ratio: float  # Jitsi participants per participant of the sized forecast, busy hours
    forecast_source: str  # "pool_forecast" | "scaled_sized_forecast"
    notes: tuple[str, ...] = ()

    @property
    def stress_per_participant(self) -> float:
        return sum(c * self.shares.get(k, 0.0) for k, c in self.fit.coefficients.items())


def jitsi_model(frame: pd.DataFrame, sized_hourly: pd.Series, *, own: bool) -> JitsiModel | None:
    """The model from a history frame's Jitsi rows (None: no bridges or no stress figures).

    ``sized_hourly`` is the hourly participant series the pool's forecast is built on;
    ``own`` when that series is the bridges' own (a pool of bridges only).
    """
    rows = frame[frame["kind"].to_numpy() == "jitsi"]  # numpy: 4x pandas' on 5 M rows
    if rows.empty or "jitsi_stress" not in rows or rows["jitsi_stress"].isna().all():
        return None
    regressors = regressors_of(rows)
    fit = fit_stress(rows, regressors)
    bridges = {str(n): fit_stress(r, regressors) for n, r in rows.groupby("node", sort=True)}
    notes = []
    if fit.source == "prior":
        notes.append(
            f"Jitsi stress fit uses priors (packet-rate formula): {fit.samples} sample(s) "
            f"with load, {MIN_FIT_SAMPLES} needed"
        )
    totals = pool_totals(rows)
    busy = totals[totals["participants"] >= totals["participants"].quantile(BUSY_QUANTILE)]
    busy = busy[busy["participants"] > 0]
    people = float(busy["participants"].sum())
    shares = {
        k: (
            float(busy[k].sum()) / people
            if people > 0 and k in busy
            else float(k == "participants")
        )
        for k in regressors
    }
    hourly = hourly_peaks(totals["participants"]).dropna()
    now, now_at = (
        (float(hourly.iloc[-1]), hourly.index[-1].isoformat()) if len(hourly) else (math.nan, None)
    )
    if own:
        ratio, source = 1.0, "pool_forecast"
    else:
        ratio, source = busy_ratio(hourly, sized_hourly), "scaled_sized_forecast"
        if not math.isfinite(ratio):
            notes.append("no busy hours in the sized forecast: Jitsi sized for now only")
    return JitsiModel(fit, bridges, shares, now, now_at, ratio, source, tuple(notes))


def busy_ratio(jitsi: pd.Series, sized: pd.Series) -> float:
    """Mean of the busiest 5 % of hours (last 4 weeks): Jitsi ÷ sized pool (NaN if none)."""

    def top(series: pd.Series) -> float:
        series = series.dropna()
        if series.empty:
            return math.nan
        series = series[series.index > series.index[-1] - pd.Timedelta(days=RATIO_DAYS)]
        count = max(1, math.ceil(len(series) * RATIO_TOP_SHARE))
        return float(np.sort(series.to_numpy(dtype=float))[-count:].mean())

    base = top(sized)
    return top(jitsi) / base if base > 0 else math.nan


def bridges_needed(stress: float, what_if: WhatIf) -> tuple[int | None, int | None, int | None]:
    """(n_normal, n_failure, servers) for a pool stress: N+R as for BBB."""
    target, failure = what_if.headroom(CONSTRAINT), what_if.failure(CONSTRAINT)
    if not math.isfinite(stress) or target <= 0 or failure <= 0:
        return None, None, None
    normal = math.ceil(stress / target - 1e-9)
    lost = math.ceil(stress / failure - 1e-9) + what_if.redundancy
    return normal, lost, max(normal, lost, what_if.min_servers)


def size_jitsi(
    model: JitsiModel, forecast: pd.DataFrame, what_if: WhatIf, bridges_online: int
) -> dict[str, object]:
    """The capacity JSON's ``jitsi`` block for these what-if inputs."""
    points = horizon_demand(forecast, what_if)
    per_participant = model.stress_per_participant
    needed: dict[str, int | None] = {}
    demand: dict[str, dict[str, float | None]] = {}
    at: dict[str, str | None] = {}
    for horizon in HORIZONS:
        if horizon == "now":
            participants, at[horizon] = model.participants_now, model.now_at
        else:
            sized, at[horizon] = points[horizon]
            participants = sized * model.ratio
        stress = participants * what_if.growth * per_participant
        normal, lost, needed[horizon] = bridges_needed(stress, what_if)
        finite = math.isfinite(stress)
        demand[horizon] = {
            "participants": round(participants * what_if.growth, 2) if finite else None,
            "stress": round(stress, 4) if finite else None,
            "n_normal": normal,
            "n_failure": lost,
        }
    stress_now = demand["now"]["stress"]
    target = what_if.headroom(CONSTRAINT)
    headroom = (
        round(1 - stress_now / (target * bridges_online), 4)
        if stress_now is not None and bridges_online and target > 0
        else None
    )
    return {
        "servers_needed": needed,
        "servers_online": bridges_online,
        "binding_constraint": CONSTRAINT,
        "binding_constraint_by_horizon": {h: CONSTRAINT for h in HORIZONS if needed[h] is not None},
        "target_stress": target,
        "failure_stress": what_if.failure(CONSTRAINT),
        "utilisation_headroom": headroom,
        "demand": demand,
        "demand_at": at,
        "stress_per_participant": round(per_participant, 6),
        "shares_per_participant": {k: round(v, 4) for k, v in model.shares.items()},
        "fit": model.fit.as_dict(),
        "bridges": {n: f.as_dict() for n, f in model.bridges.items()},
        "forecast": {"source": model.forecast_source, "ratio": round(model.ratio, 4)},
        "notes": list(model.notes),
    }


def with_jitsi(
    sizing: Sizing, model: JitsiModel | None, forecast: pd.DataFrame, bridges_online: int
) -> Sizing:
    """``sizing`` with its ``jitsi`` block for the same what-if inputs (unchanged if None)."""
    if model is None:
        return sizing
    return replace(sizing, jitsi=size_jitsi(model, forecast, sizing.what_if, bridges_online))


__all__ = [
    "CONSTRAINT",
    "JitsiModel",
    "StressFit",
    "bridges_needed",
    "fit_stress",
    "jitsi_model",
    "size_jitsi",
    "with_jitsi",
]
