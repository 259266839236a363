"""api.report_suite and api.status_report over a real tracker and results CSV: one notion of
"flagged", and a --fresh rerun reported on its own."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from joulebench import api
from joulebench.results import CSV_COLUMNS, append_row
from joulebench.suite import ExperimentSpec
from joulebench.tracker import ProgressTracker
from tests.results.test_report import row

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def paths(tmp_path: Path) -> api.Paths:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    return api.Paths(
        configs_dir=tmp_path / "configs",
        tracker_dir=tmp_path / "trackers",
        results_dir=tmp_path / "results",
        logs_dir=tmp_path / "logs",
    )


def run_fake(paths: api.Paths, specs: list[ExperimentSpec], flags: dict[str, str]) -> None:
    """What a run leaves behind, without the model: claim, CSV row, done (real tracker)."""
    tracker = ProgressTracker(paths.tracker_dir)
    tracker.register(specs[0].suite, [(s.key, s.config_hash) for s in specs])
    for spec in specs:
        claim = tracker.claim(spec.key, spec.config_hash, suite=spec.suite, cycle=spec.cycle)
        energy = 0.01 * spec.config.batch_size
        values = row(
            claim.experiment_id,
            spec.config.model,
            spec.config_name,
            spec.cycle,
            energy,
            flags=flags.get(spec.config_name, "estimate_only"),
            suite=spec.suite,
            key=spec.key,
            batch_size=str(spec.config.batch_size),
            decoder_mode=spec.config.decoder.mode,
            energy_meter="codecarbon",
            energy_method="estimate",
            energy_is_estimate="True",
        )
        tracker.complete(
            spec.key,
            claim.experiment_id,
            lambda _attempt, v=values: append_row(
                paths.results_dir / "text_generation_results.csv", v, CSV_COLUMNS
            ),
        )
    tracker.sync()


def test_status_and_report_count_the_same_flagged_runs(paths: api.Paths) -> None:
    specs = api.expand_suite("demo", cycles=2, paths=paths)
    run_fake(paths, specs, {"batch_size_2": "estimate_only;window_too_short"})
    rows = api.status_report("demo", paths, use_sacct=False).rows
    assert [(r.cycle, r.counts, r.flagged) for r in rows] == [
        (1, {"done": 4}, 1),
        (2, {"done": 4}, 1),
    ]  # every run is an estimate: none of that
    files = api.report_suite("demo", paths.results_dir.parent / "report", paths)
    assert sum(len(s.flagged) for s in files.summaries) == sum(r.flagged for r in rows)
    assert [v.path for v in files.variables] == ["batch_size", "decoder"]  # from the YAML
    with files.summary_csv.open(newline="") as handle:
        summary = {r["config_name"]: r for r in csv.DictReader(handle)}
    assert (summary["batch_size_8"]["batch_size"], summary["decoder_sampling"]["decoder"]) == (
        "8",
        "sampling",
    )


def test_a_fresh_rerun_reports_its_own_cycles_only(paths: api.Paths) -> None:
    specs = api.expand_suite("demo", cycles=1, paths=paths)
    run_fake(paths, specs, {"batch_size_2": "window_too_short"})
    ProgressTracker(paths.tracker_dir).archive_suite("demo")  # what --fresh does first
    run_fake(paths, specs, {})
    files = api.report_suite("demo", paths.results_dir.parent / "report", paths)
    assert [len(s.experiment_ids) for s in files.summaries] == [1, 1, 1, 1]  # not n = 2
    assert [len(s.archived) for s in files.summaries] == [1, 1, 1, 1]
    assert files.archived_runs == 4
    (status,) = api.status_report("demo", paths, use_sacct=False).rows
    assert (status.total, status.counts, status.flagged) == (4, {"done": 4}, 0)


def test_without_a_tracker_every_result_counts(paths: api.Paths) -> None:
    specs = api.expand_suite("demo", cycles=1, paths=paths)
    run_fake(paths, specs, {})
    shutil.rmtree(paths.tracker_dir)  # a results folder copied on its own
    assert api.current_experiment_ids("demo", paths.tracker_dir) is None
    files = api.report_suite("demo", paths.results_dir.parent / "report", paths)
    assert [len(s.experiment_ids) for s in files.summaries] == [1, 1, 1, 1]
    # a tracker that knows other suites only says nothing about this one
    ProgressTracker(paths.tracker_dir).register("other", [("m::other::c::1", "h")])
    assert api.current_experiment_ids("demo", paths.tracker_dir) is None
    ProgressTracker(paths.tracker_dir).archive_suite("other")
    assert api.current_experiment_ids("other", paths.tracker_dir) == {}  # all archived
