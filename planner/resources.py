"""The pool's own resource model: CPU and transmit as functions of what users do.

Per node and 5-minute step: busy CPU cores and uplink transmit bytes/s regressed on
audio users (``voice_participants``), ``listeners`` and ``video_fanout`` by quantile
regression at a high quantile (a conservative marginal cost). Short or unusable history
falls back to the documented priors, and the model says which was used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

FEATURES: tuple[str, ...] = ("voice_participants", "listeners", "video_fanout")
KBIT = 1000 / 8  # bytes per second in one kbit/s

# Documented priors (docs/planner.md): BBB FAQ bandwidth formula with 1.25 overhead.
PRIOR_OVERHEAD = 1.25
PRIOR_AUDIO_KBIT = 40.0
PRIOR_CAMERA_KBIT = 200.0
# CPU prior (an assumption, marked as a prior in every answer that uses it): an 8-core
# node at its 75 % target carries ~300 talking or ~600 listening users, and a forwarded
# webcam stream costs a twentieth of a talking user; so with a typical mix the participant
# prior (200 per node) binds before CPU, as BBB's sizing guidance says.
PRIOR_CPU_PER_AUDIO_USER = 0.02
PRIOR_CPU_PER_LISTENER = 0.01
PRIOR_CPU_PER_FANOUT = 0.001
MIN_SAMPLES = 2016  # one week of 5-minute steps on one node
MIN_DAYS = 14  # and two weeks of calendar time (a fit on one week learns one week's mix)
MAX_FIT_ROWS = 100_000  # an even subsample keeps big pools fast; the quantile is stable


@dataclass(frozen=True)
class LinearCost:
    """cost = intercept + Σ coefficient·feature (per node)."""

    intercept: float
    voice_participants: float
    listeners: float
    video_fanout: float

    def __call__(self, voice: float, listeners: float, fanout: float) -> float:
        return (
            self.intercept
            + self.voice_participants * voice
            + self.listeners * listeners
            + self.video_fanout * fanout
        )


@dataclass(frozen=True)
class ResourceModel:
    """CPU (cores) and transmit (bytes/s) cost model; ``source`` says fitted or prior."""

    cpu: LinearCost
    transmit: LinearCost
    source: dict[str, str]
    quantile: float
    samples: int
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "cpu_cores": asdict(self.cpu),
            "transmit_bytes_per_second": asdict(self.transmit),
            "source": dict(self.source),
            "quantile": self.quantile,
            "samples": self.samples,
            "priors_used": sorted(k for k, v in self.source.items() if v == "prior"),
            "notes": list(self.notes),
        }


def prior_model(reason: str = "no usable history") -> ResourceModel:
    """The documented priors as a model."""
    return ResourceModel(
        cpu=LinearCost(0.0, PRIOR_CPU_PER_AUDIO_USER, PRIOR_CPU_PER_LISTENER, PRIOR_CPU_PER_FANOUT),
        transmit=LinearCost(
            0.0,
            PRIOR_AUDIO_KBIT * KBIT * PRIOR_OVERHEAD,
            PRIOR_AUDIO_KBIT * KBIT * PRIOR_OVERHEAD,
            PRIOR_CAMERA_KBIT * KBIT * PRIOR_OVERHEAD,
        ),
        source={"cpu": "prior", "transmit": "prior"},
        quantile=0.0,
        samples=0,
        notes=(reason,),
    )


def quantile_regression(
    x: np.ndarray, y: np.ndarray, quantile: float, iterations: int = 40
) -> np.ndarray:
    """Linear quantile regression by iteratively reweighted least squares.

    ``x`` without the intercept column; returns [intercept, slopes…]. Features whose
    slope comes out negative are dropped and the fit is repeated (costs are not
    negative), so the result is a conservative, non-negative marginal cost.
    """
    active = list(range(x.shape[1]))
    floor = 1e-6 * (float(np.abs(y).mean()) + 1e-9)  # keeps weights finite at zero residual
    while True:
        design = np.column_stack([np.ones(len(y)), x[:, active]])
        beta = np.linalg.lstsq(design, y, rcond=None)[0]
        for _ in range(iterations):
            residual = y - design @ beta
            weight = np.where(residual >= 0, quantile, 1 - quantile) / np.maximum(
                np.abs(residual), floor
            )
            weighted = design * weight[:, None]
            new = np.linalg.solve(design.T @ weighted + 1e-9 * np.eye(len(beta)), weighted.T @ y)
            if np.allclose(new, beta, rtol=1e-4, atol=1e-9):
                beta = new
                break
            beta = new
        negative = [active[i] for i, b in enumerate(beta[1:]) if b < 0]
        if not negative:
            break
        active = [a for a in active if a not in negative]
        if not active:
            beta = np.array([np.quantile(y, quantile)])
            break
    full = np.zeros(x.shape[1] + 1)
    full[0] = beta[0]
    for position, feature in enumerate(active):
        full[feature + 1] = beta[position + 1]
    return full


def fit_resource_model(frame: pd.DataFrame, quantile: float = 0.9) -> ResourceModel:
    """Fit on per-node 5-minute rows of BBB nodes (needs :func:`derive_rates` columns)."""
    needed = [*FEATURES, "cpu_busy_cores", "transmit_bytes_per_second"]
    if frame.empty or any(c not in frame for c in needed):
        return prior_model("history lacks the columns to fit")
    span = (frame["timestamp"].max() - frame["timestamp"].min()).total_seconds() / 86400
    if span < MIN_DAYS:
        return prior_model(f"history covers {span:.1f} days; need {MIN_DAYS} to fit")
    is_bbb = (frame["kind"] == "bbb").to_numpy()
    rows = frame[needed] if is_bbb.all() else frame.loc[is_bbb, needed]
    if len(rows) > 4 * MAX_FIT_ROWS:  # thin evenly before the row-wise filters
        rows = rows.iloc[:: len(rows) // (2 * MAX_FIT_ROWS)]
    rows = rows.dropna()
    rows = rows[rows[list(FEATURES)].sum(axis=1) > 0]  # idle steps say nothing of cost
    if len(rows) < MIN_SAMPLES:
        return prior_model(f"only {len(rows)} loaded 5-minute samples; need {MIN_SAMPLES}")
    if len(rows) > MAX_FIT_ROWS:
        rows = rows.iloc[:: int(np.ceil(len(rows) / MAX_FIT_ROWS))]
    x = rows[list(FEATURES)].to_numpy(dtype=float)
    source: dict[str, str] = {}
    notes: list[str] = []
    prior = prior_model()
    costs: dict[str, LinearCost] = {}
    for name, column, fallback in (
        ("cpu", "cpu_busy_cores", prior.cpu),
        ("transmit", "transmit_bytes_per_second", prior.transmit),
    ):
        beta = quantile_regression(x, rows[column].to_numpy(dtype=float), quantile)
        if not np.all(np.isfinite(beta)) or not np.any(beta[1:] > 0):
            costs[name], source[name] = fallback, "prior"
            notes.append(f"{name}: fit gave no positive marginal cost; using priors")
            continue
        costs[name], source[name] = LinearCost(*map(float, beta)), "fitted"
    return ResourceModel(costs["cpu"], costs["transmit"], source, quantile, len(rows), tuple(notes))
