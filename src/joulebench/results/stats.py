"""Small pure statistics helpers (no numpy needed on the CLI path)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


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
        return {k: None for k in ("mean_s", "p50_s", "p90_s", "p95_s", "p99_s", "min_s", "max_s")}
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


MAD_SCALE = 1.4826  # makes the MAD a consistent estimator of sigma for normal data
OUTLIER_K = 3.0

# Two-sided 95 %: t(0.975, df) for df = 1..30.
T_975: tuple[float, ...] = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
Z_975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table up to 30, then Cornish-Fisher (error < 1e-5 for df > 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1 (got {df})")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class MetricStats:
    n: int
    mean: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    min: float | None = None
    max: float | None = None

    @property
    def ci_half_width(self) -> float | None:
        """The t interval's half-width (the upper side: the lower may be clipped)."""
        if self.ci_high is None or self.mean is None:
            return None
        return self.ci_high - self.mean


def describe(values: Sequence[float], lower_bound: float | None = None) -> MetricStats:
    """n, mean, sample std, 95 % t interval of the mean (None below n = 2), min, max.

    ``lower_bound``: the quantity's physical floor (0 for energy, time, throughput); the
    interval is clipped there, since a symmetric t interval of a small, noisy mean can
    reach below it ("-0.001 J per token") where no true mean can lie.
    """
    n = len(values)
    if n == 0:
        return MetricStats(n=0)
    mean = math.fsum(values) / n
    if n == 1:
        return MetricStats(n=1, mean=mean, min=values[0], max=values[0])
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    low = mean - half if lower_bound is None else max(mean - half, lower_bound)
    return MetricStats(
        n=n, mean=mean, std=std, ci_low=low, ci_high=mean + half, min=min(values), max=max(values)
    )


def mad_outliers(values: Mapping[str, float], k: float = OUTLIER_K) -> list[str]:
    """Keys whose value lies outside median +- k * 1.4826 * MAD (strictly; needs n >= 3).

    With MAD = 0 (most values identical) every value off the median is flagged.
    """
    if len(values) < 3:
        return []
    median = percentile(list(values.values()), 50)
    assert median is not None
    mad = percentile([abs(v - median) for v in values.values()], 50)
    assert mad is not None
    limit = k * MAD_SCALE * mad
    return [key for key, v in values.items() if abs(v - median) > limit]


def to_float(text: str | None) -> float | None:
    """A CSV cell as a finite float; empty, unparsable or non-finite gives None."""
    if text is None or not str(text).strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def decimals_for(half_width: float) -> int:
    """Decimal places that show a CI half-width to two significant digits."""
    return max(0, 1 - math.floor(math.log10(abs(half_width))))


def fmt(value: float | None) -> str:
    """One number alone: four significant digits, scientific from 1e5."""
    if value is None:
        return "–"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def fmt_mean_ci(mean: float | None, half_width: float | None) -> str:
    """Mean and CI half-width at one precision: the half-width to two significant digits
    and the mean to the same place ("0.0080 ± 0.0092", "2300 ± 7000"), so neither claims
    digits the other does not support. From 1e5 both share one power of ten."""
    if mean is None:
        return "–"
    if half_width is None or half_width <= 0 or not math.isfinite(half_width):
        return fmt(mean)
    scale = max(abs(mean), half_width)
    exponent = math.floor(math.log10(scale)) if scale >= 1e5 else 0
    m, h = mean / 10**exponent, half_width / 10**exponent
    places = decimals_for(h)
    if places == 0:  # two significant digits of a half-width >= 100 end before the point
        digits = 1 - math.floor(math.log10(h))
        m, h = round(m, digits), round(h, digits)
    text = f"{m:.{places}f} ± {h:.{places}f}"
    return f"({text})e{exponent}" if exponent else text
