"""Serving experiments end to end on CPU: real worker processes, real codecarbon, the
local executor, through the CLI a user types (issue 16)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from joulebench.tracker import ProgressTracker
from tests.conftest import wait_for, write_suite
from tests.schedulers.test_e2e_local import _alive, _descendants, cli, csv_rows, run_cli

pytestmark = pytest.mark.e2e

# Concurrency 2 and 48-token answers: a few requests saturate the tiny model, so the
# top rate queues and the bottom one does not.
RATE_SUITE = """
models: [tiny-demo]
overrides:
  num_processes: 1
  max_input_tokens: 64
  max_output_tokens: 48
  min_output_tokens: 48
  warmup_iterations: 1
  idle_baseline_s: 0
  scenario: {mode: serving, arrival: poisson, max_concurrency: 2, num_requests: 8,
             slo_ttft_ms: 1000, slo_tpot_ms: 200}
controlled:
  scenario.request_rate: [2.0, 20.0, 500.0]
"""


def _section(root: Path, experiment_id: str, number: str) -> dict:
    folder = root / "results" / "raw_results" / experiment_id
    return json.loads(next(folder.glob(f"{experiment_id}_{number}_*.json")).read_text())


def test_a_rate_sweep_serves_the_same_schedule_each_cycle_and_latency_grows(
    checkout: Path,
) -> None:
    write_suite(checkout, "rates", RATE_SUITE)
    done = run_cli("submit-suite", "rates", "--cycles", "2", "--executor", "local")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = csv_rows(checkout)
    assert len(rows) == 6 and {r["scenario_mode"] for r in rows} == {"serving"}
    assert {r["batching_policy"] for r in rows} == {"dynamic_step_batcher"}

    by_rate: dict[float, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_rate[float(row["request_rate"])].append(row)
        inference = _section(checkout, row["experiment_id"], "4")
        energy = _section(checkout, row["experiment_id"], "7")
        serving = inference["serving"]
        assert len(serving["requests"]) == 8 == inference["num_prompts"]
        # Per-request energies add up to the window's energy.
        shares = sum(r["energy_j"] for r in serving["requests"])
        assert shares == pytest.approx(energy["energy_j"], rel=1e-9)
        assert energy["per_request"]["method"] == "window_share"  # codecarbon estimates
        assert "per_request_energy_window_share" in energy["quality_flags"]
        assert float(row["energy_per_request_j_mean"]) == pytest.approx(shares / 8)
        for r in serving["requests"]:
            assert r["output_tokens"] == 48
            assert 0 <= r["queue_delay_s"] <= r["ttft_s"] <= r["e2e_s"]

    for rate, pair in by_rate.items():
        assert len(pair) == 2, rate
        schedules = [_section(checkout, r["experiment_id"], "4")["serving"] for r in pair]
        assert schedules[0]["arrival_s"] == schedules[1]["arrival_s"]  # every cycle alike
        assert pair[0]["schedule_hash"] == pair[1]["schedule_hash"]

    def mean(rate: float, column: str) -> float:
        return sum(float(r[column]) for r in by_rate[rate]) / 2

    assert mean(2.0, "e2e_p95_s") < mean(500.0, "e2e_p95_s")
    assert mean(2.0, "queue_delay_mean_s") < mean(500.0, "queue_delay_mean_s")
    # 20/s against a burst is left out: its 0.4 s spread of 8 arrivals is within what one
    # slow engine step costs on a loaded 2-core VM (it flipped twice in full runs).

    report = run_cli("report", "rates")
    assert report.returncode == 0, report.stdout + report.stderr
    plots = checkout / "reports" / "rates" / "plots"
    for stem in ("energy_per_request", "p95_latency"):
        assert (plots / f"rates_{stem}_vs_scenario_request_rate.png").stat().st_size > 0
    assert (plots / "rates_latency_energy_frontier.png").stat().st_size > 0


SLOW_SERVING = """
models: [tiny-demo]
overrides:
  num_processes: 1
  max_input_tokens: 64
  max_output_tokens: 16
  min_output_tokens: 16
  warmup_iterations: 0
  idle_baseline_s: 0
  scenario: {mode: serving, arrival: constant, request_rate: 2.0, max_concurrency: 4,
             num_requests: 16}
"""


def test_a_killed_serving_run_reruns_its_whole_schedule_under_its_id(checkout: Path) -> None:
    write_suite(checkout, "slowserve", SLOW_SERVING)
    proc = subprocess.Popen(
        cli("submit-suite", "slowserve", "--executor", "local"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: (work / "workers.log").exists() or proc.poll() is not None, 300, "workers")
    time.sleep(4)  # inside the 8-second schedule
    assert proc.poll() is None, "finished before it could be killed"
    workers = _descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not _alive(workers), 60, "workers to exit")
    assert not (checkout / "results" / "text_generation_results.csv").exists()

    again = run_cli("submit-suite", "slowserve", "--executor", "local")
    assert again.returncode == 0, again.stdout + again.stderr
    rows = csv_rows(checkout)
    assert [(r["experiment_id"], r["attempt"]) for r in rows] == [("0001", "2")]
    inference = _section(checkout, "0001", "4")
    assert inference["batches_resumed"] == 0  # nothing carried over from the killed run
    served = inference["serving"]["requests"]
    assert [r["index"] for r in served] == list(range(16))
    assert inference["window_s"] >= 7.5  # the whole schedule, from its first arrival
    energy = _section(checkout, "0001", "7")
    assert sum(r["energy_j"] for r in served) == pytest.approx(energy["energy_j"], rel=1e-9)
    assert ProgressTracker(checkout / "persistent_progress_trackers").read().last_id == 1
