from __future__ import annotations

from pathlib import Path

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
