"""Baseline subtraction math and cache expiry, with a scripted meter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joulebench.measure import baseline
from joulebench.measure.base import EnergyMeasurement


class ScriptedMeter:
    """Reports a fixed idle power; stands in for a sensor only in these unit tests."""

    name = "nvml"

    def __init__(self, watts: float) -> None:
        self.watts, self.starts = watts, 0

    def start(self) -> None:
        self.starts += 1

    def stop(self) -> EnergyMeasurement:
        return EnergyMeasurement(
            meter="nvml",
            method="counter",
            duration_s=2.0,
            energy_j_by_device={"gpu:A": self.watts * 2.0},
            is_estimate=False,
        )


def test_dynamic_energy_subtracts_baseline_power_times_duration() -> None:
    assert baseline.dynamic_energy_j(500.0, 60.0, 5.0) == pytest.approx(200.0)
    assert baseline.dynamic_energy_j(None, 60.0, 5.0) is None
    assert baseline.dynamic_energy_j(500.0, None, 5.0) is None


def test_measured_once_then_reused_until_it_expires(tmp_path: Path) -> None:
    meter = ScriptedMeter(60.0)
    first = baseline.idle_baseline(lambda: meter, "nvml", "0,1", tmp_path, 0.0, 3600)
    assert (first["source"], first["power_w"]) == ("measured", pytest.approx(60.0))
    second = baseline.idle_baseline(lambda: meter, "nvml", "0,1", tmp_path, 0.0, 3600)
    assert second["source"] == "cache" and meter.starts == 1
    other_gpus = baseline.idle_baseline(lambda: meter, "nvml", "2,3", tmp_path, 0.0, 3600)
    assert other_gpus["source"] == "measured" and meter.starts == 2
    path = baseline.cache_path(tmp_path, "nvml", "0,1")
    data = json.loads(path.read_text())
    data["measured_at"] -= 7200  # two hours old
    path.write_text(json.dumps(data))
    assert (
        baseline.idle_baseline(lambda: meter, "nvml", "0,1", tmp_path, 0.0, 3600)["source"]
        == "measured"
    )


def test_unreadable_cache_is_measured_again(tmp_path: Path) -> None:
    path = baseline.cache_path(tmp_path, "nvml", "0")
    path.write_text("{garbage")
    assert baseline.read_cached(path, 3600) is None
