"""The data behind the report's plots, and drawing them (matplotlib, imported lazily).

:func:`build_plot_data` is pure: for every field the suite varies it gives energy per
output token and throughput against that field (one series per model, split further when
another field also varies), plus the energy-vs-throughput Pareto plot. :func:`render`
draws one :class:`PlotData` to a PNG and an SVG beside it with the Agg canvas, without
pyplot, so it neither needs a display nor changes the caller's matplotlib backend.

Paper conventions: axes named in words with units; a categorical field as points (never
joined by lines, which would invent an order); each point's n written beside it; y from
zero, since both metrics are ratio scales (a truncated axis turns 5 % into "twice");
intervals already clipped at 0 by the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from joulebench.errors import JoulebenchError
from joulebench.results.frontier import (
    FRONTIER_LABELS,
    P95_LATENCY,
    REQUEST_ENERGY,
    latency_energy_frontier,
)
from joulebench.results.stats import MetricStats
from joulebench.results.summary import ConfigSummary, PlotData, Series, two_metric_series
from joulebench.results.variables import Variable

ENERGY = "energy_per_output_token_j"
THROUGHPUT = "throughput_output_tokens_per_s"
LABELS = {
    ENERGY: "energy per output token (J/token)",
    THROUGHPUT: "throughput (output tokens/s)",
    **FRONTIER_LABELS,  # serving runs (issue 16): J/request and p95 latency
}
# Words for config fields on an axis; any other field is spelled out from its name.
FIELD_LABELS = {
    "batch_size": "batch size (prompts per generate call)",
    "num_processes": "processes per node",
    "parallelism": "parallelism (data, tensor, pipeline)",
    "precision": "numeric precision",
    "quantization": "weight quantization",
    "num_prompts": "prompts per experiment",
    "max_input_tokens": "max input length (tokens)",
    "max_output_tokens": "max output length (tokens)",
    "min_output_tokens": "min output length (tokens)",
    "decoder": "decoding strategy",
    "decoder.mode": "decoding mode",
    "decoder.temperature": "sampling temperature",
    "decoder.top_k": "top-k (tokens kept)",
    "decoder.top_p": "top-p (probability mass kept)",
    "dataset.name": "dataset",
    "warmup_iterations": "warm-up iterations",
    "device": "device",
    "request_rate": "request rate (requests/s)",
    "scenario.request_rate": "request rate (requests/s)",
    "scenario.max_concurrency": "requests in flight at most",
    "scenario.arrival": "arrival process",
}
UNIT_SUFFIXES = {
    "_s": "s",
    "_w": "W",
    "_j": "J",
    "_c": "°C",
    "_tokens": "tokens",
    "_bytes": "bytes",
    "_per_s": "per s",
}


def field_label(path: str) -> str:
    """An axis label in words with the unit its name carries: idle_baseline_s ->
    "idle baseline (s)"."""
    if path in FIELD_LABELS:
        return FIELD_LABELS[path]
    name = path.replace(".", " ")
    for suffix, unit in sorted(UNIT_SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return f"{name[: -len(suffix)].replace('_', ' ')} ({unit})"
    return name.replace("_", " ")


def _series_keys(
    selected: Sequence[ConfigSummary], variable: Variable, others: Sequence[Variable]
) -> dict[int, tuple]:
    """Series key per config: its model, plus any other field varying within the model's
    selected configs (a grid), so each series varies one thing."""
    keys: dict[int, tuple] = {}
    for s in selected:
        same = [(o.model, o.config_name) for o in selected if o.model == s.model]
        extra = tuple(
            (w.path, w.text((s.model, s.config_name)))
            for w in others
            if w.path != variable.path and len({w.text(c) for c in same}) > 1
        )
        keys[id(s)] = (s.model, extra)
    return keys


def _label(key: tuple) -> str:
    model, others, *config = key
    extra = ", ".join(f"{w}={v}" for w, v in others)
    text = f"{model} ({extra})" if extra else model
    return f"{text} [{config[0]}]" if config else text


def series_for(
    summaries: Sequence[ConfigSummary], variable: Variable, metric: str, others: Sequence[Variable]
) -> list[Series]:
    """One series per key; a series that would hold one x twice is split per config."""
    selected = [s for s in summaries if (s.model, s.config_name) in variable.values]
    keys = _series_keys(selected, variable, others)
    groups: dict[tuple, list[tuple[Any, MetricStats, str]]] = {}
    for s in selected:
        x, stats = variable.values[(s.model, s.config_name)], s.metrics[metric]
        if x is not None and stats.mean is not None:
            groups.setdefault(keys[id(s)], []).append((x, stats, s.config_name))
    for key, points in list(groups.items()):
        if len({str(p[0]) for p in points}) < len(points):
            del groups[key]
            for point in points:
                groups.setdefault((*key, point[2]), []).append(point)
    out = []
    for key, points in groups.items():
        if variable.numeric:
            points = sorted(points, key=lambda p: p[0])
        out.append(
            Series(
                label=_label(key),
                model=key[0],
                x=[p[0] for p in points],
                y=[p[1].mean for p in points],
                ci_low=[p[1].ci_low for p in points],
                ci_high=[p[1].ci_high for p in points],
                configs=[p[2] for p in points],
                n=[p[1].n for p in points],
            )
        )
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (throughput, energy) points no other point dominates (at least as
    fast and as frugal, better in one), sorted by throughput."""

    def dominated(i: int) -> bool:
        ti, ei = points[i]
        return any(t >= ti and e <= ei and (t > ti or e < ei) for t, e in points)

    return sorted(
        (i for i in range(len(points)) if not dominated(i)),
        key=lambda i: (points[i][0], points[i][1]),
    )


def pareto_data(summaries: Sequence[ConfigSummary], suite: str) -> PlotData | None:
    usable = [
        s
        for s in summaries
        if s.metrics[ENERGY].mean is not None and s.metrics[THROUGHPUT].mean is not None
    ]
    if not usable:
        return None
    points = [(s.metrics[THROUGHPUT].mean, s.metrics[ENERGY].mean) for s in usable]
    series, front = two_metric_series(usable, THROUGHPUT, ENERGY, pareto_front(points))
    front.label = "Pareto front"
    return PlotData(
        name=f"{suite}_pareto",
        title=f"{suite}: energy per token vs throughput",
        x_label=LABELS[THROUGHPUT],
        y_label=LABELS[ENERGY],
        series=series,
        numeric=True,
        front=front,
    )


def build_plot_data(
    summaries: Sequence[ConfigSummary], suite: str, variables: Sequence[Variable]
) -> list[PlotData]:
    """Energy/token and throughput vs each varied field, then the Pareto plot; for
    serving runs also J/request and p95 latency vs the field (a latency-energy frontier
    against ``scenario.request_rate``), each with its CI across cycles."""
    plots = []
    for var in variables:
        metrics = [(ENERGY, "energy_per_token"), (THROUGHPUT, "throughput")]
        if series_for(summaries, var, REQUEST_ENERGY, variables):  # serving runs
            metrics += [(REQUEST_ENERGY, "energy_per_request"), (P95_LATENCY, "p95_latency")]
        for metric, stem in metrics:
            series = series_for(summaries, var, metric, variables)
            if not series:
                continue
            plots.append(
                PlotData(
                    name=f"{suite}_{stem}_vs_{var.stem}",
                    variable=var.path,
                    metric=metric,
                    title=f"{suite}: {LABELS[metric].split(' (')[0]} vs {field_label(var.path)}",
                    x_label=field_label(var.path),
                    y_label=LABELS[metric],
                    series=series,
                    numeric=var.numeric,
                )
            )
    extra = [
        p for p in (pareto_data(summaries, suite), latency_energy_frontier(summaries, suite)) if p
    ]
    return [*plots, *extra]


def error_bars(
    values: Sequence[float], low: Sequence[float | None], high: Sequence[float | None]
) -> list[list[float]]:
    """matplotlib's [below, above] distances; no interval draws none, and a bar never
    reaches below zero (the statistics clip already; this guards hand-made data)."""
    return [
        [
            0.0 if lo is None else max(0.0, v - max(lo, 0.0))
            for v, lo in zip(values, low, strict=True)
        ],
        [0.0 if hi is None else max(0.0, hi - v) for v, hi in zip(values, high, strict=True)],
    ]


def _annotate_n(ax: Any, xs: Sequence[Any], ys: Sequence[float], ns: Sequence[int]) -> None:
    for x, y, n in zip(xs, ys, ns, strict=True):
        ax.annotate(
            f"n={n}", (x, y), textcoords="offset points", xytext=(5, -10), fontsize=7, color="0.35"
        )


def _draw_variable(ax: Any, plot: PlotData) -> None:
    xs = [x for s in plot.series for x in s.x]
    categories = list(dict.fromkeys(str(x) for x in xs))
    count = len(plot.series)
    for i, s in enumerate(plot.series):
        if plot.numeric:
            pos: list[Any] = list(s.x)
            style = {"marker": "o", "linestyle": "-"}
        else:  # dodge the series sideways so their points and bars do not hide each other
            shift = (i - (count - 1) / 2) * min(0.25, 0.8 / max(count, 1))
            pos = [categories.index(str(x)) + shift for x in s.x]
            style = {"marker": "o", "linestyle": "none"}
        ax.errorbar(
            pos, s.y, yerr=error_bars(s.y, s.ci_low, s.ci_high), capsize=3, label=s.label, **style
        )
        _annotate_n(ax, pos, s.y, s.n)
    if plot.numeric:
        ticks = sorted(set(xs))
        if ticks and ticks[0] > 0 and ticks[-1] / ticks[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(categories)), categories, rotation=20 if len(categories) > 3 else 0)
        ax.set_xlim(-0.5, len(categories) - 0.5)


def _draw_pareto(ax: Any, plot: PlotData) -> None:
    for s in plot.series:
        ax.errorbar(
            s.x,
            s.y,
            xerr=error_bars(s.x, s.x_ci_low, s.x_ci_high),
            yerr=error_bars(s.y, s.ci_low, s.ci_high),
            fmt="o",
            capsize=2,
            alpha=0.8,
            label=s.label,
        )
        _annotate_n(ax, s.x, s.y, s.n)
    front = plot.front
    if front and front.x:
        ax.plot(
            front.x,
            front.y,
            "-o",
            color="crimson",
            lw=2,
            ms=11,
            mfc="none",
            zorder=3,
            label=front.label,
        )
        several = len(plot.series) > 1
        for x, y, name in zip(front.x, front.y, front.configs, strict=True):
            ax.annotate(
                name if several else name.split(" / ")[-1],
                (x, y),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=7,
            )
    ax.set_xlim(left=0)


def draw(plot: PlotData) -> Any:
    """One plot as a matplotlib Figure on an Agg canvas (matplotlib imported here)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise JoulebenchError(
            "the report's plots need matplotlib: pip install "
            "'matplotlib>=3.5' into joulebench's environment"
        ) from exc

    fig = Figure(figsize=(8.5, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if plot.variable is None:
        _draw_pareto(ax, plot)
    else:
        _draw_variable(ax, plot)
    # From zero, with room above the highest bar so no point sits on the frame.
    tops = [
        hi if hi is not None else y
        for se in plot.series
        for y, hi in zip(se.y, se.ci_high, strict=True)
    ]
    ax.set_ylim(0, max(tops) * 1.1 if tops and max(tops) > 0 else None)
    ax.set_title(plot.title, fontsize=11)
    ax.set_xlabel(plot.x_label, fontsize=10)
    ax.set_ylabel(plot.y_label, fontsize=10)
    ax.grid(alpha=0.3)
    if plot.series:  # outside the axes: a legend inside hides points once series multiply
        ax.legend(
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            frameon=False,
        )
    return fig


def render(plot: PlotData, path: Path) -> Path:
    """Draw one plot to a PNG and an SVG beside it."""
    fig = draw(plot)
    legend = fig.axes[0].get_legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    svg = path.with_suffix(".svg")
    for target, kind in ((path, "png"), (svg, "svg")):
        fig.savefig(
            target,
            format=kind,
            bbox_inches="tight",
            bbox_extra_artists=[legend] if legend else None,
        )
    plot.path, plot.svg_path = path, svg
    return path
