"""End to end on CPU: real accelerate processes, real codecarbon, the local executor.

These run the code path a Slurm job takes (schedulers.job), through the CLI a user types.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from joulebench.tracker import DONE, ProgressTracker
from tests.conftest import finished_batches, wait_for, write_suite

pytestmark = pytest.mark.e2e

NUMBERED = [
    "1_experiment_setup",
    "2_experiment_variables",
    "3_model_architecture",
    "4_inference_metrics",
    "5_compute_metrics",
    "6_local_energy_results_process_0",
    "6_local_energy_results_process_1",
    "7_global_energy_results",
    "8_text_output",
    "8_token_output",
]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "joulebench", *args]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=900)


def csv_rows(root: Path) -> list[dict[str, str]]:
    with (root / "results" / "text_generation_results.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_demo_suite_two_cycles_two_processes_then_nothing_to_do(checkout: Path) -> None:
    first = run_cli("submit-suite", "demo", "--cycles", "2", "--executor", "local")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "8 run, 0 failed" in first.stdout

    state = ProgressTracker(checkout / "persistent_progress_trackers").read()
    assert len(state.keys) == 8 and all(r.state == DONE for r in state.keys.values())
    rows = csv_rows(checkout)
    assert len(rows) == 8
    assert sorted(r["experiment_id"] for r in rows) == [f"{i:04d}" for i in range(1, 9)]
    assert {r["key"] for r in rows} == set(state.keys)
    for row in rows:
        folder = checkout / "results" / "raw_results" / row["experiment_id"]
        names = sorted(p.name for p in folder.glob("*.json"))
        assert names == sorted(f"{row['experiment_id']}_{n}.json" for n in NUMBERED)
        assert float(row["energy_j"]) > 0
        assert row["energy_method"] == "estimate" and row["energy_meter"] == "codecarbon"
        assert row["num_processes"] == "2"
        energy = json.loads(
            (folder / f"{row['experiment_id']}_7_global_energy_results.json").read_text()
        )
        assert energy["nodes_measured"] and energy["is_estimate"] is True
        per_rank1 = json.loads(
            (folder / f"{row['experiment_id']}_6_local_energy_results_process_1.json").read_text()
        )
        assert per_rank1["energy"] is None  # measured once per node, by local rank 0
        texts = json.loads((folder / f"{row['experiment_id']}_8_text_output.json").read_text())
        assert len(texts) == int(row["num_prompts"])

    legacy = json.loads(
        (checkout / "persistent_progress_trackers" / "configs_run_progress.json").read_text()
    )
    assert legacy == {r["key"]: r["experiment_id"] for r in rows}
    assert (checkout / "persistent_progress_trackers" / "experiment_id.txt").read_text() == "8\n"
    assert list((checkout / "persistent_progress_trackers" / "backups").glob("*")) == []

    second = run_cli("submit-suite", "demo", "--cycles", "2", "--executor", "local")
    assert second.returncode == 0, second.stderr
    assert "8 already done, 0 to run" in second.stdout
    assert len(csv_rows(checkout)) == 8
    # A rerun with nothing to do changes nothing, so it backs nothing up either.
    assert list((checkout / "persistent_progress_trackers" / "backups").glob("*")) == []

    status = run_cli("status", "demo")
    assert status.returncode == 0
    assert "demo" in status.stdout and "4" in status.stdout
    shown = run_cli("show", "0001")
    assert shown.returncode == 0 and "energy per output token" in shown.stdout
    assert "codecarbon, estimate" in shown.stdout


SLOW_SUITE = """
models: [tiny-demo]
shuffle: false
overrides:
  num_processes: 2
  warmup_iterations: 0
  energy_meter: codecarbon
  max_input_tokens: 64
configs:
  quick: {num_prompts: 8, batch_size: 4, max_output_tokens: 8, min_output_tokens: 8}
  slow: {num_prompts: 48, batch_size: 2, max_output_tokens: 160, min_output_tokens: 160}
"""


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process."""
    out = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                state, ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            if state != "Z":
                out[int(proc.name)] = int(ppid)
    return out


def _descendants(pid: int) -> set[int]:
    parents, found, frontier = _parents(), set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    return pids & set(_parents())


def test_killed_run_reruns_exactly_that_key_under_its_id_skipping_done_batches(
    checkout: Path,
) -> None:
    write_suite(checkout, "slow", SLOW_SUITE)
    proc = subprocess.Popen(
        cli("submit-suite", "slow", "--executor", "local"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    work = (checkout / "results" / "raw_results" / "0002" / ".work").resolve()
    wait_for(
        lambda: finished_batches(work) >= 2 or proc.poll() is not None,
        300,
        "the slow experiment to checkpoint two batches",
    )
    assert proc.poll() is None, "finished before it could be killed; make SLOW_SUITE slower"
    # quick launched the workers; slow runs in them, with no launch of its own.
    assert (work.parent.parent / "0001" / ".work" / "launcher.log").exists()
    assert not (work / "launcher.log").exists()
    workers = _descendants(proc.pid)
    assert workers, "the launcher and its workers run below the job's process"
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up, like a node losing power
    proc.wait()
    # Workers die with their parent (PR_SET_PDEATHSIG), not orphaned on the node.
    wait_for(lambda: not _alive(workers), 60, "workers to exit")
    done_before = finished_batches(work)
    assert done_before >= 2
    assert [r["config_name"] for r in csv_rows(checkout)] == ["quick"]

    status = run_cli("status", "slow")
    assert "stale" in status.stdout

    again = run_cli("submit-suite", "slow", "--executor", "local")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 already done, 1 to run" in again.stdout
    rows = csv_rows(checkout)
    assert [(r["config_name"], r["experiment_id"]) for r in rows] == [
        ("quick", "0001"),
        ("slow", "0002"),
    ]
    assert int(rows[1]["batches_resumed"]) == done_before
    assert int(rows[1]["attempt"]) == 2
    metrics = json.loads((work.parent / "0002_4_inference_metrics.json").read_text())
    assert metrics["batches_resumed"] == done_before
    assert metrics["num_prompts"] == 48  # every prompt answered exactly once
    texts = json.loads((work.parent / "0002_8_text_output.json").read_text())
    assert len(texts) == 48
    assert ProgressTracker(checkout / "persistent_progress_trackers").read().last_id == 2


FAILING_SUITE = """
models: [broken-demo]
overrides:
  num_processes: 1
  num_prompts: 4
  batch_size: 4
  max_output_tokens: 4
  min_output_tokens: 4
  warmup_iterations: 0
  energy_meter: codecarbon
  max_retries: 0
"""


def test_failed_key_is_recorded_and_resume_failed_reruns_it(checkout: Path) -> None:
    # A failure no submit-time check can see: the weights file of a model folder is
    # damaged (say, a download cut short) while its config.json is fine.
    model = checkout / "models" / "broken-llama"
    shutil.copytree(checkout / "models" / "tiny-llama", model)
    weights = model / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:64])
    with (checkout / "configs" / "models.yaml").open("a") as handle:
        handle.write(
            "  broken-demo:\n    model: models/broken-llama\n    device: cpu\n"
            "    precision: float32\n"
        )
    write_suite(checkout, "flaky", FAILING_SUITE)
    first = run_cli("submit-suite", "flaky", "--executor", "local")
    assert first.returncode == 1
    assert "failed  models/broken-llama::flaky::base::1" in first.stdout + first.stderr
    with (checkout / "results" / "failed_experiments.csv").open() as handle:
        failed = list(csv.DictReader(handle))
    assert [(f["experiment_id"], f["cause"]) for f in failed] == [("0001", "code_error")]
    status = run_cli("status", "flaky").stdout
    assert "failed:code_error" in status
    assert "latest failures:" in status and "[code_error]" in status

    listed = run_cli("resume-failed", "flaky", "--dry-run", "--executor", "local")
    assert "models/broken-llama::flaky::base::1" in listed.stdout

    weights.write_bytes(good)
    resumed = run_cli("resume-failed", "flaky", "--executor", "local")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = csv_rows(checkout)
    assert [(r["experiment_id"], r["attempt"]) for r in rows] == [("0001", "2")]
    assert "nothing to resume" in run_cli("resume-failed", "flaky", "--executor", "local").stdout
