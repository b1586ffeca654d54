"""History loading and validation: clear errors for bad files, honest rates for gaps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from confscale.planner.history import HistoryError, derive_rates, load_history, validate_history
from confscale.planner.snapshot import compute_snapshot
from confscale.planner.synthetic import synthetic_history


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return synthetic_history(nodes=3, weeks=1, seed=3)


def test_csv_gzip_and_parquet_round_trip(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small.assign(timestamp=small["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    frame.to_csv(tmp_path / "h.csv.gz", index=False)
    small.to_parquet(tmp_path / "h.parquet", index=False)
    from_csv = load_history(tmp_path / "h.csv.gz")
    from_parquet = load_history(tmp_path / "h.parquet")
    assert len(from_csv) == len(small) == len(from_parquet)
    assert from_csv["timestamp"].dt.tz is not None
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_dtype=False)


def test_malformed_csv_names_file_line_and_column(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small.head(20).astype({"participants": object})
    frame.loc[7, "participants"] = "12x"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(HistoryError, match=r"bad\.csv: line 9: column participants: '12x'"):
        load_history(path)


def test_bad_timestamp_and_kind_and_negative(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small.head(5).copy().astype({"timestamp": object})
    frame.loc[2, "timestamp"] = "yesterday"
    with pytest.raises(HistoryError, match="row 2: column timestamp"):
        validate_history(frame)
    frame = small.head(5).copy()
    frame.loc[1, "kind"] = "zoom"
    with pytest.raises(HistoryError, match="expected bbb or jitsi"):
        validate_history(frame)
    frame = small.head(5).copy()
    frame.loc[3, "meetings"] = -1
    with pytest.raises(HistoryError, match=r"meetings: -1\.0 is negative"):
        validate_history(frame)


def test_missing_columns_empty_and_missing_file(tmp_path: Path, small: pd.DataFrame) -> None:
    with pytest.raises(HistoryError, match=r"missing column.*video_fanout"):
        validate_history(small.drop(columns=["video_fanout"]))
    with pytest.raises(HistoryError, match="no rows"):
        validate_history(small.head(0))
    with pytest.raises(HistoryError, match="no such history file"):
        load_history(tmp_path / "nope.csv")
    (tmp_path / "garbage.csv").write_bytes(b"\x00\x01 not, a\ncsv")
    with pytest.raises(HistoryError, match=r"garbage\.csv"):
        load_history(tmp_path / "garbage.csv")


def test_rates_are_empty_across_gaps_and_counter_resets(small: pd.DataFrame) -> None:
    frame = validate_history(small)
    one = frame[frame["node"] == "bbb-01"].reset_index(drop=True)
    gap = one.drop(index=range(100, 130)).reset_index(drop=True)  # 2.5 hours missing
    reset = gap.copy()
    reset.loc[200:, "transmit_bytes_total"] -= reset.loc[200, "transmit_bytes_total"]
    rates = derive_rates(reset)
    assert math.isnan(rates.loc[100, "cpu_utilisation"])  # first row after the gap
    assert math.isnan(rates.loc[200, "transmit_bytes_per_second"])  # the reset step
    assert rates.loc[201, "transmit_bytes_per_second"] > 0
    expected = (one.loc[51, "cpu_seconds_total"] - one.loc[50, "cpu_seconds_total"]) / 300 / 8
    assert rates.loc[51, "cpu_utilisation"] == pytest.approx(expected)


def test_node_that_appears_mid_history_and_gaps_give_an_honest_snapshot() -> None:
    frame = synthetic_history(nodes=4, weeks=4, seed=5)
    late = (frame["node"] == "bbb-04") & (
        frame["timestamp"] < frame["timestamp"].min() + pd.Timedelta(days=20)
    )
    hole = (frame["timestamp"] > "2026-09-20") & (frame["timestamp"] < "2026-09-21")
    frame = validate_history(frame[~late & ~hole])
    snapshot = compute_snapshot(frame)
    assert snapshot.servers_online == 4
    assert set(snapshot.nodes["node"]) == {"bbb-01", "bbb-02", "bbb-03", "bbb-04"}
    assert snapshot.forecast["actual"].isna().any()  # the hole stays a hole
    needed = snapshot.servers_needed
    assert all(isinstance(needed[h], int) for h in ("now", "next_peak", "4w"))


def test_short_history_degrades_honestly() -> None:
    frame = validate_history(synthetic_history(nodes=2, weeks=1, seed=2))
    snapshot = compute_snapshot(frame)
    assert any("backtest" in w for w in snapshot.warnings)
    assert any("priors" in w for w in snapshot.warnings)
    assert snapshot.model.source == {"cpu": "prior", "transmit": "prior"}
    assert snapshot.backtest.empty
    assert snapshot.forecast["upper_95"].isna().all()
    assert np.isfinite(snapshot.forecast["median"].dropna()).all()
    assert snapshot.servers_needed["next_peak"] is not None
    assert "uncalibrated" in " ".join(snapshot.sizing.notes)
