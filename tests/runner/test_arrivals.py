"""Seeded arrival schedules: same config, same schedule; each process its own shape."""

from __future__ import annotations

import itertools
import statistics

import pytest

from joulebench.runner.arrivals import arrival_schedule, arrival_times_s


def test_poisson_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    first = arrival_times_s("poisson", 4.0, 200, seed=7)
    assert first == arrival_times_s("poisson", 4.0, 200, seed=7)
    assert first != arrival_times_s("poisson", 4.0, 200, seed=8)
    assert first[0] == 0.0 and first == sorted(first)


def test_poisson_gaps_average_one_over_the_rate() -> None:
    times = arrival_times_s("poisson", 5.0, 4000, seed=1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.mean(gaps) == pytest.approx(0.2, rel=0.05)
    # Exponential gaps: the standard deviation equals the mean (a constant process: 0).
    assert statistics.stdev(gaps) == pytest.approx(0.2, rel=0.1)


def test_constant_is_evenly_spaced_and_burst_is_all_at_zero() -> None:
    assert arrival_times_s("constant", 4.0, 5, seed=1) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert arrival_times_s("burst", 4.0, 3, seed=1) == [0.0, 0.0, 0.0]


def test_the_recorded_schedule_names_its_inputs_and_hashes_the_prompts_too() -> None:
    one = arrival_schedule("poisson", 2.0, 10, 3, prompt_hash="abc")
    assert one["arrival_s"] == arrival_times_s("poisson", 2.0, 10, 3)
    assert (one["arrival"], one["request_rate"], one["num_requests"], one["seed"]) == (
        "poisson",
        2.0,
        10,
        3,
    )
    assert one["schedule_hash"] == arrival_schedule("poisson", 2.0, 10, 3, "abc")["schedule_hash"]
    assert one["schedule_hash"] != arrival_schedule("poisson", 2.0, 10, 3, "abd")["schedule_hash"]
    assert one["schedule_hash"] != arrival_schedule("poisson", 3.0, 10, 3, "abc")["schedule_hash"]
