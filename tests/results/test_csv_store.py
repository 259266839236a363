from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.results.csv_store import append_row, has_experiment, read_rows


def test_header_once_then_rows_in_column_order(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    append_row(path, {"b": 2, "experiment_id": "0001"}, ["experiment_id", "b"])
    append_row(path, {"experiment_id": "0002", "b": "x,\ny"}, ["experiment_id", "b"])
    lines = path.read_text().splitlines()
    assert lines[0] == "experiment_id,b" and len(lines) == 3  # newline in a value stays on one line
    assert [r["experiment_id"] for r in read_rows(path)] == ["0001", "0002"]
    assert has_experiment(path, "0002") and not has_experiment(path, "0003")


def test_a_torn_last_row_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    append_row(path, {"experiment_id": "0001"}, ["experiment_id"])
    with path.open("a") as handle:
        handle.write("00")  # crash mid-append
    append_row(path, {"experiment_id": "0002"}, ["experiment_id"])
    assert [r["experiment_id"] for r in read_rows(path)] == ["0001", "0002"]


def test_existing_header_order_wins(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("b,experiment_id\n")
    append_row(path, {"experiment_id": "0001", "b": 5}, ["experiment_id", "b"])
    assert path.read_text().splitlines()[1] == "5,0001"


def test_a_file_from_before_new_columns_gets_them_once_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    import pandas as pd

    path = tmp_path / "r.csv"
    path.write_text("experiment_id,b\n0001,5\n")
    append_row(path, {"experiment_id": "0002", "b": 6, "c": "new"}, ["experiment_id", "b", "c"])
    assert path.read_text().splitlines() == ["experiment_id,b,c", "0001,5", "0002,6,new"]
    assert read_rows(path) == [
        {"experiment_id": "0001", "b": "5", "c": ""},
        {"experiment_id": "0002", "b": "6", "c": "new"},
    ]
    frame = pd.read_csv(path, dtype={"experiment_id": str})
    assert list(frame["experiment_id"]) == ["0001", "0002"]
    assert frame["c"].isna().tolist() == [True, False]

    inode = path.stat().st_ino  # from now on appends go to the same file, in place
    append_row(path, {"experiment_id": "0003", "b": 7, "c": "x"}, ["experiment_id", "b", "c"])
    assert path.stat().st_ino == inode
    assert path.read_text().splitlines()[-1] == "0003,7,x"


def test_a_header_of_another_layout_is_kept_and_unknown_columns_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("b,experiment_id\n")
    append_row(path, {"experiment_id": "0001", "b": 5, "c": 1}, ["experiment_id", "b", "c"])
    assert path.read_text().splitlines() == ["b,experiment_id", "5,0001"]
    assert "not writing columns ['c']" in caplog.text
