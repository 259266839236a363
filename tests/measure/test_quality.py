"""Every quality flag, raised by a case made for it."""

from __future__ import annotations

from joulebench.measure.base import EnergyMeasurement
from joulebench.measure.quality import FLAG_TEXT, quality_flags


def m(meter: str = "nvml", method: str = "counter", joules: float = 100.0,
      estimate: bool = False, **details: object) -> EnergyMeasurement:
    return EnergyMeasurement(meter=meter, method=method, duration_s=5.0,
                             energy_j_by_device={"gpu:A": joules}, is_estimate=estimate,
                             details=dict(details))


def test_a_good_counter_reading_has_no_flags() -> None:
    assert quality_flags(m(), window_s=5.0) == []


def test_window_too_short_depends_on_the_sensor() -> None:
    assert quality_flags(m(), window_s=0.1) == ["window_too_short"]
    assert quality_flags(m(method="polling"), window_s=0.5) == ["window_too_short"]
    assert quality_flags(m(meter="rapl"), window_s=0.5) == []


def test_zero_energy_and_estimates_are_flagged() -> None:
    assert "nonpositive_energy" in quality_flags(m(joules=0.0), window_s=5.0)
    flags = quality_flags(m(meter="codecarbon", method="estimate", estimate=True), 5.0)
    assert flags == ["estimate_only"]


def test_counter_and_polling_disagreement_above_threshold() -> None:
    assert quality_flags(m(polling_energy_j=105.0), 5.0) == []
    assert quality_flags(m(polling_energy_j=130.0), 5.0) == ["counter_polling_disagreement"]


def test_throttling_seen_by_nvml_is_flagged() -> None:
    assert quality_flags(m(throttled=True), 5.0) == ["gpu_throttled"]
    assert quality_flags(m(throttled=False), 5.0) == []


def test_every_flag_has_an_explanation() -> None:
    produced = {"window_too_short", "nonpositive_energy", "estimate_only",
                "counter_polling_disagreement", "gpu_throttled"}
    assert produced <= set(FLAG_TEXT)
