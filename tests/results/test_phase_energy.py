"""Prefill vs decode energy from literal prefill windows (pure)."""

from __future__ import annotations

import pytest

from joulebench.measure.base import EnergyMeasurement
from joulebench.results.phase_energy import phase_energy
from joulebench.results.records import EnergySection, InferenceSection, PrefillWindow


def window(joules: float, seconds: float, tokens: int, meter: str = "nvml") -> PrefillWindow:
    reading = EnergyMeasurement(meter, "counter", seconds, {"gpu:0": joules}, False).to_dict()
    return {"window_s": seconds, "energy": reading, "input_tokens": tokens, "num_prompts": 4}


ENERGY: EnergySection = {"energy_j": 100.0}  # type: ignore[typeddict-item]
INFERENCE: InferenceSection = {"measured_output_tokens": 400}  # type: ignore[typeddict-item]


def test_decode_is_the_rest_and_each_phase_has_its_j_per_token() -> None:
    out = phase_energy([window(20.0, 2.0, 1000)], ENERGY, INFERENCE)
    assert out["prefill_energy_j"] == 20.0 and out["decode_energy_j"] == 80.0
    assert out["prefill_energy_per_input_token_j"] == pytest.approx(0.02)
    assert out["decode_energy_per_output_token_j"] == pytest.approx(0.2)
    assert out["quality_flags"] == []


def test_nodes_are_summed_and_a_process_without_a_reading_adds_only_tokens() -> None:
    other = {**window(0.0, 2.5, 500), "energy": None}
    out = phase_energy([window(20.0, 2.0, 1000), window(10.0, 2.2, 1000), other], ENERGY, INFERENCE)
    assert out["prefill_energy_j"] == 30.0 and out["prefill_window_s"] == 2.5
    assert out["prefill_energy_per_input_token_j"] == pytest.approx(30.0 / 2500)


def test_short_windows_and_a_negative_decode_are_flagged() -> None:
    # NVML's counter updates every ~0.1 s: under 1 s the prefill window is too short.
    assert phase_energy([window(5.0, 0.5, 100)], ENERGY, INFERENCE)["quality_flags"] == [
        "prefill_window_too_short"
    ]
    out = phase_energy([window(120.0, 3.0, 100)], ENERGY, INFERENCE)
    assert out["decode_energy_j"] == -20.0 and out["quality_flags"] == ["decode_energy_negative"]
    assert phase_energy([window(1.0, 0.05, 100, "rapl")], ENERGY, INFERENCE)["quality_flags"] == []
