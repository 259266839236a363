"""A serving run's figures from a literal engine record (pure)."""

from __future__ import annotations

import pytest

from joulebench.config.scenario import ScenarioConfig
from joulebench.results.records import EnergySection, ServedRequest, ServingRecord, StepRecord
from joulebench.results.serving_metrics import (
    COUNTER_READS,
    TIME_SHARE,
    energy_at,
    request_metrics,
    serving_section,
    steady_bounds,
    within_slos,
)


def req(index: int, arrival: float, admitted: float, tokens_s: list[float]) -> ServedRequest:
    return {
        "index": index,
        "arrival_s": arrival,
        "admitted_s": admitted,
        "first_token_s": tokens_s[0],
        "finished_s": tokens_s[-1],
        "input_tokens": 10,
        "output_tokens": len(tokens_s),
        "token_s": tokens_s,
        "token_ids": [1] * len(tokens_s),
    }


def stp(kind: str, start: float, end: float, tokens: dict[str, int], e: float | None) -> StepRecord:
    return {"kind": kind, "start_s": start, "end_s": end, "tokens": tokens, "energy_j": e}  # type: ignore[typeddict-item]


# Two requests, concurrency 1: the second queues behind the first.
REQUESTS = [req(0, 0.0, 0.0, [0.1, 0.2, 0.3]), req(1, 0.05, 0.3, [0.4, 0.5, 0.6])]
STEPS = [
    stp("prefill", 0.0, 0.1, {"0": 10}, 1.0),
    stp("decode", 0.1, 0.2, {"0": 1}, 2.0),
    stp("decode", 0.2, 0.3, {"0": 1}, 3.0),
    stp("prefill", 0.3, 0.4, {"1": 10}, 4.0),
    stp("decode", 0.4, 0.5, {"1": 1}, 5.0),
    stp("decode", 0.5, 0.6, {"1": 1}, 6.0),
]


def record(read: bool = True, concurrency: int = 1) -> ServingRecord:
    steps = STEPS if read else [{**s, "energy_j": None} for s in STEPS]  # type: ignore[misc]
    return {
        "policy": "dynamic_step_batcher",
        "max_concurrency": concurrency,
        "schedule": {
            "arrival": "constant",
            "request_rate": 20.0,
            "num_requests": 2,
            "seed": 1,
            "arrival_s": [0.0, 0.05],
            "schedule_hash": "h",
        },
        "requests": REQUESTS,
        "steps": steps,  # type: ignore[typeddict-item]
        "energy_read_per_step": read,
        "meter_reads_s": 0.001,
    }


def energy(meter: str = "rapl", estimate: bool = False) -> EnergySection:
    return {  # type: ignore[typeddict-item]
        "energy_j": 6.0,
        "meter": meter,
        "is_estimate": estimate,
        "baseline_power_w": 5.0,
        "quality_flags": [],
    }


def test_request_figures_count_from_arrival() -> None:
    m = request_metrics(REQUESTS[1], None)
    assert m["queue_delay_s"] == pytest.approx(0.25)
    assert m["ttft_s"] == pytest.approx(0.35)
    assert m["e2e_s"] == pytest.approx(0.55)
    assert m["tpot_s"] == pytest.approx(0.1) and m["itl_mean_s"] == pytest.approx(0.1)
    assert m["energy_j"] is None


def test_slos_count_requests_within_both() -> None:
    m0, m1 = (request_metrics(r, None) for r in REQUESTS)
    assert within_slos(m0, 200, 150) and not within_slos(m1, 200, 150)
    assert within_slos(m1, None, 150) and not within_slos(m1, None, 50)


def test_steady_state_runs_from_the_cth_first_token_to_the_n_minus_cth_finish() -> None:
    assert steady_bounds(REQUESTS, 1) == (0.1, 0.3)
    assert steady_bounds(REQUESTS, 2) is None  # n - c = 0: never steady


def test_energy_at_interpolates_between_reads() -> None:
    assert energy_at(0.15, STEPS, 0.6, 6.0) == pytest.approx(1.5)
    assert energy_at(0.0, STEPS, 0.6, 6.0) == 0.0


def test_section_with_counter_reads_per_step() -> None:
    scenario = ScenarioConfig(mode="serving", slo_ttft_ms=200.0, slo_tpot_ms=150.0)
    section, per_request = serving_section(record(), scenario, 0.6, energy())
    assert section["request_throughput_per_s"] == pytest.approx(2 / 0.6)
    assert section["goodput_requests_per_s"] == pytest.approx(1 / 0.6)
    assert section["slo_attainment"] == 0.5
    assert section["batch_occupancy_mean"] == 1.0 and section["prefill_steps"] == 2
    steady = section["steady_state"]
    assert steady is not None and steady["energy_method"] == COUNTER_READS
    assert steady["energy_j"] == pytest.approx(2.0) and steady["output_tokens"] == 2
    assert per_request is not None and per_request["method"] == "per_step_counter"
    assert per_request["sum_energy_j"] == pytest.approx(6.0)
    assert sum(r["energy_j"] or 0 for r in section["requests"]) == pytest.approx(6.0)
    # Dynamic: 6 J - 5 W x 0.6 s over both requests.
    dyn = [r["dynamic_energy_j"] or 0 for r in section["requests"]]
    assert sum(dyn) == pytest.approx(3.0)


def test_section_of_an_estimate_meter_shares_the_window() -> None:
    section, per_request = serving_section(
        record(read=False), ScenarioConfig(mode="serving"), 0.6, energy("codecarbon", True)
    )
    assert section["goodput_requests_per_s"] is None  # no SLOs set
    steady = section["steady_state"]
    assert steady is not None and steady["energy_method"] == TIME_SHARE
    assert steady["energy_j"] == pytest.approx(6.0 * 0.2 / 0.6)
    assert per_request is not None and per_request["method"] == "window_share"
    assert per_request["energy_per_request"]["mean_j"] == pytest.approx(3.0)


def test_the_latency_energy_front_keeps_configs_no_other_beats_on_both() -> None:
    from joulebench.results.frontier import lower_left_front

    points = [(0.5, 2.0), (0.2, 3.0), (0.6, 2.5), (0.2, 3.5), (1.0, 1.0)]
    assert lower_left_front(points) == [1, 0, 4]  # by latency
