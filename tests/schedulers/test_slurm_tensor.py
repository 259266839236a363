"""Tensor parallelism on a real Slurm (the dev cluster, one node): a preempted tensor
experiment requeues and resumes from global rank 0's checkpoint, counting tokens once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from joulebench.tracker import ProgressTracker
from tests.conftest import finished_batches, write_suite
from tests.schedulers.test_slurm_cluster import all_done, cli, job_ids, rows, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

TENSOR_PREEMPT_SUITE = """
models: [tiny-demo]
overrides:
  parallelism: tensor
  num_processes: 2
  warmup_iterations: 0
  energy_meter: codecarbon
  max_input_tokens: 64
configs:
  slow: {num_prompts: 48, batch_size: 2, max_output_tokens: 192, min_output_tokens: 192}
"""


def test_preempted_tensor_task_resumes_from_rank_0s_checkpoint(checkout: Path) -> None:
    write_suite(checkout, "tp-preempt", TENSOR_PREEMPT_SUITE)
    dry = cli("submit-suite", "tp-preempt", "--partition", "gpu", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "parallelism=tensor world_size=2" in dry.stdout
    sub = cli("submit-suite", "tp-preempt", "--partition", "gpu", "--time", "00:20:00")
    assert sub.returncode == 0, sub.stdout + sub.stderr
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: finished_batches(work) >= 2, 300, "two checkpointed batches", poll_s=0.2)
    urgent = subprocess.run(
        ["sbatch", "--partition", "urgent", "--exclusive", "--parsable", "--wrap", "sleep 3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert urgent.stdout.strip()
    wait_for(all_done("tp-preempt", 1), 600, "the preempted tensor key to finish", poll_s=2)
    got = rows(checkout)
    assert [(r["experiment_id"], r["parallelism"], r["world_size"]) for r in got] == [
        ("0001", "tensor", "2")
    ]
    assert int(got[0]["attempt"]) >= 2
    metrics = json.loads((work.parent / "0001_4_inference_metrics.json").read_text())
    assert metrics["batches_resumed"] >= 2
    assert metrics["num_prompts"] == 48 and metrics["num_batches"] == 24  # once, not x 2
    assert sorted(p.name for p in work.glob("ckpt_rank*.json")) == ["ckpt_rank0.json"]
    job = job_ids(checkout)["models/tiny-llama::tp-preempt::slow::1"]
    assert job
    assert ProgressTracker(checkout / "persistent_progress_trackers").read().last_id == 1
