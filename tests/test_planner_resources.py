"""Resource model: quantile regression recovers the pool's costs; priors when short."""

from __future__ import annotations

import numpy as np
import pytest
from confscale.planner.history import derive_rates, validate_history
from confscale.planner.resources import fit_resource_model, prior_model, quantile_regression
from confscale.planner.synthetic import Truth, synthetic_history


def test_quantile_regression_finds_upper_quantile_line() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, size=(5000, 1))
    y = 2.0 + 0.5 * x[:, 0] + rng.uniform(0, 10, size=5000)  # upper edge at +10
    beta = quantile_regression(x, y, 0.9)
    assert beta[1] == pytest.approx(0.5, abs=0.02)
    assert beta[0] == pytest.approx(11.0, abs=0.6)  # 2 + 0.9 × 10
    # a feature with a negative effect is dropped, not given a negative cost
    x2 = np.column_stack([x[:, 0], rng.uniform(0, 100, 5000)])
    y2 = 1.0 + 0.5 * x2[:, 0] - 0.2 * x2[:, 1] + rng.normal(0, 1, 5000)
    assert quantile_regression(x2, y2, 0.9)[2] == 0.0


def test_fit_recovers_the_pools_costs_conservatively() -> None:
    truth = Truth()
    frame = derive_rates(validate_history(synthetic_history(nodes=6, weeks=3, seed=9)))
    model = fit_resource_model(frame, quantile=0.9)
    assert model.source == {"cpu": "fitted", "transmit": "fitted"}
    assert model.as_dict()["priors_used"] == []
    # the generator scales costs by U(0.9, 1) (CPU) / U(0.85, 1) (transmit): the 0.9
    # quantile sits near the top of that, within a few percent of the truth
    assert model.transmit.video_fanout == pytest.approx(truth.tx_fanout, rel=0.08)
    assert model.cpu.voice_participants + model.cpu.listeners > 0
    load = (20, 80, 300)
    predicted = model.cpu(*load)
    true = truth.cpu_base + truth.cpu_voice * 20 + truth.cpu_listener * 80 + truth.cpu_fanout * 300
    assert predicted == pytest.approx(true, rel=0.1)


def test_short_history_uses_priors_and_says_so() -> None:
    frame = derive_rates(validate_history(synthetic_history(nodes=1, weeks=1, seed=1)))
    model = fit_resource_model(frame)
    assert model.source == {"cpu": "prior", "transmit": "prior"}
    assert "days" in model.notes[0]
    prior = prior_model()
    assert model.transmit == prior.transmit
    # 40 kbit/s per audio user and 200 kbit/s per webcam stream, × 1.25 overhead
    assert prior.transmit.voice_participants == pytest.approx(40e3 / 8 * 1.25)
    assert prior.transmit.video_fanout == pytest.approx(200e3 / 8 * 1.25)
