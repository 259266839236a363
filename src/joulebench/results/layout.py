"""Where an experiment's results live, for writing and for reading: the one module that
knows the seed's folder layout.

::

    results/{task_type}_results.csv                   one row per experiment
    results/failed_experiments.csv                    one row per failed attempt
    results/raw_results/{id}/{id}_1_experiment_setup.json
                             {id}_2_experiment_variables.json
                             {id}_3_model_architecture.json
                             {id}_4_inference_metrics.json
                             {id}_5_compute_metrics.json
                             {id}_6_local_energy_results_process_{rank}.json
                             {id}_7_global_energy_results.json
                             {id}_8_text_output.json, {id}_8_token_output.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from joulebench.errors import ConfigError
from joulebench.fsutil import atomic_write_json
from joulebench.results.records import Sections

RAW_RESULTS = "raw_results"
CSV_SUFFIX = "_results.csv"
FAILED_CSV = "failed_experiments.csv"
# Section of Sections -> its file's name after "{id}_" (the per-process and output files
# are several per section, so they are named where they are written).
SECTION_FILES: dict[str, str] = {
    "setup": "1_experiment_setup",
    "variables": "2_experiment_variables",
    "architecture": "3_model_architecture",
    "inference": "4_inference_metrics",
    "compute": "5_compute_metrics",
    "energy": "7_global_energy_results",
}
SHOWN_SECTIONS = ("setup", "inference", "compute", "energy")  # what `show` prints


def raw_dir(results_dir: Path, experiment_id: str) -> Path:
    return results_dir / RAW_RESULTS / experiment_id


def result_file(results_dir: Path, experiment_id: str, section: str) -> Path:
    """The JSON file of one section in :data:`SECTION_FILES`."""
    return raw_dir(results_dir, experiment_id) / f"{experiment_id}_{SECTION_FILES[section]}.json"


def csv_path(results_dir: Path, task_type: str) -> Path:
    return results_dir / f"{task_type}{CSV_SUFFIX}"


def failed_csv_path(results_dir: Path) -> Path:
    return results_dir / FAILED_CSV


def result_csvs(results_dir: Path) -> list[Path]:
    """Every ``{task_type}_results.csv`` in the folder, in name order."""
    return sorted(results_dir.glob(f"*{CSV_SUFFIX}"))


def experiment_ids_on_disk(results_dir: Path) -> list[int]:
    """The numeric IDs that have a raw_results/ folder (even a half-written one)."""
    folder = results_dir / RAW_RESULTS
    if not folder.is_dir():
        return []
    return [int(p.name) for p in folder.iterdir() if p.name.isdigit()]


def write_json_files(results_dir: Path, experiment_id: str, sections: Sections) -> list[Path]:
    """Atomically write files 1-8 into raw_results/{id}/; returns their paths."""
    named: list[tuple[str, Any]] = [
        (SECTION_FILES["setup"], sections["setup"]),
        (SECTION_FILES["variables"], sections["variables"]),
        (SECTION_FILES["architecture"], sections["architecture"]),
        (SECTION_FILES["inference"], sections["inference"]),
        (SECTION_FILES["compute"], sections["compute"]),
        *(
            (f"6_local_energy_results_process_{p['process_rank']}", p)
            for p in sections["per_process"]
        ),
        (SECTION_FILES["energy"], sections["energy"]),
    ]
    if sections["outputs"] is not None:
        named += [
            ("8_text_output", sections["outputs"]["texts"]),
            ("8_token_output", sections["outputs"]["token_ids"]),
        ]
    folder = raw_dir(results_dir, experiment_id)
    paths = []
    for suffix, payload in named:
        path = folder / f"{experiment_id}_{suffix}.json"
        atomic_write_json(path, payload)
        paths.append(path)
    return paths


def read_experiment(
    results_dir: Path, experiment_id: str, sections: tuple[str, ...] = SHOWN_SECTIONS
) -> dict[str, Any]:
    """Section name -> its file's content; ConfigError naming the file when one is missing
    or damaged."""
    out: dict[str, Any] = {}
    for name in sections:
        path = result_file(results_dir, experiment_id, name)
        try:
            out[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: not found; experiment {experiment_id} has no results "
                f"in {results_dir}/ (wrong --results-dir, or not done)"
            ) from None
        except ValueError:
            raise ConfigError(f"{path}: not valid JSON; rerun the experiment") from None
    return out
