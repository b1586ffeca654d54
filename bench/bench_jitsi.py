"""Jitsi sizing: the stress fit out of sample against simpler fits, and the what-if time.

A simulated pool (4 BBB nodes, 3 bridges, 6 weeks; the bridges' stress is
jitsi-videobridge's packet-rate formula, simulator/jvb.py). The fit (planner/jitsi.py)
sees the first 4 weeks; on the last 2 it predicts each bridge's stress from its load.
Printed per fit — the planner's (participants, video endpoints, fan-out), participants
only (the obvious simpler fit), and the priors — the out-of-sample RMSE, the error on
the pool's peak stress, and the bridges that peak needs (N+R at 0.8/0.9) against the
count from the true stress. Then the time of a Jitsi what-if against a full refit.

    nice .venv/bin/python -m bench.bench_jitsi
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
from confscale.planner import jitsi
from confscale.planner.demand import WhatIf
from confscale.planner.snapshot import compute_snapshot, what_if
from confscale.simulator.history import history_frame

END = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp()


def predict(fit: jitsi.StressFit, rows) -> np.ndarray:
    return sum(c * rows[k].to_numpy(dtype=float) for k, c in fit.coefficients.items())


def main() -> None:
    frame = history_frame(nodes=4, jitsi=3, seed=5, end=END, weeks=6)
    bridges = frame[frame["kind"] == "jitsi"]
    split = bridges["timestamp"].min() + (
        bridges["timestamp"].max() - bridges["timestamp"].min()
    ) * (4 / 6)
    train, test = bridges[bridges["timestamp"] <= split], bridges[bridges["timestamp"] > split]
    fits = {
        "planner fit": jitsi.fit_stress(train),
        "participants only": jitsi.fit_stress(train, ("participants",)),
        "priors": jitsi.prior_fit(jitsi.regressors_of(train)),
    }
    truth = test["jitsi_stress"].to_numpy()
    pool_truth = test.assign(s=truth).groupby("timestamp")["s"].sum()
    peak_at = pool_truth.idxmax()
    what = WhatIf()
    _, _, need_truth = jitsi.bridges_needed(float(pool_truth.max()), what)
    print(
        f"held-out 2 weeks: {len(test)} bridge samples, pool peak stress {pool_truth.max():.3f} "
        f"at {peak_at:%a %H:%M}, bridges needed for it (true stress) {need_truth}"
    )
    errors = {}
    for name, fit in fits.items():
        guess = predict(fit, test)
        rmse = float(np.sqrt(np.mean((guess - truth) ** 2)))
        pool_guess = test.assign(s=guess).groupby("timestamp")["s"].sum()
        peak = float(pool_guess.max())
        _, _, need = jitsi.bridges_needed(peak, what)
        errors[name] = rmse
        coefficients = ", ".join(f"{k} {v:.2e}" for k, v in fit.coefficients.items())
        print(
            f"{name:18s} ({fit.source}): RMSE {rmse:.4f}, pool peak {peak:.3f} "
            f"({peak / pool_truth.max() - 1:+.1%}), bridges {need}  [{coefficients}]"
        )
    print(
        f"RMSE ratio: participants-only / planner fit = "
        f"{errors['participants only'] / errors['planner fit']:.2f}, "
        f"priors / planner fit = {errors['priors'] / errors['planner fit']:.2f}"
    )
    started = time.perf_counter()
    snapshot = compute_snapshot(frame)
    refit = time.perf_counter() - started
    block = snapshot.sizing.jitsi
    print(
        f"snapshot: Jitsi servers_needed {block['servers_needed']} (online "
        f"{block['servers_online']}, fit {block['fit']['source']}, forecast ratio "
        f"{block['forecast']['ratio']}); BBB servers_needed {snapshot.servers_needed}"
    )
    rounds = 20
    started = time.perf_counter()
    for i in range(rounds):
        what_if(snapshot, growth=1.0 + i / 100, headroom_jitsi_stress=0.7)
    whatif = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for i in range(200):
        jitsi.size_jitsi(snapshot.jitsi, snapshot.forecast, WhatIf(growth=1 + i / 1000), 3)
    alone = (time.perf_counter() - started) / 200
    print(
        f"full refit {refit:.2f} s; what-if (BBB + Jitsi) {whatif * 1000:.1f} ms; the Jitsi "
        f"part alone {alone * 1000:.2f} ms; refit / what-if = {refit / whatif:.0f}×"
    )


if __name__ == "__main__":
    main()
