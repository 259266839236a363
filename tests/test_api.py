"""The notebook API: `show` by a number pandas stripped, results as a typed DataFrame."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from joulebench import api
from joulebench.errors import ConfigError
from joulebench.results import CSV_COLUMNS, append_row, write_json_files


def write_result(results: Path, experiment_id: str) -> None:
    """Files 1-7 of one finished experiment, written by the real writer."""
    setup = {
        "experiment_id": experiment_id,
        "key": f"m::s::c::{int(experiment_id)}",
        "provenance": {
            "git_commit": "abc",
            "model_revision": "local:0123456789abcdef",
            "git_dirty": True,
        },
    }
    sections = {
        "setup": setup,
        "variables": {},
        "architecture": {},
        "inference": {"num_prompts": 4, "total_output_tokens": 32},
        "compute": {},
        "per_process": [{"process_rank": 0}],
        "energy": {"energy_j": 1.5, "energy_per_output_token_j": 0.05},
        "outputs": None,
    }
    write_json_files(results, experiment_id, sections)


def test_show_finds_0001_from_the_1_that_pandas_makes_of_it(tmp_path: Path) -> None:
    write_result(tmp_path / "results", "0001")
    paths = api.Paths(results_dir=tmp_path / "results")
    for given in ("1", "01", "0001"):
        assert api.show_experiment(given, paths)["setup"]["experiment_id"] == "0001"
    shown = subprocess.run(
        [sys.executable, "-m", "joulebench", "show", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "0001" in shown.stdout and "m::s::c::1" in shown.stdout
    assert "local:0123456789abcdef" in shown.stdout and "abc (dirty" in shown.stdout


def test_show_prefers_a_folder_named_exactly_as_given(tmp_path: Path) -> None:
    write_result(tmp_path / "results", "0001")
    write_result(tmp_path / "results", "00001")  # an ID from some other padding
    paths = api.Paths(results_dir=tmp_path / "results")
    assert api.show_experiment("00001", paths)["setup"]["experiment_id"] == "00001"
    assert api.show_experiment("1", paths)["setup"]["experiment_id"] == "0001"


@pytest.mark.parametrize(
    "given, match",
    [
        ("7", "0007_1_experiment_setup.json: not found"),
        ("-1", "is not a number like 0042"),
        ("١", "is not a number like 0042"),
    ],
)
def test_show_names_the_padded_file_or_refuses_a_non_number(
    tmp_path: Path, given: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        api.show_experiment(given, api.Paths(results_dir=tmp_path / "results"))


def csv_row(experiment_id: str, suite: str, cycle: int, **values: object) -> dict[str, object]:
    """A row as flatten() makes it: Python values the CSV writer turns into text."""
    row: dict[str, object] = dict.fromkeys(CSV_COLUMNS)
    row.update(
        experiment_id=experiment_id,
        key=f"models/m::{suite}::c::{cycle}",
        suite=suite,
        model="models/m",
        config_name="c",
        cycle=cycle,
        attempt=1,
        started_at="2026-12-02T14:00:00+00:00",
        batch_size=8,
        energy_j=1.5,
        energy_is_estimate=True,
        oom_halved_batch=False,
        quality_flags="",
        git_dirty=False,
        model_revision="local:0123456789abcdef",
        peak_memory_source="host_rss",
        slurm_job_id="4242_7",
    )
    row.update(values)
    return row


def test_load_results_types_every_column(tmp_path: Path) -> None:
    results = tmp_path / "results"
    csv_file = results / "text_generation_results.csv"
    append_row(csv_file, csv_row("0001", "demo", 1), CSV_COLUMNS)
    append_row(
        csv_file,
        csv_row("0002", "demo", 2, quality_flags="window_too_short", energy_j=None, git_dirty=True),
        CSV_COLUMNS,
    )
    append_row(results / "chat_results.csv", csv_row("0010", "other", 1), CSV_COLUMNS)
    paths = api.Paths(configs_dir=tmp_path / "configs", results_dir=results)

    frame = api.load_results(paths=paths)
    assert list(frame.columns) == CSV_COLUMNS
    assert sorted(frame["experiment_id"]) == ["0001", "0002", "0010"]
    demo = api.load_results("demo", paths)
    assert list(demo["experiment_id"]) == ["0001", "0002"]
    assert demo["experiment_id"].map(type).tolist() == [str, str]
    assert demo["cycle"].tolist() == [1, 2] and str(demo["cycle"].dtype) == "Int64"
    assert demo["batch_size"].dtype == "float64" and demo["energy_j"].isna().tolist() == [
        False,
        True,
    ]
    assert demo["energy_j"].iloc[0] == 1.5
    assert str(demo["git_dirty"].dtype) == "boolean" and demo["git_dirty"].tolist() == [
        False,
        True,
    ]
    assert demo["quality_flags"].tolist() == ["", "window_too_short"]
    assert demo["slurm_job_id"].iloc[0] == "4242_7" and demo["hosts"].isna().all()
    assert str(demo["model"].dtype) == "string"
    assert demo["started_at"].iloc[0] == pd.Timestamp("2026-12-02T14:00:00Z")


def test_load_results_reads_a_csv_from_before_the_newest_columns(tmp_path: Path) -> None:
    old_columns = CSV_COLUMNS[: CSV_COLUMNS.index("model_revision")]
    csv_file = tmp_path / "results" / "text_generation_results.csv"
    append_row(csv_file, csv_row("0001", "demo", 1), old_columns)
    append_row(csv_file, csv_row("0002", "demo", 1), CSV_COLUMNS)  # extends the header
    frame = api.load_results(paths=api.Paths(results_dir=tmp_path / "results"))
    assert frame["model_revision"].isna().tolist() == [True, False]
    assert frame["model_revision"].iloc[1] == "local:0123456789abcdef"
    assert frame["git_dirty"].isna().tolist() == [True, False]
    assert frame["energy_j"].tolist() == [1.5, 1.5]


def test_load_results_with_nothing_yet_and_with_a_misspelt_suite(checkout: Path) -> None:
    empty = api.load_results()
    assert empty.empty and list(empty.columns) == CSV_COLUMNS
    assert api.load_results("demo").empty  # a suite not run yet
    with pytest.raises(ConfigError, match="suite 'demoo' not found"):
        api.load_results("demoo")


def test_loading_results_does_not_import_pandas_on_the_status_path(checkout: Path) -> None:
    probe = (
        "import sys\nfrom joulebench import api\napi.status_rows(use_sacct=False)\n"
        "print('PANDAS' if 'pandas' in sys.modules else 'NO-PANDAS')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "NO-PANDAS", out.stderr
