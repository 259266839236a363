"""Every quality flag, raised by a case made for it."""

from __future__ import annotations

from joulebench.measure.base import EnergyMeasurement
from joulebench.measure.quality import FLAG_TEXT, dynamic_energy_flags, quality_flags


def m(
    meter: str = "nvml",
    method: str = "counter",
    joules: float = 100.0,
    estimate: bool = False,
    **details: object,
) -> EnergyMeasurement:
    return EnergyMeasurement(
        meter=meter,
        method=method,
        duration_s=5.0,
        energy_j_by_device={"gpu:A": joules},
        is_estimate=estimate,
        details=dict(details),
    )


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


def test_dynamic_energy_lost_in_baseline_drift_is_flagged() -> None:
    # The H100 figures: a tiny model drew 125.3 W against a 125.9 W baseline (-1.3 J),
    # a 1B model in fp16 0.0207 of 0.1194 J/token above it (17%).
    assert dynamic_energy_flags(356.9, -1.3) == ["dynamic_within_baseline_noise"]
    assert dynamic_energy_flags(433.0, 11.8) == ["dynamic_within_baseline_noise"]  # 2.7%
    assert dynamic_energy_flags(1956.1, 339.2) == []
    assert dynamic_energy_flags(None, None) == dynamic_energy_flags(10.0, None) == []
    assert dynamic_energy_flags(0.0, -1.0) == []  # nonpositive_energy already says it


def test_nodes_with_one_boot_id_are_one_machine() -> None:
    from joulebench.measure.quality import shared_machine_hosts

    assert shared_machine_hosts({"a": "b1", "b": "b1", "c": "b2", "d": None}) == {"a", "b"}
    assert shared_machine_hosts({"a": "b1", "b": "b2"}) == set()
    assert shared_machine_hosts({"a": None, "b": None}) == set()


def test_every_flag_has_an_explanation() -> None:
    produced = {
        "window_too_short",
        "nonpositive_energy",
        "estimate_only",
        "counter_polling_disagreement",
        "gpu_throttled",
        "dynamic_within_baseline_noise",
        "nodes_share_a_machine",
    }
    assert produced <= set(FLAG_TEXT)
