"""Pipeline and tensor parallelism on real GPUs. Skips without CUDA (CI here); where a GPU
is lent: `pytest -m gpu tests/runner/test_gpu_parallelism.py` (tensor needs 2 GPUs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.results import Identity
from joulebench.schedulers.job import run_experiment

pytestmark = [pytest.mark.gpu, pytest.mark.e2e]


@pytest.fixture
def gpus() -> int:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible")
    return torch.cuda.device_count()


def gpu_config(parallelism: str, processes: int) -> ExperimentConfig:
    return ExperimentConfig(
        model="models/tiny-llama",
        device="cuda",
        precision="float32",  # greedy tokens comparable across placements
        parallelism=parallelism,  # type: ignore[arg-type]
        num_processes=processes,
        num_prompts=32,
        batch_size=8,
        max_input_tokens=64,
        max_output_tokens=16,
        min_output_tokens=16,
        energy_meter="nvml",
        idle_baseline_s=0,
        warmup_iterations=1,
    )


def test_pipeline_over_every_gpu_is_one_process_with_the_data_tokens(
    checkout: Path, gpus: int
) -> None:
    results = checkout / "results"
    one = run_experiment(gpu_config("data", 1), Identity("0001"), results)
    pipe = run_experiment(gpu_config("pipeline", gpus), Identity("0002"), results)
    assert (pipe["setup"]["parallelism"], pipe["setup"]["world_size"]) == ("pipeline", 1)
    assert pipe["setup"]["num_processes"] == gpus
    assert list(pipe["compute"]["memory_by_process"]) == ["0"]
    memory = pipe["compute"]["memory_by_process"]["0"]
    if gpus > 1:  # the one process's peak covers every GPU it spread the model over
        assert len(memory["cuda_max_allocated_bytes_by_gpu"]) == gpus
        assert memory["cuda_max_allocated_bytes"] == sum(memory["cuda_max_allocated_bytes_by_gpu"])
    assert pipe["inference"]["total_output_tokens"] == one["inference"]["total_output_tokens"]
    assert pipe["outputs"] is not None and one["outputs"] is not None
    assert pipe["outputs"]["token_ids"] == one["outputs"]["token_ids"]
    assert pipe["energy"]["meter"] == "nvml" and pipe["energy"]["energy_j"] > 0


def test_tensor_over_two_gpus_counts_once_and_matches_one_gpu(checkout: Path, gpus: int) -> None:
    if gpus < 2:
        pytest.skip("tensor parallelism needs 2 GPUs")
    results = checkout / "results"
    one = run_experiment(gpu_config("data", 1), Identity("0001"), results)
    tensor = run_experiment(gpu_config("tensor", 2), Identity("0002"), results)
    assert (tensor["setup"]["parallelism"], tensor["setup"]["world_size"]) == ("tensor", 2)
    assert tensor["inference"]["num_prompts"] == 32
    assert tensor["outputs"] is not None and one["outputs"] is not None
    assert tensor["outputs"]["token_ids"] == one["outputs"]["token_ids"]
    memory = tensor["compute"]["memory_by_process"]
    assert all(m["cuda_max_allocated_bytes"] > 0 for m in memory.values())
