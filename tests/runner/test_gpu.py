"""The real GPU path: NVML counters, CUDA processes, fp16. Skips on machines without
CUDA (CI here); run it where a GPU is lent: `pytest -m gpu tests/runner/test_gpu.py`."""

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


@pytest.mark.parametrize("processes", [1, 2])
def test_nvml_counter_energy_on_cuda_in_fp16(checkout: Path, gpus: int, processes: int) -> None:
    if processes > gpus:
        pytest.skip(f"needs {processes} GPUs")
    config = ExperimentConfig(
        model="models/tiny-llama",
        device="cuda",
        precision="float16",
        num_processes=processes,
        num_prompts=128,
        batch_size=16,
        max_input_tokens=64,
        max_output_tokens=64,
        min_output_tokens=64,
        energy_meter="nvml",
        idle_baseline_s=2,
        warmup_iterations=1,
    )
    sections = run_experiment(config, Identity(f"{processes:04d}"), checkout / "results")
    energy = sections["energy"]
    assert energy["meter"] == "nvml" and energy["is_estimate"] is False
    assert energy["energy_j"] > 0 and len(energy["per_node"]) == 1
    node = next(iter(energy["per_node"].values()))
    assert node["details"]["polling_energy_j"] > 0  # the cross-check ran beside the counter
    assert sections["setup"]["gpus_by_node"]
    compute = sections["compute"]
    assert compute["memory_by_process"]["0"]["cuda_max_allocated_bytes"] > 0
    assert compute["peak_memory_source"] == "cuda_max_allocated"
    assert compute["peak_memory_bytes_max"] == max(
        m["cuda_max_allocated_bytes"] for m in compute["memory_by_process"].values()
    )
    inference = sections["inference"]
    assert "CUDA events" in inference["phase_timing_method"]
    assert 0 < inference["time_to_first_token"]["mean_s"] < inference["request_latency"]["mean_s"]
    assert inference["inter_token_latency"]["mean_s"] > 0


def test_cuda_step_clock_matches_generate_and_counts_every_step(
    tiny_model: Path, gpus: int
) -> None:
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteriaList

    from joulebench.runner.step_clock import CUDA_EVENTS, step_clock

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float16).to("cuda")
    enc = tok(["the cost of a token", "joules"], return_tensors="pt", padding=True).to("cuda")
    kwargs = {
        "max_new_tokens": 16,
        "min_new_tokens": 16,
        "do_sample": False,
        "pad_token_id": tok.pad_token_id,
    }
    with torch.no_grad():
        plain = model.generate(**enc, **kwargs)
        clock = step_clock("cuda", 16)
        torch.cuda.synchronize()
        start = time.perf_counter()
        clock.start()
        timed = model.generate(**enc, **kwargs, stopping_criteria=StoppingCriteriaList([clock]))
        torch.cuda.synchronize()
        wall_s = time.perf_counter() - start
    assert clock.kind == CUDA_EVENTS and torch.equal(plain, timed)
    times = clock.times(start)
    assert len(times) == 17 and times == sorted(times)
    assert 0 < times[-1] - start <= wall_s  # the GPU's timeline fits inside the host's
