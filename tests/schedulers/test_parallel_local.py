"""--max-parallel end to end on this 2-core VM: real processes, real accelerate, real
codecarbon, two 1-process experiments at once on disjoint cores, through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from joulebench.tracker import DONE, RUNNING, ProgressTracker
from tests.conftest import finished_batches, wait_for, write_suite
from tests.schedulers.test_e2e_local import _alive, _descendants, cli, csv_rows, run_cli

# The demo suite's variations, one process each so two fit on two cores side by side.
PARALLEL_SUITE = """
models: [tiny-demo]
shuffle: false
overrides:
  num_prompts: 8
  max_input_tokens: 32
  max_output_tokens: 16
  min_output_tokens: 16
  num_processes: 1
  warmup_iterations: 1
  energy_meter: codecarbon
  idle_baseline_s: 0.5
controlled:
  batch_size: [2, 4]
"""

# Two long experiments, so both are mid-run when the parent is killed.
SLOW_PARALLEL_SUITE = """
models: [tiny-demo]
shuffle: false
overrides:
  num_processes: 1
  warmup_iterations: 0
  energy_meter: codecarbon
  max_input_tokens: 64
  num_prompts: 40
  batch_size: 2
  max_output_tokens: 160
  min_output_tokens: 160
controlled:
  decoder:
    greedy: {mode: greedy}
    sampling: {mode: sampling, temperature: 0.7, top_k: 50, top_p: 0.9}
"""


def _cpus_allowed(pid: int) -> str | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None  # exited since it was listed
    return next(
        line.split(":", 1)[1].strip()
        for line in status.splitlines()
        if line.startswith("Cpus_allowed_list")
    )


def _result(checkout: Path, experiment_id: str, section: str) -> dict:
    folder = checkout / "results" / "raw_results" / experiment_id
    return json.loads((folder / f"{experiment_id}_{section}.json").read_text())


def test_two_at_once_every_key_once_unique_ids_overlaps_flagged(checkout: Path) -> None:
    write_suite(checkout, "par", PARALLEL_SUITE)
    done = run_cli(
        "submit-suite", "par", "--cycles", "2", "--executor", "local", "--max-parallel", "2"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 run, 0 failed" in done.stdout

    state = ProgressTracker(checkout / "persistent_progress_trackers").read()
    assert len(state.keys) == 4 and all(r.state == DONE for r in state.keys.values())
    rows = csv_rows(checkout)
    assert sorted(r["key"] for r in rows) == sorted(state.keys)  # one row per key
    ids = [r["experiment_id"] for r in rows]
    assert sorted(ids) == ["0001", "0002", "0003", "0004"]
    assert {r["key"]: r["experiment_id"] for r in rows} == {
        k: r.experiment_id for k, r in state.keys.items()
    }
    assert {r["device_set"] for r in rows} == {"cpu:0", "cpu:1"}  # disjoint cores

    concurrent = {r["experiment_id"]: set(r["concurrent_experiment_ids"].split()) for r in rows}
    assert any(concurrent.values()), "nothing ran side by side"
    for row in rows:
        others = concurrent[row["experiment_id"]]
        for other in others:  # overlap is mutual
            assert row["experiment_id"] in concurrent[other]
        flags = row["quality_flags"].split(";")
        assert ("host_energy_shared" in flags) == bool(others), row
        if others:
            # codecarbon on CPU reads only host energy: the whole node's reading is kept
            # apart, and energy_j is this experiment's apportioned share of it.
            assert row["energy_scope"] == "host_apportioned"
            assert row["host_share_method"] in ("cpu_time_share", "cpu_allocation_share")
            assert 0 < float(row["host_share"]) <= 1
            assert float(row["energy_j"]) == float(row["host_energy_apportioned_j"])
            assert float(row["energy_j"]) <= float(row["host_energy_j"])
            energy = _result(checkout, row["experiment_id"], "7_global_energy_results")
            assert energy["host_sharing"]["concurrent_experiment_ids"] == sorted(others)
            assert energy["host_sharing"]["device_set"] == row["device_set"]
    # Each device set keeps its launched workers for the next key it gets.
    reused = [_result(checkout, i, "1_experiment_setup")["timing"]["workers_reused"] for i in ids]
    assert reused.count(False) == 2 and reused.count(True) == 2

    status = run_cli("status", "par", "--no-sacct")
    assert status.returncode == 0 and "4" in status.stdout


def test_kill_9_of_the_parent_mid_run_then_rerun_keeps_ids_and_adds_no_rows(
    checkout: Path,
) -> None:
    write_suite(checkout, "slowpar", SLOW_PARALLEL_SUITE)
    proc = subprocess.Popen(
        cli("submit-suite", "slowpar", "--executor", "local", "--max-parallel", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    raw = checkout / "results" / "raw_results"
    works = [(raw / i / ".work").resolve() for i in ("0001", "0002")]
    wait_for(
        lambda: all(finished_batches(w) >= 1 for w in works) or proc.poll() is not None,
        300,
        "both experiments to checkpoint a batch",
    )
    assert proc.poll() is None, "finished before it could be killed; make the suite slower"
    tracker = ProgressTracker(checkout / "persistent_progress_trackers")
    running = {k: r for k, r in tracker.read().keys.items() if r.state == RUNNING}
    assert len(running) == 2  # side by side, each on its own cores
    assert {r.device_set for r in running.values()} == {"cpu:0", "cpu:1"}
    ids_before = {k: r.experiment_id for k, r in running.items()}
    workers = _descendants(proc.pid)
    # Every launcher and worker is pinned to its device set's core, and together they
    # use both: the two experiments never share a core.
    assert {_cpus_allowed(pid) for pid in workers} - {None} == {"0", "1"}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not _alive(workers), 60, "workers to exit with their parent")
    resumable = {w.parent.name: finished_batches(w) for w in works}
    assert not (checkout / "results" / "text_generation_results.csv").exists()

    again = run_cli("submit-suite", "slowpar", "--executor", "local", "--max-parallel", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    rows = csv_rows(checkout)
    assert len(rows) == 2 and len({r["key"] for r in rows}) == 2  # no duplicate rows
    assert {r["key"]: r["experiment_id"] for r in rows} == ids_before  # same IDs
    for row in rows:
        assert int(row["attempt"]) == 2
        assert int(row["batches_resumed"]) == resumable[row["experiment_id"]]
        texts = _result(checkout, row["experiment_id"], "8_text_output")
        assert len(texts) == 40  # every prompt answered exactly once
    assert tracker.read().last_id == 2


@pytest.mark.parametrize(
    ("stop", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_status_and_show_name_device_sets_then_ctrl_c_stops_all_and_rerun_resumes(
    checkout: Path, stop: signal.Signals, exit_code: int
) -> None:
    write_suite(checkout, "slowpar", SLOW_PARALLEL_SUITE)
    proc = subprocess.Popen(
        cli("submit-suite", "slowpar", "--executor", "local", "--max-parallel", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    raw = checkout / "results" / "raw_results"
    works = [(raw / i / ".work").resolve() for i in ("0001", "0002")]
    wait_for(
        lambda: all(finished_batches(w) >= 1 for w in works) or proc.poll() is not None,
        300,
        "both experiments to checkpoint a batch",
    )
    assert proc.poll() is None, "finished before it could be interrupted"
    status = run_cli("status", "slowpar", "--no-sacct")
    assert "running side by side:" in status.stdout
    assert "0001 on cpu:" in status.stdout and "0002 on cpu:" in status.stdout
    show = run_cli("show", "0002")
    assert show.returncode == 0, show.stdout + show.stderr
    assert "device set" in show.stdout and "cpu:" in show.stdout

    workers = _descendants(proc.pid)
    os.kill(proc.pid, stop)  # Ctrl-C, or a TERM (the same clean stop)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == exit_code, out
    assert not _alive(workers), "Ctrl-C left workers running"
    state = ProgressTracker(checkout / "persistent_progress_trackers").read()
    assert {r.state for r in state.keys.values()} == {"failed"}
    assert {r.cause for r in state.keys.values()} == {"interrupted"}
    failed = (checkout / "results" / "failed_experiments.csv").read_text()
    assert failed.count("interrupted") == 2

    again = run_cli("resume-failed", "slowpar", "--executor", "local", "--max-parallel", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    rows = csv_rows(checkout)
    assert sorted((r["experiment_id"], r["attempt"]) for r in rows) == [
        ("0001", "2"),
        ("0002", "2"),
    ]
    assert all(int(r["batches_resumed"]) >= 1 for r in rows)


MIXED_SUITE = """
models: [broken-demo, tiny-demo]
shuffle: false
overrides:
  num_processes: 1
  num_prompts: 4
  batch_size: 4
  max_input_tokens: 32
  max_output_tokens: 8
  min_output_tokens: 8
  warmup_iterations: 0
  energy_meter: codecarbon
  max_retries: 0
"""


def test_a_failing_key_ends_only_itself(checkout: Path) -> None:
    model = checkout / "models" / "broken-llama"
    shutil.copytree(checkout / "models" / "tiny-llama", model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:64])  # a download cut short
    with (checkout / "configs" / "models.yaml").open("a") as handle:
        handle.write(
            "  broken-demo:\n    model: models/broken-llama\n    device: cpu\n"
            "    precision: float32\n"
        )
    write_suite(checkout, "mixed", MIXED_SUITE)
    run = run_cli(
        "submit-suite", "mixed", "--cycles", "2", "--executor", "local", "--max-parallel", "2"
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 run, 2 failed" in run.stdout
    state = ProgressTracker(checkout / "persistent_progress_trackers").read()
    by_model = {k: r.state for k, r in state.keys.items()}
    assert sorted(by_model.values()) == ["done", "done", "failed", "failed"]
    assert all(state == "failed" for k, state in by_model.items() if "broken" in k)
    rows = csv_rows(checkout)
    assert sorted(r["key"] for r in rows) == sorted(k for k in by_model if "tiny" in k)
