"""Per-suite summary of the results CSV: statistics per (model, config), tables and plots.

Pure functions over CSV rows (dicts of strings, as ``read_rows`` gives them) plus one
writer, :func:`write_report`. Nothing here imports numpy, torch or matplotlib at module
level; the plots (``joulebench.results.plots``) import matplotlib only when drawn.

Statistics: mean, sample standard deviation (n - 1) and a two-sided 95 % confidence
interval for the mean from Student's t (a table for 1..30 degrees of freedom, a
Cornish-Fisher expansion above; n = 1 gives no interval). Rows with quality flags are
excluded from every statistic and listed apart. Outliers (energy per output token outside
median +- 3 scaled MADs within one config) are only flagged, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from joulebench.results.stats import percentile

METRICS: tuple[str, ...] = (
    "energy_per_output_token_j", "dynamic_energy_per_output_token_j",
    "throughput_output_tokens_per_s", "request_latency_p50_s", "request_latency_p95_s",
    "output_tokens_per_j", "flops_per_j",
)
CONTROLS: tuple[str, ...] = ("batch_size", "precision", "decoder_mode", "num_processes")
OUTLIER_METRIC = "energy_per_output_token_j"
MAD_SCALE = 1.4826  # makes the MAD a consistent estimator of sigma for normal data
OUTLIER_K = 3.0

# Two-sided 95 %: t(0.975, df) for df = 1..30.
T_975: tuple[float, ...] = (
    12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
    2.364624252, 2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830,
    2.160368656, 2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.100922040,
    2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
    2.059538553, 2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456,
)
Z_975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table up to 30, then Cornish-Fisher (error < 1e-5 for df > 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1 (got {df})")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


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
        if self.ci_high is None or self.mean is None:
            return None
        return self.ci_high - self.mean


def describe(values: Sequence[float]) -> MetricStats:
    """n, mean, sample std, 95 % t interval of the mean (None below n = 2), min, max."""
    n = len(values)
    if n == 0:
        return MetricStats(n=0)
    mean = math.fsum(values) / n
    if n == 1:
        return MetricStats(n=1, mean=mean, min=values[0], max=values[0])
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return MetricStats(n=n, mean=mean, std=std, ci_low=mean - half, ci_high=mean + half,
                       min=min(values), max=max(values))


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


@dataclass
class ConfigSummary:
    suite: str
    model: str
    config_name: str
    controls: dict[str, str]
    experiment_ids: list[str]  # rows used in the statistics
    flagged: dict[str, str]  # experiment_id -> quality flags; excluded from the statistics
    outliers: list[str]  # experiment_ids flagged by the MAD rule (still included)
    metrics: dict[str, MetricStats] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} / {self.config_name}"


def _summarise_group(suite: str, model: str, config: str,
                     rows: list[Mapping[str, str]]) -> ConfigSummary:
    flagged = {r["experiment_id"]: r["quality_flags"] for r in rows
               if (r.get("quality_flags") or "").strip()}
    used = [r for r in rows if r["experiment_id"] not in flagged]
    metrics: dict[str, MetricStats] = {}
    for name in METRICS:
        values = [v for v in (to_float(r.get(name)) for r in used) if v is not None]
        metrics[name] = describe(values)
    energy = {r["experiment_id"]: to_float(r.get(OUTLIER_METRIC)) for r in used}
    outliers = mad_outliers({k: v for k, v in energy.items() if v is not None})
    source = used[0] if used else rows[0]
    controls = {c: (source.get(c) or "").strip() for c in CONTROLS}
    return ConfigSummary(suite=suite, model=model, config_name=config, controls=controls,
                         experiment_ids=[r["experiment_id"] for r in used], flagged=flagged,
                         outliers=outliers, metrics=metrics)


def summarise(rows: Iterable[Mapping[str, str]], suite: str) -> list[ConfigSummary]:
    """One summary per (model, config_name) of the suite; models, then configs, in the
    order they first appear in the rows."""
    groups: dict[tuple[str, str], list[Mapping[str, str]]] = {}
    model_order: dict[str, int] = {}
    config_order: dict[str, int] = {}
    for row in rows:
        if row.get("suite") != suite:
            continue
        model, config = row.get("model") or "", row.get("config_name") or ""
        model_order.setdefault(model, len(model_order))
        config_order.setdefault(config, len(config_order))
        groups.setdefault((model, config), []).append(row)
    keys = sorted(groups, key=lambda k: (model_order[k[0]], config_order[k[1]]))
    return [_summarise_group(suite, m, c, groups[(m, c)]) for m, c in keys]
