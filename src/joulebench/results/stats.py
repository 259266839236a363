"""Small pure statistics helpers (no numpy needed on the CLI path)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    if not latencies_s:
        return {k: None for k in ("mean_s", "p50_s", "p90_s", "p95_s", "p99_s", "min_s",
                                  "max_s")}
    return {
        "mean_s": sum(latencies_s) / len(latencies_s),
        "p50_s": percentile(latencies_s, 50),
        "p90_s": percentile(latencies_s, 90),
        "p95_s": percentile(latencies_s, 95),
        "p99_s": percentile(latencies_s, 99),
        "min_s": min(latencies_s),
        "max_s": max(latencies_s),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
