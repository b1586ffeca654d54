"""What a history file may hold: absurd rows refused with file and line, NaN rows dropped
with a warning, the cost of one file bounded (issue: reliability of the planner's inputs).
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from confscale.planner import history as h
from confscale.planner.history import HistoryError, load_history, validate_history
from confscale.planner.synthetic import synthetic_history
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return synthetic_history(nodes=2, weeks=1, seed=5)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    out = frame.copy()
    if isinstance(out["timestamp"].dtype, pd.DatetimeTZDtype):
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)
    return path


def test_infinite_value_is_refused_with_its_line(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small.head(10).copy()
    frame.loc[4, "participants"] = np.inf
    with pytest.raises(HistoryError, match=r"h\.csv: line 6: column participants: inf"):
        load_history(_csv(frame, tmp_path / "h.csv"))


def test_absurd_magnitude_is_refused(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small.head(10).copy()
    frame.loc[3, "participants"] = 1e18
    with pytest.raises(HistoryError, match=r"line 5: column participants: 1e\+18 is not a plaus"):
        load_history(_csv(frame, tmp_path / "h.csv"))


def test_nan_rows_are_dropped_with_a_warning_naming_the_line(
    tmp_path: Path, small: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    frame = small.head(40).copy()
    frame.loc[[7, 9], "meetings"] = np.nan
    out = load_history(_csv(frame, tmp_path / "h.csv"))
    assert len(out) == 38
    assert out[list(h.NUMERIC_COLUMNS)].notna().all().all()
    (warning,) = [w for w in out.attrs["warnings"] if "NaN" in w]
    assert "2 row(s)" in warning and "line 9" in warning
    assert warning in caplog.text


def test_a_row_from_1970_is_refused_not_silently_planned(small: pd.DataFrame) -> None:
    frame = small.head(10).copy()
    frame["timestamp"] = frame["timestamp"].astype(object)
    frame.loc[2, "timestamp"] = "1970-01-01T00:00:00Z"
    with pytest.raises(HistoryError, match=r"row 2: column timestamp: 1970-01-01.*out of range"):
        validate_history(frame)


def test_the_year_9999_is_out_of_range_not_unreadable(small: pd.DataFrame) -> None:
    frame = small.head(10).copy()
    frame["timestamp"] = frame["timestamp"].astype(str)
    frame.loc[3, "timestamp"] = "9999-06-01T00:00:00Z"
    with pytest.raises(HistoryError, match=r"row 3: .*'9999-06-01T00:00:00Z' is out of range"):
        validate_history(frame)
    frame.loc[3, "timestamp"] = "not a time"
    with pytest.raises(HistoryError, match="cannot be read as an ISO 8601 time"):
        validate_history(frame)


def test_a_span_of_years_is_refused_naming_both_ends(small: pd.DataFrame) -> None:
    frame = small.head(10).copy()
    frame.loc[0, "timestamp"] = frame.loc[0, "timestamp"] - pd.Timedelta(days=1000)
    with pytest.raises(HistoryError, match=r"spans 10\d\d days, from row 0 .* to row \d"):
        validate_history(frame)


def test_gaps_are_warned_about(small: pd.DataFrame) -> None:
    frame = small.copy()
    t = frame["timestamp"]
    cut = (t > t.min() + pd.Timedelta(days=2)) & (t < t.min() + pd.Timedelta(days=3))
    out = validate_history(frame[~cut].reset_index(drop=True))
    (warning,) = out.attrs["warnings"]
    assert "1 gap(s) longer than 6 h" in warning
    assert not validate_history(frame).attrs["warnings"]


def test_a_huge_field_in_a_small_gzip_is_refused_early(tmp_path: Path, small: pd.DataFrame) -> None:
    path = tmp_path / "bomb.csv.gz"
    header = ",".join(h.HISTORY_COLUMNS).encode() + b"\n"
    with gzip.open(path, "wb") as out:
        out.write(header)
        for _ in range(64):  # 64 MiB of one field, about 64 KiB compressed
            out.write(b"a" * (1024 * 1024))
    assert path.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(HistoryError, match=r"bomb\.csv\.gz: line 2: longer than 65,536 bytes"):
        load_history(path)


def test_total_text_and_rows_are_bounded(
    tmp_path: Path, small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _csv(small, tmp_path / "h.csv")
    monkeypatch.setattr(h, "LIMITS", h.Limits(text_bytes=path.stat().st_size // 2))
    with pytest.raises(HistoryError, match="bytes of text"):
        load_history(path)
    monkeypatch.setattr(h, "LIMITS", h.Limits(rows=len(small) - 1))
    with pytest.raises(HistoryError, match="more than"):
        load_history(path)
    small.to_parquet(tmp_path / "h.parquet", index=False)
    with pytest.raises(HistoryError, match="rows, more than"):
        load_history(tmp_path / "h.parquet")


def test_not_a_regular_file_and_not_gzip(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(HistoryError, match="not a regular file"):
        load_history(tmp_path / "dir.csv")
    (tmp_path / "fake.csv.gz").write_bytes(b"timestamp,node\n")
    with pytest.raises(HistoryError, match="cannot decompress"):
        load_history(tmp_path / "fake.csv.gz")


@functools.cache
def _base() -> pd.DataFrame:
    return synthetic_history(nodes=1, weeks=1, seed=1)


CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(max_size=8),
    st.none(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(min_value=1, max_value=12),
    cells=st.lists(
        st.tuples(st.integers(0, 11), st.sampled_from(h.HISTORY_COLUMNS), CELL), max_size=6
    ),
)
def test_any_cells_give_a_clean_frame_or_a_history_error(rows: int, cells: list) -> None:
    """Whatever is in the cells: a typed, finite, bounded frame, or HistoryError."""
    frame = _base().head(rows).astype(object)
    for row, column, value in cells:
        if row < rows:
            frame.iat[row, frame.columns.get_loc(column)] = value
    try:
        out = validate_history(frame)
    except HistoryError as exc:
        assert str(exc).startswith("history: ")
        return
    values = out[list(h.NUMERIC_COLUMNS)].to_numpy(dtype=float)
    assert np.isfinite(values).all() and (values >= 0).all()
    assert all((out[c] <= h.MAXIMA[c]).all() for c in h.NUMERIC_COLUMNS)
    assert out["timestamp"].dt.tz is not None and out["node"].map(bool).all()
    assert set(out["kind"]) <= h.KINDS
