"""Result files (seed 001 layout), CSV rows and aggregation across processes."""

from joulebench.results.csv_store import append_row, has_experiment, read_rows
from joulebench.results.layout import (
    csv_path,
    failed_csv_path,
    raw_dir,
    read_experiment,
    result_csvs,
    write_json_files,
)
from joulebench.results.records import RankRecord, RunTiming, Sections
from joulebench.results.row import CSV_COLUMNS, flatten
from joulebench.results.writer import Identity, build_sections

__all__ = [
    "CSV_COLUMNS",
    "Identity",
    "RankRecord",
    "RunTiming",
    "Sections",
    "append_row",
    "build_sections",
    "csv_path",
    "failed_csv_path",
    "flatten",
    "has_experiment",
    "raw_dir",
    "read_experiment",
    "read_rows",
    "result_csvs",
    "write_json_files",
]
