"""Per-request energy split, on literal engine steps (pure logic)."""

from __future__ import annotations

import pytest

from joulebench.measure.apportion import (
    PER_STEP_COUNTER,
    WINDOW_SHARE,
    StepEnergy,
    per_step,
    split_energy,
    window_share,
)
from joulebench.measure.quality import (
    INFORMATIONAL_FLAGS,
    SPLIT_BY_WINDOW_SHARE,
    WINDOW_SHORTER_THAN_COUNTER,
)


def step(end_s: float, tokens: dict[str, int], energy_j: float | None) -> StepEnergy:
    return {"end_s": end_s, "tokens": tokens, "energy_j": energy_j}


# Request 0 prefills 30 tokens, then 0 and 1 decode together, then 1 alone.
STEPS = [
    step(0.2, {"0": 30}, 20.0),
    step(0.4, {"0": 1, "1": 1}, 50.0),
    step(0.6, {"1": 1}, 60.0),
]


def test_per_step_gives_each_interval_to_its_requests_by_tokens() -> None:
    split, groups = per_step(STEPS, 64.0, 0.62, None, resolution_s=0.1)
    assert groups == 3
    assert split["0"]["energy_j"] == pytest.approx(20.0 + 15.0)
    # The last interval runs to the window's end and takes the meter's final figure.
    assert split["1"]["energy_j"] == pytest.approx(15.0 + 14.0)
    assert sum(r["energy_j"] for r in split.values()) == pytest.approx(64.0)
    assert all(r["dynamic_energy_j"] is None for r in split.values())


def test_steps_shorter_than_the_counter_are_grouped_until_they_span_it() -> None:
    steps = [step(0.01 * (i + 1), {str(i % 2): 1}, 0.5 * (i + 1)) for i in range(20)]
    split, groups = per_step(steps, 10.0, 0.2, None, resolution_s=0.1)
    assert groups == 2  # 0.1 s of reads each, the last to the window's end
    assert split["0"]["energy_j"] == pytest.approx(5.0)
    assert sum(r["energy_j"] for r in split.values()) == pytest.approx(10.0)


def test_dynamic_energy_subtracts_the_baseline_per_interval_and_sums_to_the_window() -> None:
    split, _ = per_step(STEPS, 64.0, 0.6, baseline_w=10.0, resolution_s=0.1)
    assert split["0"]["dynamic_energy_j"] == pytest.approx((20 - 2) + (30 - 2) / 2)
    total = sum(r["dynamic_energy_j"] or 0.0 for r in split.values())
    assert total == pytest.approx(64.0 - 10.0 * 0.6)


def test_window_share_splits_by_token_steps() -> None:
    split = window_share(STEPS, 64.0, dynamic_j=32.0)
    assert split["0"]["energy_j"] == pytest.approx(64.0 * 31 / 33)
    assert split["1"]["dynamic_energy_j"] == pytest.approx(32.0 * 2 / 33)
    assert sum(r["energy_j"] for r in split.values()) == pytest.approx(64.0)


def test_a_counter_meter_read_per_step_splits_per_step() -> None:
    out = split_energy(STEPS, 64.0, 0.6, meter="nvml", is_estimate=False, baseline_w=None)
    assert out["method"] == PER_STEP_COUNTER and out["flags"] == []
    assert out["counter_resolution_s"] == 0.1


def test_an_estimate_or_an_unread_meter_falls_back_to_window_share_flagged() -> None:
    for meter, estimate, steps in (
        ("codecarbon", True, STEPS),
        ("nvml", False, [step(0.2, {"0": 1}, None)]),  # a GPU without a counter
    ):
        out = split_energy(steps, 64.0, 0.6, meter=meter, is_estimate=estimate, baseline_w=None)
        assert out["method"] == WINDOW_SHARE and out["flags"] == [SPLIT_BY_WINDOW_SHARE]
    assert SPLIT_BY_WINDOW_SHARE in INFORMATIONAL_FLAGS  # the total energy stays sound


def test_a_window_shorter_than_the_counter_resolves_is_flagged() -> None:
    short = [step(0.01, {"0": 3}, 0.0), step(0.02, {"0": 1}, 0.0)]
    out = split_energy(short, 1.0, 0.05, meter="nvml", is_estimate=False, baseline_w=None)
    assert out["method"] == WINDOW_SHARE
    assert out["flags"] == [SPLIT_BY_WINDOW_SHARE, WINDOW_SHORTER_THAN_COUNTER]
    assert out["by_request"]["0"]["energy_j"] == pytest.approx(1.0)
