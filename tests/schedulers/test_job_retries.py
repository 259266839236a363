"""Retry policy of one task. The workload is real (tiny model, CPU); only the CUDA
out-of-memory error, which a CPU cannot produce, is injected at the runner boundary."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.paths import Paths
from joulebench.results import read_experiment, read_rows
from joulebench.runner.experiment import ExperimentFailed
from joulebench.schedulers import job
from joulebench.suite import load_and_expand
from joulebench.tracker import DONE, FAILED, ProgressTracker

pytestmark = pytest.mark.e2e


def one_spec(checkout: Path, extra: str):
    suite = checkout / "configs" / "suites" / "oom.yaml"
    suite.write_text(
        "models: [tiny-demo]\noverrides: {num_prompts: 8, batch_size: 4, "
        "max_output_tokens: 4, min_output_tokens: 4, warmup_iterations: 0, "
        "num_processes: 1, count_flops: false, max_retries: 1, "
        f"backoff_base_s: 0, energy_meter: codecarbon{extra}}}\n"
    )
    return load_and_expand("oom", 1, checkout / "configs")[0]


def oom_once(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    real, seen = job.run_experiment, []

    def fake(config, ident, results_dir, batch_size=None, pools=None, sharing=None):
        seen.append(batch_size)
        if len(seen) == 1:
            raise ExperimentFailed("CUDA out of memory (injected)", "oom")
        return real(config, ident, results_dir, batch_size, pools, sharing)

    monkeypatch.setattr(job, "run_experiment", fake)
    return seen


def test_oom_retries_once_with_half_the_batch_when_allowed(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = one_spec(checkout, ", oom_halve_batch: true")
    seen = oom_once(monkeypatch)
    paths = Paths(tracker_dir=checkout / "trk", results_dir=checkout / "results")
    outcome = job.run_task(spec, paths, ProgressTracker(paths.tracker_dir), sleep=lambda s: None)
    assert outcome.status == "done" and seen == [4, 2]
    assert ProgressTracker(paths.tracker_dir).read().keys[spec.key].state == DONE
    (row,) = read_rows(checkout / "results" / "text_generation_results.csv")
    assert (row["batch_size_used"], row["oom_halved_batch"]) == ("2", "True")
    assert row["batch_size"] == "4"  # the config as asked, kept apart
    setup = read_experiment(checkout / "results", outcome.experiment_id or "", ("setup",))
    assert (setup["setup"]["batch_size_used"], setup["setup"]["oom_halved_batch"]) == (2, True)
    failed = (checkout / "results" / "failed_experiments.csv").read_text()
    assert "oom" in failed


def test_oom_without_permission_retries_the_same_batch_then_fails(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = one_spec(checkout, "")
    seen: list[int | None] = []

    def always_oom(config, ident, results_dir, batch_size=None, pools=None, sharing=None):
        seen.append(batch_size)
        raise ExperimentFailed("CUDA out of memory (injected)", "oom")

    monkeypatch.setattr(job, "run_experiment", always_oom)
    paths = Paths(tracker_dir=checkout / "trk", results_dir=checkout / "results")
    tracker = ProgressTracker(paths.tracker_dir)
    outcome = job.run_task(spec, paths, tracker, sleep=lambda s: None)
    assert (outcome.status, outcome.cause) == ("failed", "oom")
    assert seen == [4, 4]  # max_retries: 1, batch never halved
    rec = tracker.read().keys[spec.key]
    assert (rec.state, rec.cause, rec.attempts) == (FAILED, "oom", 2)
    assert not (checkout / "results" / "text_generation_results.csv").exists()
