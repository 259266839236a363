"""The result folder layout: written and read by one module, in the seed's file names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from joulebench.errors import ConfigError
from joulebench.results.layout import (
    csv_path,
    experiment_ids_on_disk,
    raw_dir,
    read_experiment,
    result_csvs,
    write_json_files,
)


def sections(experiment_id: str, outputs: bool) -> Any:
    return {
        "setup": {"experiment_id": experiment_id},
        "variables": {"batch_size": 4},
        "architecture": {"layers": 2},
        "inference": {"window_s": 1.0},
        "compute": {"flops": {}},
        "per_process": [{"process_rank": 0}, {"process_rank": 1}],
        "energy": {"energy_j": 2.5},
        "outputs": {"texts": ["a"], "token_ids": [[1]]} if outputs else None,
    }


def test_the_seed_file_names_are_written_and_read_back(tmp_path: Path) -> None:
    written = write_json_files(tmp_path, "0007", sections("0007", outputs=True))
    assert [p.name for p in written] == [
        "0007_1_experiment_setup.json",
        "0007_2_experiment_variables.json",
        "0007_3_model_architecture.json",
        "0007_4_inference_metrics.json",
        "0007_5_compute_metrics.json",
        "0007_6_local_energy_results_process_0.json",
        "0007_6_local_energy_results_process_1.json",
        "0007_7_global_energy_results.json",
        "0007_8_text_output.json",
        "0007_8_token_output.json",
    ]
    assert {p.parent for p in written} == {tmp_path / "raw_results" / "0007"}
    assert raw_dir(tmp_path, "0007") == tmp_path / "raw_results" / "0007"
    shown = read_experiment(tmp_path, "0007")
    assert list(shown) == ["setup", "inference", "compute", "energy"]
    assert shown["energy"] == {"energy_j": 2.5}
    assert read_experiment(tmp_path, "0007", ("variables",)) == {"variables": {"batch_size": 4}}


def test_without_outputs_no_8_files(tmp_path: Path) -> None:
    written = write_json_files(tmp_path, "0001", sections("0001", outputs=False))
    assert not [p for p in written if "_8_" in p.name]


def test_a_missing_or_damaged_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"0003_1_experiment_setup.json: not found"):
        read_experiment(tmp_path, "0003")
    write_json_files(tmp_path, "0003", sections("0003", outputs=False))
    (raw_dir(tmp_path, "0003") / "0003_4_inference_metrics.json").write_text("{")
    with pytest.raises(ConfigError, match=r"0003_4_inference_metrics.json: not valid JSON"):
        read_experiment(tmp_path, "0003")


def test_csvs_and_ids_on_disk(tmp_path: Path) -> None:
    assert result_csvs(tmp_path) == [] and experiment_ids_on_disk(tmp_path) == []
    for task in ("b_task", "a_task"):
        csv_path(tmp_path, task).write_text("experiment_id\n")
    (tmp_path / "failed_experiments.csv").write_text("x\n")
    assert [p.name for p in result_csvs(tmp_path)] == ["a_task_results.csv", "b_task_results.csv"]
    for name in ("0002", "0010", ".baseline", "notes"):
        (tmp_path / "raw_results" / name).mkdir(parents=True)
    assert sorted(experiment_ids_on_disk(tmp_path)) == [2, 10]
