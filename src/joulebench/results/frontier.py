"""The latency-energy frontier of a serving suite (issue 16), pure.

One point per config: p95 end-to-end latency (x) against mean J/request (y), each with
its 95% CI across cycles; the front joins the configs no other beats on both (as fast
to answer and as frugal, better in one). Drawn like the Pareto plot.
"""

from __future__ import annotations

from collections.abc import Sequence

from joulebench.results.summary import ConfigSummary, PlotData, two_metric_series

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
    points = [
        (s.metrics[P95_LATENCY].mean or 0.0, s.metrics[REQUEST_ENERGY].mean or 0.0) for s in usable
    ]
    series, front = two_metric_series(usable, P95_LATENCY, REQUEST_ENERGY, lower_left_front(points))
    front.label = "latency-energy front"
    return PlotData(
        name=f"{suite}_latency_energy_frontier",
        title=f"{suite}: energy per request vs p95 latency",
        x_label=FRONTIER_LABELS[P95_LATENCY],
        y_label=FRONTIER_LABELS[REQUEST_ENERGY],
        series=series,
        numeric=True,
        front=front,
    )
