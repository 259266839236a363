"""What local rank 0 reads around the window besides its main meter (runner.node_readings),
with the real meters and sensors of this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.errors import MeasureError
from joulebench.measure import NvmlMeter
from joulebench.runner.node_readings import (
    cool_down_reading,
    gpu_inventory,
    idle_baseline_reading,
    start_extra_meters,
    stop_extra_meters,
)


def _nvml_missing() -> bool:
    meter = NvmlMeter()
    try:
        meter.start()
    except MeasureError:
        return True
    meter.stop()
    return False


@pytest.mark.skipif(not _nvml_missing(), reason="this machine has NVML: nothing is unavailable")
def test_an_extra_meter_that_cannot_start_is_recorded_not_fatal() -> None:
    cfg = ExperimentConfig(model="m", device="cuda", extra_meters=("nvml",))
    started = start_extra_meters(cfg, "cuda")
    assert isinstance(started["nvml"], str) and started["nvml"]
    assert stop_extra_meters(started) == {"nvml": {"unavailable": started["nvml"]}}
    assert set(gpu_inventory("cuda") or {}) == {"unavailable"}


def test_cpu_runs_read_no_gpus_and_the_thermal_zones(tmp_path: Path) -> None:
    cfg = ExperimentConfig(model="m", device="cpu", idle_baseline_s=0)
    assert gpu_inventory("cpu") is None
    assert idle_baseline_reading(cfg, "cpu", {"baseline_cache_dir": str(tmp_path)}) is None
    reading = cool_down_reading(cfg, "cpu")
    assert reading["sensor"] == "thermal_zone"
    assert reading["threshold_c"] is None and reading["waited_s"] == 0.0
