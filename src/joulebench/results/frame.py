"""The results CSVs as one pandas DataFrame, every column typed.

pandas is imported here and only here, so the status and --help paths never load it.
Rows come through ``read_rows`` (complete lines only, short old rows padded), not
``pd.read_csv``, which would turn the ID "0001" into the number 1.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from joulebench.results.csv_store import read_rows
from joulebench.results.row import CSV_COLUMNS, column_kind

TRUE_FALSE = {"True": True, "False": False, "true": True, "false": False}


def results_frame(csv_paths: list[Path], suite: str | None = None) -> pd.DataFrame:
    """Rows of every file (of one suite, if given), in file order; columns in CSV order,
    then any this version does not know."""
    rows = [
        row
        for path in csv_paths
        for row in read_rows(path)
        if suite is None or row.get("suite") == suite
    ]
    known = set(CSV_COLUMNS)
    extra = list(dict.fromkeys(c for r in rows for c in r if c is not None and c not in known))
    frame = pd.DataFrame.from_records(rows, columns=[*CSV_COLUMNS, *extra])
    for name in frame.columns:
        frame[name] = _typed(frame[name], column_kind(name), name)
    return frame


def _typed(column: pd.Series, kind: str, name: str) -> pd.Series:
    if kind == "float":
        return pd.to_numeric(column, errors="coerce").astype("float64")
    if kind == "int":  # nullable: a row a crash left without its cycle stays loadable
        return pd.to_numeric(column, errors="coerce").astype("Int64")
    if kind == "bool":
        return column.map(TRUE_FALSE).astype("boolean")
    if kind == "time":
        return pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    # StringDtype, not object: the same text dtype (missing = pd.NA) under pandas 2 and 3.
    text = column.astype("string")
    # No flags is a value, not a gap: `frame[frame.quality_flags == ""]` selects clean runs.
    if name == "quality_flags":
        return text.fillna("")
    return text.mask(text == "")
