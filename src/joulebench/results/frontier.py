"""The latency-energy frontier of a serving suite (issue 16), pure.

One point per config: p95 end-to-end latency (x) against mean J/request (y), each with
its 95% CI across cycles; the front joins the configs no other beats on both (as fast
to answer and as frugal, better in one). Drawn like the Pareto plot.
"""

from __future__ import annotations

from collections.abc import Sequence

from joulebench.results.summary import ConfigSummary, PlotData, Series

# Serving runs' metrics (summary.METRICS) and their axis words; plots.py uses them too.
REQUEST_ENERGY = "energy_per_request_j_mean"
P95_LATENCY = "request_latency_p95_s"
FRONTIER_LABELS = {
    REQUEST_ENERGY: "energy per request (J/request)",
    P95_LATENCY: "p95 end-to-end latency (s)",
}


def lower_left_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, energy) points no other point beats on both (at least as
    low in each, lower in one), by latency."""

    def dominated(i: int) -> bool:
        x, y = points[i]
        return any(a <= x and b <= y and (a, b) != (x, y) for a, b in points)

    return sorted((i for i in range(len(points)) if not dominated(i)), key=lambda i: points[i])


def latency_energy_frontier(summaries: Sequence[ConfigSummary], suite: str) -> PlotData | None:
    usable = [
        s
        for s in summaries
        if s.metrics[REQUEST_ENERGY].mean is not None and s.metrics[P95_LATENCY].mean is not None
    ]
    if not usable:
        return None
    by_model: dict[str, Series] = {}
    for s in usable:
        e, t = s.metrics[REQUEST_ENERGY], s.metrics[P95_LATENCY]
        series = by_model.setdefault(s.model, Series(s.model, s.model, [], [], [], [], []))
        series.x.append(t.mean)
        series.y.append(e.mean)  # type: ignore[arg-type]
        series.ci_low.append(e.ci_low)
        series.ci_high.append(e.ci_high)
        series.x_ci_low.append(t.ci_low)
        series.x_ci_high.append(t.ci_high)
        series.configs.append(s.config_name)
        series.n.append(min(e.n, t.n))
    points = [
        (s.metrics[P95_LATENCY].mean or 0.0, s.metrics[REQUEST_ENERGY].mean or 0.0) for s in usable
    ]
    chosen = [usable[i] for i in lower_left_front(points)]
    front = Series(
        "latency-energy front",
        "",
        [s.metrics[P95_LATENCY].mean for s in chosen],
        [s.metrics[REQUEST_ENERGY].mean or 0.0 for s in chosen],
        [s.metrics[REQUEST_ENERGY].ci_low for s in chosen],
        [s.metrics[REQUEST_ENERGY].ci_high for s in chosen],
        [s.label for s in chosen],
    )
    return PlotData(
        name=f"{suite}_latency_energy_frontier",
        title=f"{suite}: energy per request vs p95 latency",
        x_label=FRONTIER_LABELS[P95_LATENCY],
        y_label=FRONTIER_LABELS[REQUEST_ENERGY],
        series=list(by_model.values()),
        numeric=True,
        front=front,
    )
