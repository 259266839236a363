"""Tensor parallelism with real processes on CPU: two accelerate workers (gloo) share one
model sharded by transformers' tp_plan, and give the greedy tokens one process gives."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.runner.experiment import ExperimentFailed, run_workers
from joulebench.runner.parallel_load import has_tp_plan, plan_problems
from joulebench.runner.pool import WorkerPools
from joulebench.tracker.state import CONFIG_ERROR
from tests.conftest import write_suite

SUITE = """
models: [tiny-demo]
shuffle: false
overrides:
  num_prompts: 8
  batch_size: 4
  max_input_tokens: 64
  max_output_tokens: 6
  min_output_tokens: 6
  warmup_iterations: 1
  idle_baseline_s: 0
  energy_meter: codecarbon
configs:
  one_process: {num_processes: 1}
  tensor_2: {parallelism: tensor, num_processes: 2}
"""


def result(root: Path, experiment_id: str, section: str) -> dict:
    folder = root / "results" / "raw_results" / experiment_id
    return json.loads((folder / f"{experiment_id}_{section}.json").read_text())


@pytest.mark.e2e
def test_tensor_over_two_processes_gives_one_process_tokens_counted_once(
    checkout: Path,
) -> None:
    write_suite(checkout, "tp", SUITE)
    done = subprocess.run(
        [sys.executable, "-m", "joulebench", "submit-suite", "tp", "--executor", "local"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with (checkout / "results" / "text_generation_results.csv").open(newline="") as handle:
        rows = {r["config_name"]: r for r in csv.DictReader(handle)}
    one, tensor = rows["one_process"], rows["tensor_2"]
    assert (one["parallelism"], one["world_size"]) == ("data", "1")
    assert (tensor["parallelism"], tensor["world_size"], tensor["num_processes"]) == (
        "tensor",
        "2",
        "2",
    )
    one_id, tp_id = one["experiment_id"], tensor["experiment_id"]
    assert result(checkout, tp_id, "8_token_output") == result(checkout, one_id, "8_token_output")
    assert len(result(checkout, tp_id, "8_text_output")) == 8  # rank 0's outputs only

    setup = result(checkout, tp_id, "1_experiment_setup")
    assert (setup["parallelism"], setup["world_size"]) == ("tensor", 2)
    inference = result(checkout, tp_id, "4_inference_metrics")
    assert inference["num_prompts"] == 8 and inference["num_batches"] == 2  # not x 2 ranks
    assert inference["total_output_tokens"] == int(one["total_output_tokens"]) == 8 * 6
    assert tensor["total_output_tokens"] == one["total_output_tokens"]
    compute = result(checkout, tp_id, "5_compute_metrics")
    assert set(compute["memory_by_process"]) == {"0", "1"}
    assert compute["peak_memory_bytes_sum"] > compute["peak_memory_bytes_max"]
    # The whole model's weights, not rank 0's shard: the same as the one-process run.
    one_flops = result(checkout, one_id, "5_compute_metrics")["flops"]
    assert compute["flops"]["linear_params"] == one_flops["linear_params"]
    assert compute["flops"]["analytic_total_flops"] == one_flops["analytic_total_flops"]
    assert "global rank 0 only" in compute["flops"]["counted_method"]
    energy = result(checkout, tp_id, "7_global_energy_results")
    assert energy["energy_per_output_token_j"] == pytest.approx(energy["energy_j"] / (8 * 6))
    work = checkout / "results" / "raw_results" / tp_id / ".work"
    assert sorted(p.name for p in work.glob("ckpt_rank*.json")) == ["ckpt_rank0.json"]


def tensor_config(model: Path, parallelism: str = "tensor") -> ExperimentConfig:
    return ExperimentConfig(
        model=str(model),
        device="cpu",
        parallelism=parallelism,  # type: ignore[arg-type]
        num_processes=2,
        num_prompts=8,
        batch_size=4,
        max_output_tokens=4,
        min_output_tokens=4,
        warmup_iterations=0,
        idle_baseline_s=0,
        energy_meter="codecarbon",
    )


@pytest.mark.e2e
def test_a_tensor_rerun_resumes_from_rank_0s_checkpoint_and_refuses_another_mode(
    tiny_model: Path, tmp_path: Path
) -> None:
    cfg = tensor_config(tiny_model)
    with WorkerPools() as pools:
        first = run_workers(cfg, "0001", cfg.config_hash(), tmp_path / "a", pools=pools)
        assert [r["resumed_batches"] for r in first.ranks] == [[], []]
        again = run_workers(cfg, "0001", cfg.config_hash(), tmp_path / "a", pools=pools)
        # Both ranks skip what rank 0 wrote: the same batches, so their collectives match.
        assert [r["resumed_batches"] for r in again.ranks] == [[0, 1], [0, 1]]
        assert pools.launches == 1

        data = tensor_config(tiny_model, "data")
        run_workers(data, "0002", data.config_hash(), tmp_path / "b", pools=pools)
        (tmp_path / "b" / "ckpt_rank1.json").unlink()
        with pytest.raises(ExperimentFailed) as refused:
            run_workers(cfg, "0002", data.config_hash(), tmp_path / "b", pools=pools)
    assert refused.value.cause == CONFIG_ERROR
    assert "parallelism=data but this run has parallelism=tensor" in str(refused.value)
    assert "--fresh" in str(refused.value)


def test_plan_problems_name_the_model_and_the_fix() -> None:
    from transformers import GPT2Config, LlamaConfig

    llama = LlamaConfig(num_attention_heads=8, num_key_value_heads=2, hidden_size=64)
    assert has_tp_plan(llama) and plan_problems(llama, "m", 2) == []
    [heads] = plan_problems(llama, "m", 4)
    assert "2 key/value heads do not divide over world size 4" in heads
    assert not has_tp_plan(GPT2Config())
    [no_plan] = plan_problems(GPT2Config(), "org/gpt", 2)
    assert "model 'org/gpt' (gpt2 architecture) has no tensor-parallel plan" in no_plan
    assert "use parallelism: pipeline" in no_plan
