"""The data behind the report's plots, and drawing them (matplotlib, imported lazily).

:func:`build_plot_data` is pure: for every controlled variable that varies in the suite it
gives energy per output token and throughput against that variable (one series per model,
split further when another variable also varies), plus the energy-vs-throughput Pareto
plot. :func:`render` draws one :class:`PlotData` to a PNG with the Agg canvas, without
pyplot, so it neither needs a display nor changes the caller's matplotlib backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joulebench.errors import JoulebenchError
from joulebench.results.report import CONTROLS, ConfigSummary, MetricStats

# How a suite names a config that varies this variable: controlled `batch_size: [8]` gives
# batch_size_8; `decoder: {sampling_t0.7: ...}` gives decoder_sampling_t0.7; a dotted
# `decoder.mode` gives mode_greedy; grid names join such parts with "__".
NAME_PREFIXES: dict[str, tuple[str, ...]] = {
    "batch_size": ("batch_size",), "precision": ("precision",),
    "decoder_mode": ("decoder", "mode"), "num_processes": ("num_processes",),
}
NUMERIC = frozenset({"batch_size", "num_processes"})
ENERGY = "energy_per_output_token_j"
THROUGHPUT = "throughput_output_tokens_per_s"
LABELS = {ENERGY: "energy per output token (J)", THROUGHPUT: "throughput (output tokens/s)"}


@dataclass
class Series:
    label: str
    model: str
    x: list[Any]
    y: list[float]
    ci_low: list[float | None]
    ci_high: list[float | None]
    configs: list[str]
    x_ci_low: list[float | None] = field(default_factory=list)  # Pareto plot only
    x_ci_high: list[float | None] = field(default_factory=list)


@dataclass
class PlotData:
    name: str  # file stem, e.g. demo_energy_vs_batch_size
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    variable: str | None = None  # None for the Pareto plot
    metric: str | None = None
    front: Series | None = None  # Pareto plot: the non-dominated configs
    path: Path | None = None  # set once drawn


def name_value(config_name: str, variable: str) -> str | None:
    """The value a config's name gives the variable (batch_size_8 -> "8"), if any."""
    for part in config_name.split("__"):
        for prefix in NAME_PREFIXES[variable]:
            if part.startswith(prefix + "_"):
                return part[len(prefix) + 1:]
    return None


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def x_value(summary: ConfigSummary, variable: str, by_name: bool) -> Any:
    """The config's x position: decoder configs by their name (two sampling configs differ),
    the rest by the recorded value (a number for batch size and process count)."""
    named = name_value(summary.config_name, variable) if by_name else None
    if variable == "decoder_mode" and named:
        return named
    text = summary.controls.get(variable) or named
    if not text:
        return None
    return _number(text) if variable in NUMERIC else text


def varying_variables(summaries: Sequence[ConfigSummary]) -> dict[str, tuple[list, bool]]:
    """variable -> (the configs that vary it, whether found by name). Names win: in a
    controlled suite only batch_size_* configs make the batch-size plot."""
    out: dict[str, tuple[list, bool]] = {}
    for var in CONTROLS:
        marked = [s for s in summaries if name_value(s.config_name, var) is not None]
        if len({x_value(s, var, True) for s in marked} - {None}) >= 2:
            out[var] = (marked, True)
        elif len({s.controls.get(var) for s in summaries} - {None, ""}) >= 2:
            out[var] = (list(summaries), False)
    return out


def _series_keys(selected: Sequence[ConfigSummary], variable: str) -> dict[int, tuple]:
    """Series key per config: its model, plus any other variable varying within the
    model's configs (a grid), so each series varies one thing."""
    keys: dict[int, tuple] = {}
    for s in selected:
        same = [o for o in selected if o.model == s.model]
        others = tuple((w, s.controls.get(w, "")) for w in CONTROLS if w != variable
                       and len({o.controls.get(w) for o in same}) > 1)
        keys[id(s)] = (s.model, others)
    return keys


def _label(key: tuple) -> str:
    model, others, *config = key
    extra = ", ".join(f"{w}={v}" for w, v in others)
    text = f"{model} ({extra})" if extra else model
    return f"{text} [{config[0]}]" if config else text


def series_for(selected: Sequence[ConfigSummary], variable: str, metric: str,
               by_name: bool) -> list[Series]:
    """One series per key; a series that would hold one x twice is split per config."""
    keys = _series_keys(selected, variable)
    groups: dict[tuple, list[tuple[Any, MetricStats, str]]] = {}
    for s in selected:
        x, stats = x_value(s, variable, by_name), s.metrics[metric]
        if x is not None and stats.mean is not None:
            groups.setdefault(keys[id(s)], []).append((x, stats, s.config_name))
    for key, points in list(groups.items()):
        if len({p[0] for p in points}) < len(points):
            del groups[key]
            for point in points:
                groups.setdefault((*key, point[2]), []).append(point)
    out = []
    for key, points in groups.items():
        if variable in NUMERIC and all(isinstance(p[0], int | float) for p in points):
            points = sorted(points, key=lambda p: p[0])
        out.append(Series(label=_label(key), model=key[0], x=[p[0] for p in points],
                          y=[p[1].mean for p in points], ci_low=[p[1].ci_low for p in points],
                          ci_high=[p[1].ci_high for p in points],
                          configs=[p[2] for p in points]))
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (throughput, energy) points no other point dominates (at least as
    fast and as frugal, better in one), sorted by throughput."""
    def dominated(i: int) -> bool:
        ti, ei = points[i]
        return any(t >= ti and e <= ei and (t > ti or e < ei) for t, e in points)
    return sorted((i for i in range(len(points)) if not dominated(i)),
                  key=lambda i: (points[i][0], points[i][1]))


def pareto_data(summaries: Sequence[ConfigSummary], suite: str) -> PlotData | None:
    usable = [s for s in summaries
              if s.metrics[ENERGY].mean is not None and s.metrics[THROUGHPUT].mean is not None]
    if not usable:
        return None
    by_model: dict[str, Series] = {}
    for s in usable:
        e, t = s.metrics[ENERGY], s.metrics[THROUGHPUT]
        series = by_model.setdefault(s.model, Series(s.model, s.model, [], [], [], [], []))
        series.x.append(t.mean)
        series.y.append(e.mean)
        series.ci_low.append(e.ci_low)
        series.ci_high.append(e.ci_high)
        series.x_ci_low.append(t.ci_low)
        series.x_ci_high.append(t.ci_high)
        series.configs.append(s.config_name)
    chosen = [usable[i] for i in pareto_front(
        [(s.metrics[THROUGHPUT].mean, s.metrics[ENERGY].mean) for s in usable])]
    front = Series("Pareto front", "", [s.metrics[THROUGHPUT].mean for s in chosen],
                   [s.metrics[ENERGY].mean for s in chosen],
                   [s.metrics[ENERGY].ci_low for s in chosen],
                   [s.metrics[ENERGY].ci_high for s in chosen], [s.label for s in chosen])
    return PlotData(name=f"{suite}_pareto", title=f"{suite}: energy per token vs throughput",
                    x_label=LABELS[THROUGHPUT], y_label=LABELS[ENERGY],
                    series=list(by_model.values()), front=front)


def build_plot_data(summaries: Sequence[ConfigSummary], suite: str) -> list[PlotData]:
    """Energy/token and throughput vs each varying variable, then the Pareto plot."""
    plots = []
    for var, (selected, by_name) in varying_variables(summaries).items():
        for metric, stem in ((ENERGY, "energy_per_token"), (THROUGHPUT, "throughput")):
            plots.append(PlotData(
                name=f"{suite}_{stem}_vs_{var}", variable=var, metric=metric,
                title=f"{suite}: {LABELS[metric].split(' (')[0]} vs {var}",
                x_label=var, y_label=LABELS[metric],
                series=series_for(selected, var, metric, by_name)))
    pareto = pareto_data(summaries, suite)
    return [*plots, pareto] if pareto else plots


def _yerr(series: Series) -> list[list[float]]:
    return [[0.0 if lo is None else y - lo for y, lo in zip(series.y, series.ci_low,
                                                               strict=True)],
            [0.0 if hi is None else hi - y for y, hi in zip(series.y, series.ci_high,
                                                               strict=True)]]


def _draw_variable(ax: Any, plot: PlotData) -> None:
    xs = [x for s in plot.series for x in s.x]
    numeric = plot.variable in NUMERIC and all(isinstance(x, int | float) for x in xs)
    categories = list(dict.fromkeys(xs))
    for s in plot.series:
        pos = s.x if numeric else [categories.index(x) for x in s.x]
        ax.errorbar(pos, s.y, yerr=_yerr(s), marker="o", capsize=3, label=s.label)
    if numeric:
        ticks = sorted(set(xs))
        if ticks and ticks[0] > 0 and ticks[-1] / ticks[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories],
                      rotation=20 if len(categories) > 3 else 0)


def _draw_pareto(ax: Any, plot: PlotData) -> None:
    for s in plot.series:
        xerr = [[0.0 if lo is None else x - lo for x, lo in zip(s.x, s.x_ci_low, strict=True)],
                [0.0 if hi is None else hi - x for x, hi in zip(s.x, s.x_ci_high, strict=True)]]
        ax.errorbar(s.x, s.y, xerr=xerr, yerr=_yerr(s), fmt="o", capsize=2, alpha=0.8,
                    label=s.label)
    front = plot.front
    if front and front.x:
        ax.plot(front.x, front.y, "-o", color="crimson", lw=2, ms=11, mfc="none", zorder=3,
                label=front.label)
        several = len(plot.series) > 1
        for x, y, name in zip(front.x, front.y, front.configs, strict=True):
            ax.annotate(name if several else name.split(" / ")[-1], (x, y),
                        textcoords="offset points", xytext=(6, 6), fontsize=7)


def render(plot: PlotData, path: Path) -> Path:
    """Draw one plot to a PNG (Agg canvas; matplotlib imported here, not at import)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise JoulebenchError("the report's plots need matplotlib: pip install "
                              "'matplotlib>=3.5' into joulebench's environment") from exc

    fig = Figure(figsize=(7.5, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if plot.variable is None:
        _draw_pareto(ax, plot)
    else:
        _draw_variable(ax, plot)
    ax.set_title(plot.title)
    ax.set_xlabel(plot.x_label)
    ax.set_ylabel(plot.y_label)
    ax.grid(alpha=0.3)
    if plot.series:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plot.path = path
    return path
