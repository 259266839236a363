"""The latency-energy frontier of a serving suite (issue 16), pure.

One point per config: p95 end-to-end latency (x) against mean J/request (y), each with
its 95% CI across cycles; the front joins the configs no other beats on both (as fast
to answer and as frugal, better in one). Drawn like the Pareto plot.
"""

from __future__ import annotations

from collections.abc import Sequence

from joulebench.results.plots import LABELS, P95_LATENCY, REQUEST_ENERGY, pareto_front
from joulebench.results.summary import ConfigSummary, PlotData, Series


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
    # pareto_front keeps the highest x: negate latency, where lower is better.
    points = [
        (-(s.metrics[P95_LATENCY].mean or 0.0), s.metrics[REQUEST_ENERGY].mean or 0.0)
        for s in usable
    ]
    chosen = sorted(
        (usable[i] for i in pareto_front(points)), key=lambda s: s.metrics[P95_LATENCY].mean or 0.0
    )
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
        x_label=LABELS[P95_LATENCY],
        y_label=LABELS[REQUEST_ENERGY],
        series=list(by_model.values()),
        numeric=True,
        front=front,
    )
