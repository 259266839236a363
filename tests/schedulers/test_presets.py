"""Comparability presets on the real CPU workload: steady-state window, refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.results import Identity
from joulebench.runner.experiment import ExperimentFailed
from joulebench.schedulers.job import run_experiment

pytestmark = pytest.mark.e2e


def config(**overrides: object) -> ExperimentConfig:
    base = {
        "model": "models/tiny-llama",
        "device": "cpu",
        "num_processes": 1,
        "num_prompts": 10,
        "batch_size": 4,
        "max_input_tokens": 64,
        "max_output_tokens": 8,
        "min_output_tokens": 8,
        "warmup_iterations": 0,
        "energy_meter": "codecarbon",
        "idle_baseline_s": 0,
        "count_flops": False,
    }
    return ExperimentConfig(**{**base, **overrides})


def test_steady_state_measures_only_full_batches(checkout: Path) -> None:
    sections = run_experiment(
        config(steady_state=True, extra_meters=("codecarbon", "rapl")),
        Identity("0001"),
        checkout / "results",
    )
    inference = sections["inference"]
    assert inference["num_prompts"] == 10  # every prompt still answered
    assert inference["batches_outside_window"] == 1  # the batch of 2 ran after the window
    assert inference["measured_prompts"] == 8
    # Extra meters share the window and report apart; one missing here is said so.
    others = sections["energy"]["other_meters"]
    assert others["codecarbon"]["energy_j"] > 0
    rapl = next(iter(others["rapl"]["per_node"].values()))
    assert "unavailable" in rapl or others["rapl"]["energy_j"] > 0


def test_a_window_shorter_than_min_window_s_is_refused(checkout: Path) -> None:
    with pytest.raises(ExperimentFailed, match="min_window_s: the measured window") as info:
        run_experiment(config(min_window_s=600), Identity("0002"), checkout / "results")
    assert info.value.user_error
    assert not list((checkout / "results" / "raw_results" / "0002").glob("*.json"))
