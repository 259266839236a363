"""Serving experiments on a real Slurm (the dev cluster): a rate sweep as an array, and a
preempted serving task that reruns its whole schedule and leaves one result (issue 16).

Same cluster and helpers as test_slurm_cluster.py: one node, partitions `gpu` (default,
preemptable, GraceTime 20 s) and `urgent` (preempts `gpu` with REQUEUE).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from joulebench.schedulers.slurm import query_sacct
from joulebench.tracker import ProgressTracker
from tests.conftest import write_suite
from tests.schedulers.test_slurm_cluster import all_done, cli, job_ids, rows, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

RATE_SUITE = """
models: [tiny-demo]
overrides:
  num_processes: 1
  max_input_tokens: 64
  max_output_tokens: 16
  min_output_tokens: 16
  warmup_iterations: 0
  idle_baseline_s: 0
  scenario: {mode: serving, arrival: poisson, max_concurrency: 2, num_requests: 8}
controlled:
  scenario.request_rate: [2.0, 20.0, 500.0]
"""


def _section(checkout: Path, experiment_id: str, number: str) -> dict:
    folder = checkout / "results" / "raw_results" / experiment_id
    return json.loads(next(folder.glob(f"{experiment_id}_{number}_*.json")).read_text())


def test_a_serving_rate_sweep_runs_as_an_array_with_one_schedule_per_rate(
    checkout: Path,
) -> None:
    write_suite(checkout, "rates", RATE_SUITE)
    sub = cli("submit-suite", "rates", "--cycles", "2", "--partition", "gpu")
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert "submitted 6 tasks in 1 sbatch call" in sub.stdout
    wait_for(all_done("rates", 6), 600, "the serving sweep to finish on Slurm", poll_s=3)
    got = rows(checkout)
    assert len(got) == 6 and all(r["slurm_job_id"] for r in got)
    hashes: dict[str, set[str]] = defaultdict(set)
    for row in got:
        assert row["scenario_mode"] == "serving"
        hashes[row["request_rate"]].add(row["schedule_hash"])
        served = _section(checkout, row["experiment_id"], "4")["serving"]["requests"]
        energy = _section(checkout, row["experiment_id"], "7")
        assert len(served) == 8
        assert sum(r["energy_j"] for r in served) == pytest.approx(energy["energy_j"], rel=1e-9)
    assert {k: len(v) for k, v in hashes.items()} == {"2.0": 1, "20.0": 1, "500.0": 1}


# A constant schedule of 40 requests at 2/s: a 20-second window to preempt inside.
PREEMPT_SERVING = """
models: [tiny-demo]
overrides:
  num_processes: 1
  max_input_tokens: 64
  max_output_tokens: 16
  min_output_tokens: 16
  warmup_iterations: 0
  idle_baseline_s: 0
  scenario: {mode: serving, arrival: constant, request_rate: 2.0, max_concurrency: 4,
             num_requests: 40}
"""


def test_a_preempted_serving_task_reruns_its_whole_schedule_and_leaves_one_result(
    checkout: Path,
) -> None:
    write_suite(checkout, "preserve", PREEMPT_SERVING)
    sub = cli("submit-suite", "preserve", "--partition", "gpu", "--time", "00:20:00")
    assert sub.returncode == 0, sub.stdout + sub.stderr
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: (work / "workers.log").exists(), 300, "the serving workers", poll_s=0.2)
    time.sleep(6)  # inside the 20-second schedule
    assert not rows(checkout), "finished before it could be preempted"
    urgent = subprocess.run(
        ["sbatch", "--partition", "urgent", "--exclusive", "--parsable", "--wrap", "sleep 3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert urgent.stdout.strip()
    wait_for(all_done("preserve", 1), 600, "the preempted serving key to finish", poll_s=2)
    got = rows(checkout)
    assert [(r["experiment_id"], r["scenario_mode"]) for r in got] == [("0001", "serving")]
    assert int(got[0]["attempt"]) >= 2
    inference = _section(checkout, "0001", "4")
    assert inference["batches_resumed"] == 0  # nothing of the preempted run carried over
    served = inference["serving"]["requests"]
    assert [r["index"] for r in served] == list(range(40))
    assert inference["window_s"] >= 19.5  # the whole schedule, from its first arrival
    energy = _section(checkout, "0001", "7")
    assert sum(r["energy_j"] for r in served) == pytest.approx(energy["energy_j"], rel=1e-9)
    job = job_ids(checkout)["models/tiny-llama::preserve::base::1"]
    history = query_sacct([job], "now-1hour").jobs[job]
    assert "PREEMPTED" in history.history or "REQUEUED" in history.history
    assert ProgressTracker(checkout / "persistent_progress_trackers").read().last_id == 1
