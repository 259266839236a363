"""Seeded arrival schedules: when each request of a serving experiment arrives.

Pure: the same (process, rate, count, seed) gives the same schedule on every cycle,
every rerun and every machine (``random.Random`` is specified to be reproducible across
platforms for a given seed), so a rate sweep compares engines, not luck.
"""

from __future__ import annotations

import hashlib
import json
import random

from joulebench.config.scenario import BURST, CONSTANT, POISSON, ArrivalProcess
from joulebench.results.records import ArrivalSchedule


def arrival_times_s(process: ArrivalProcess, rate: float, count: int, seed: int) -> list[float]:
    """Arrival instants in seconds from the start, rounded to the microsecond."""
    if process == BURST:
        return [0.0] * count
    if process == CONSTANT:
        return [round(i / rate, 6) for i in range(count)]
    if process != POISSON:
        raise ValueError(f"unknown arrival process {process!r}")
    rng = random.Random(seed)
    now, out = 0.0, []
    for _ in range(count):
        out.append(round(now, 6))
        now += rng.expovariate(rate)  # exponential gaps: a Poisson process; first at 0
    return out


def schedule_hash(times_s: list[float], prompt_hash: str) -> str:
    canonical = json.dumps({"arrival_s": times_s, "prompts": prompt_hash}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def arrival_schedule(
    process: ArrivalProcess, rate: float, count: int, seed: int, prompt_hash: str
) -> ArrivalSchedule:
    times = arrival_times_s(process, rate, count, seed)
    return {
        "arrival": process,
        "request_rate": rate,
        "num_requests": count,
        "seed": seed,
        "arrival_s": times,
        "schedule_hash": schedule_hash(times, prompt_hash),
    }
