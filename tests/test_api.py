"""The notebook API: `show` by a number pandas stripped, results as a typed DataFrame."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from joulebench import api
from joulebench.errors import ConfigError
from joulebench.results import write_json_files


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
