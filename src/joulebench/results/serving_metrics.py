"""A serving experiment's figures, from what its engine recorded (pure).

Per request: queueing delay, TTFT, TPOT, inter-token latency, end-to-end latency, tokens
in and out, and its share of the window's energy (:mod:`joulebench.measure.apportion`).
Per experiment: request and token throughput, goodput under the SLOs, latency
percentiles, batch occupancy, and the ML.ENERGY-style steady-state window.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from joulebench.config.scenario import ScenarioConfig
from joulebench.measure.apportion import Split, split_energy
from joulebench.results.records import (
    DECODE,
    PREFILL,
    EnergySection,
    EnergySummary,
    PerRequestEnergy,
    ServedRequest,
    ServedRequestMetrics,
    ServingRecord,
    ServingSection,
    SteadyState,
    StepRecord,
)
from joulebench.results.stats import latency_summary, percentile, ratio

COUNTER_READS = "counter_reads"  # steady-state energy from the per-step counter reads
TIME_SHARE = "time_share"  # the window's energy times the steady window's share of time


def _tpot_s(r: ServedRequest) -> float | None:
    if r["output_tokens"] < 2:
        return None
    return (r["finished_s"] - r["first_token_s"]) / (r["output_tokens"] - 1)


def _itl_mean_s(r: ServedRequest) -> float | None:
    gaps = [b - a for a, b in zip(r["token_s"], r["token_s"][1:], strict=False)]
    return sum(gaps) / len(gaps) if gaps else None


def request_metrics(r: ServedRequest, split: Split | None) -> ServedRequestMetrics:
    energy = split["by_request"].get(str(r["index"])) if split else None
    return {
        "index": r["index"],
        "arrival_s": r["arrival_s"],
        "queue_delay_s": r["admitted_s"] - r["arrival_s"],
        "ttft_s": r["first_token_s"] - r["arrival_s"],
        "tpot_s": _tpot_s(r),
        "itl_mean_s": _itl_mean_s(r),
        "e2e_s": r["finished_s"] - r["arrival_s"],
        "input_tokens": r["input_tokens"],
        "output_tokens": r["output_tokens"],
        "energy_j": energy["energy_j"] if energy else None,
        "dynamic_energy_j": energy["dynamic_energy_j"] if energy else None,
    }


def within_slos(
    r: ServedRequestMetrics, slo_ttft_ms: float | None, slo_tpot_ms: float | None
) -> bool:
    if slo_ttft_ms is not None and r["ttft_s"] * 1000 > slo_ttft_ms:
        return False
    tpot = r["tpot_s"]
    return slo_tpot_ms is None or tpot is None or tpot * 1000 <= slo_tpot_ms


def steady_bounds(
    requests: Sequence[ServedRequest], concurrency: int
) -> tuple[float, float] | None:
    """(start, end) of the steady state, or None when the run never reached one."""
    n = len(requests)
    if concurrency > n or n - concurrency < 1:
        return None
    start = sorted(r["first_token_s"] for r in requests)[concurrency - 1]
    end = sorted(r["finished_s"] for r in requests)[n - concurrency - 1]
    return (start, end) if end > start else None


def energy_at(t_s: float, steps: Sequence[StepRecord], window_s: float, total_j: float) -> float:
    """The cumulative counter at ``t_s``, linear between the reads around it."""
    points = [(0.0, 0.0), *((s["end_s"], float(s["energy_j"] or 0.0)) for s in steps)]
    points.append((window_s, total_j))
    for (t0, e0), (t1, e1) in itertools.pairwise(points):
        if t0 <= t_s <= t1:
            return e0 if t1 == t0 else e0 + (e1 - e0) * (t_s - t0) / (t1 - t0)
    return total_j


def steady_state(
    record: ServingRecord, window_s: float, energy_j: float | None
) -> SteadyState | None:
    bounds = steady_bounds(record["requests"], record["max_concurrency"])
    if bounds is None:
        return None
    start, end = bounds
    steps = record["steps"]
    inside = [s for s in steps if start < s["end_s"] <= end]
    out_tokens = sum(
        sum(s["tokens"].values()) if s["kind"] == DECODE else len(s["tokens"]) for s in inside
    )
    finished = sum(1 for r in record["requests"] if start < r["finished_s"] <= end)
    read = record["energy_read_per_step"] and all(s["energy_j"] is not None for s in steps)
    if energy_j is None:
        joules, method = None, TIME_SHARE
    elif read:
        joules = energy_at(end, steps, window_s, energy_j) - energy_at(
            start, steps, window_s, energy_j
        )
        method = COUNTER_READS
    else:
        joules, method = energy_j * (end - start) / window_s, TIME_SHARE
    return {
        "start_s": start,
        "end_s": end,
        "duration_s": end - start,
        "output_tokens": out_tokens,
        "requests_finished": finished,
        "throughput_output_tokens_per_s": ratio(out_tokens, end - start),
        "request_throughput_per_s": ratio(finished, end - start),
        "energy_j": joules,
        "energy_method": method,
        "energy_per_output_token_j": ratio(joules, out_tokens),
    }


def energy_summary(values: Sequence[float | None]) -> EnergySummary:
    known = [v for v in values if v is not None]
    return {
        "mean_j": sum(known) / len(known) if known else None,
        "p50_j": percentile(known, 50),
        "p90_j": percentile(known, 90),
        "p99_j": percentile(known, 99),
    }


def energy_split(record: ServingRecord, energy: EnergySection, window_s: float) -> Split | None:
    if energy["energy_j"] is None:
        return None
    return split_energy(
        record["steps"],
        energy["energy_j"],
        window_s,
        meter=energy["meter"] or "",
        is_estimate=bool(energy["is_estimate"]),
        baseline_w=energy["baseline_power_w"],
    )


def per_request_energy(split: Split, metrics: Sequence[ServedRequestMetrics]) -> PerRequestEnergy:
    how = (
        "the meter's counter read after every engine step; each interval's energy "
        "(grouped to span the counter's resolution) split among the requests active in "
        "it by tokens processed (prefill and decode tokens alike)"
        if split["method"] == "per_step_counter"
        else "the window's energy split by each request's share of the tokens processed "
        "in it (token-steps): the meter cannot be read per step"
    )
    return {
        "method": split["method"],
        "counter_resolution_s": split["counter_resolution_s"],
        "counter_reads_grouped_into": split["groups"],
        "quality_flags": split["flags"],
        "energy_per_request": energy_summary([m["energy_j"] for m in metrics]),
        "dynamic_energy_per_request": energy_summary([m["dynamic_energy_j"] for m in metrics]),
        "sum_energy_j": sum(m["energy_j"] or 0.0 for m in metrics),
        "note": how,
    }


def serving_section(
    record: ServingRecord,
    scenario: ScenarioConfig,
    window_s: float,
    energy: EnergySection,
) -> tuple[ServingSection, PerRequestEnergy | None]:
    split = energy_split(record, energy, window_s)
    metrics = [request_metrics(r, split) for r in record["requests"]]
    good = [m for m in metrics if within_slos(m, scenario.slo_ttft_ms, scenario.slo_tpot_ms)]
    has_slo = scenario.slo_ttft_ms is not None or scenario.slo_tpot_ms is not None
    decode_rows = [len(s["tokens"]) for s in record["steps"] if s["kind"] == DECODE]
    occupancy = sum(decode_rows) / len(decode_rows) if decode_rows else None
    out_tokens = sum(m["output_tokens"] for m in metrics)
    in_tokens = sum(m["input_tokens"] for m in metrics)
    steady = steady_state(record, window_s, energy["energy_j"])
    schedule = record["schedule"]
    section: ServingSection = {
        "policy": record["policy"],
        "arrival": schedule["arrival"],
        "request_rate": schedule["request_rate"],
        "max_concurrency": record["max_concurrency"],
        "num_requests": schedule["num_requests"],
        "seed": schedule["seed"],
        "schedule_hash": schedule["schedule_hash"],
        "arrival_s": schedule["arrival_s"],
        "slo_ttft_ms": scenario.slo_ttft_ms,
        "slo_tpot_ms": scenario.slo_tpot_ms,
        "queue_delay": latency_summary([m["queue_delay_s"] for m in metrics]),
        "ttft": latency_summary([m["ttft_s"] for m in metrics]),
        "tpot": latency_summary([m["tpot_s"] for m in metrics if m["tpot_s"] is not None]),
        "itl": latency_summary([m["itl_mean_s"] for m in metrics if m["itl_mean_s"] is not None]),
        "e2e": latency_summary([m["e2e_s"] for m in metrics]),
        "request_throughput_per_s": ratio(len(metrics), window_s),
        "output_token_throughput_per_s": ratio(out_tokens, window_s),
        "total_token_throughput_per_s": ratio(in_tokens + out_tokens, window_s),
        "goodput_requests_per_s": ratio(len(good), window_s) if has_slo else None,
        "slo_attainment": ratio(len(good), len(metrics)) if has_slo else None,
        "batch_occupancy_mean": occupancy,
        "batch_occupancy_fraction": ratio(occupancy, record["max_concurrency"]),
        "engine_steps": len(record["steps"]),
        "prefill_steps": sum(1 for s in record["steps"] if s["kind"] == PREFILL),
        "meter_reads_s": record["meter_reads_s"],
        "steady_state": steady,
        "steady_state_note": None
        if steady is not None
        else "never reached: num_requests must exceed max_concurrency by enough that "
        "max_concurrency requests have their first token before num_requests - "
        "max_concurrency have finished",
        "requests": metrics,
    }
    return section, per_request_energy(split, metrics) if split else None
