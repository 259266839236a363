"""`report`'s power timelines: one PNG per experiment from its ``_9_power_timeline.csv``.

Power per device over the metered window (from the counter readings where a meter gives
energy only), the window's start and end as dashed lines and the idle baseline as a
dotted one. Drawn incrementally: a PNG newer than its CSV is kept, so rerunning
``report`` on a suite of thousands of experiments only draws the new ones.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from joulebench.fsutil import atomic_write_bytes
from joulebench.measure.timeline import read_timeline, timeline_path
from joulebench.results.layout import raw_dir


def power_series(rows: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """(source device) -> (t_s, power_w): the reading, else the energy counter's slope."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] == "sample":
            grouped.setdefault(f"{row['source']} {row['device']}", []).append(row)
    out: dict[str, tuple[list[float], list[float]]] = {}
    for name, samples in grouped.items():
        ts, ws = [], []
        for prev, row in zip([None, *samples], samples, strict=False):
            watts = row["power_w"]
            if (
                watts is None
                and prev is not None
                and row["energy_j"] is not None
                and prev["energy_j"] is not None
                and row["t_s"] > prev["t_s"]
            ):
                watts = (row["energy_j"] - prev["energy_j"]) / (row["t_s"] - prev["t_s"])
            if watts is not None:
                ts.append(row["t_s"])
                ws.append(watts)
        if ts:
            out[name] = (ts, ws)
    return out


def draw_timeline(rows: list[dict[str, Any]], title: str) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 3.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (ts, ws) in power_series(rows).items():
        ax.plot(ts, ws, label=name, linewidth=1.2)
    for row in rows:
        if row["kind"] in ("window_start", "window_end"):
            ax.axvline(row["t_s"], color="0.5", linestyle="--", linewidth=0.8)
        elif row["kind"] == "baseline" and row["power_w"] is not None:
            ax.axhline(
                row["power_w"],
                color="tab:red",
                linestyle=":",
                linewidth=1.0,
                label=f"idle baseline {row['device'] or ''} ({row['power_w']:.3g} W)",
            )
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("time from window start (s)", fontsize=10)
    ax.set_ylabel("power (W)", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def render_timelines(results_dir: Path, experiment_ids: Iterable[str], out_dir: Path) -> list[Path]:
    """Draw (or keep, when up to date) each experiment's timeline PNG; runs without a
    timeline file (older than the timeline) are skipped."""
    drawn = []
    for eid in dict.fromkeys(experiment_ids):
        source = timeline_path(raw_dir(results_dir, eid), eid)
        if not source.is_file():
            continue
        target = out_dir / f"{eid}_power_timeline.png"
        if not target.is_file() or target.stat().st_mtime_ns < source.stat().st_mtime_ns:
            out_dir.mkdir(parents=True, exist_ok=True)
            fig = draw_timeline(read_timeline(source), f"experiment {eid}: power timeline")
            # Whole or not at all: a PNG cut short by an interrupted report would be newer
            # than its CSV and so never be redrawn.
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", bbox_inches="tight")
            atomic_write_bytes(target, buffer.getvalue())
        drawn.append(target)
    return drawn
