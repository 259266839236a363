"""Result files (seed 001 layout), CSV rows and aggregation across processes."""

from joulebench.results.csv_store import append_row, has_experiment, read_rows
from joulebench.results.row import CSV_COLUMNS, flatten
from joulebench.results.writer import (
    Identity,
    build_sections,
    csv_path,
    raw_dir,
    write_json_files,
)

__all__ = [
    "CSV_COLUMNS",
    "Identity",
    "append_row",
    "build_sections",
    "csv_path",
    "flatten",
    "has_experiment",
    "raw_dir",
    "read_rows",
    "write_json_files",
]
