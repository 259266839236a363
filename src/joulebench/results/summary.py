"""What a report is made of: each config's statistics (:class:`ConfigSummary`) and each
plot's data (:class:`PlotData`).

Kept apart from ``report`` (which builds the summaries and writes the files), ``plots``
(which draws) and ``report_pages`` (which lays out tables and pages), so those three
import these types from here and never each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joulebench.results.stats import MetricStats

METRICS: tuple[str, ...] = (
    "energy_per_output_token_j",
    "dynamic_energy_per_output_token_j",
    "throughput_output_tokens_per_s",
    "request_latency_p50_s",
    "request_latency_p95_s",
    "output_tokens_per_j",
    "flops_per_j",
    # Serving runs only (scenario.mode: serving); empty for offline ones.
    "energy_per_request_j_mean",
    "dynamic_energy_per_request_j_mean",
)
# Dynamic energy (total - idle baseline x window) is the only one that can be negative.
NONNEGATIVE = frozenset(METRICS) - {
    "dynamic_energy_per_output_token_j",
    "dynamic_energy_per_request_j_mean",
}
OUTLIER_METRIC = "energy_per_output_token_j"


@dataclass
class ConfigSummary:
    suite: str
    model: str
    config_name: str
    variables: dict[str, str]  # varied field -> this config's value
    experiment_ids: list[str]  # rows used in the statistics
    flagged: dict[str, str]  # experiment_id -> quality flags; excluded from the statistics
    outliers: list[str]  # experiment_ids flagged by the MAD rule (still included)
    archived: list[str] = field(default_factory=list)  # older runs of the keys: not pooled
    energy_meter: str = ""  # "codecarbon", "nvml", or "a, b" when runs differ
    energy_method: str = ""  # counter, polling, estimate
    energy_is_estimate: str = ""  # yes, no or mixed
    config_flags: list[str] = field(default_factory=list)  # e.g. unstable_across_cycles
    cycle_notes: list[str] = field(default_factory=list)  # why a config flag was raised
    metrics: dict[str, MetricStats] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} / {self.config_name}"


@dataclass
class Series:
    label: str
    model: str
    x: list[Any]
    y: list[float]
    ci_low: list[float | None]
    ci_high: list[float | None]
    configs: list[str]
    n: list[int] = field(default_factory=list)  # runs behind each point
    x_ci_low: list[float | None] = field(default_factory=list)  # Pareto plot only
    x_ci_high: list[float | None] = field(default_factory=list)


@dataclass
class PlotData:
    name: str  # file stem, e.g. demo_energy_per_token_vs_batch_size
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    variable: str | None = None  # the field's path; None for the Pareto plot
    metric: str | None = None
    numeric: bool = False  # x is a number line (else categories, drawn as points)
    front: Series | None = None  # Pareto plot: the non-dominated configs
    path: Path | None = None  # the PNG, set once drawn
    svg_path: Path | None = None  # the SVG beside it


def two_metric_series(
    summaries: list[ConfigSummary], x_metric: str, y_metric: str, front: list[int]
) -> tuple[list[Series], Series]:
    """One series per model of (x, y) means with both CIs, and the series joining the
    configs at the indices ``front`` chose (the Pareto plot and the serving frontier)."""
    by_model: dict[str, Series] = {}
    for s in summaries:
        x, y = s.metrics[x_metric], s.metrics[y_metric]
        series = by_model.setdefault(s.model, Series(s.model, s.model, [], [], [], [], []))
        series.x.append(x.mean)
        series.y.append(y.mean or 0.0)
        series.ci_low.append(y.ci_low)
        series.ci_high.append(y.ci_high)
        series.x_ci_low.append(x.ci_low)
        series.x_ci_high.append(x.ci_high)
        series.configs.append(s.config_name)
        series.n.append(min(x.n, y.n))
    chosen = [summaries[i] for i in front]
    joined = Series(
        "",
        "",
        [s.metrics[x_metric].mean for s in chosen],
        [s.metrics[y_metric].mean or 0.0 for s in chosen],
        [s.metrics[y_metric].ci_low for s in chosen],
        [s.metrics[y_metric].ci_high for s in chosen],
        [s.label for s in chosen],
    )
    return list(by_model.values()), joined
