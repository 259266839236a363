"""`report`'s power timeline PNGs: drawn from the CSV the runs write, redrawn only when
the CSV is newer."""

from __future__ import annotations

import os
from pathlib import Path

from joulebench.measure.timeline import Reading, timeline_path, timeline_rows, write_timeline
from joulebench.results.layout import raw_dir
from joulebench.results.timeline_plot import power_series, render_timelines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_example(results: Path, eid: str) -> Path:
    samples = [(10.0 + t, Reading("rapl", "cpu:package-0", energy_j=5.0 * t)) for t in range(4)]
    samples += [
        (10.0 + t, Reading("nvml", "gpu:0", power_w=100.0 + t, temp_c=60.0)) for t in range(4)
    ]
    path = timeline_path(raw_dir(results, eid), eid)
    write_timeline(path, timeline_rows(samples, 10.0, 3.0, None, {"power_w": 40.0}))
    return path


def test_power_comes_from_the_reading_or_the_counters_slope(tmp_path: Path) -> None:
    from joulebench.measure.timeline import read_timeline

    series = power_series(read_timeline(write_example(tmp_path, "0001")))
    assert series["rapl cpu:package-0"] == ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert series["nvml gpu:0"] == ([0.0, 1.0, 2.0, 3.0], [100.0, 101.0, 102.0, 103.0])


def test_render_draws_each_timeline_once_and_skips_runs_without_one(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "plots"
    source = write_example(results, "0001")
    (drawn,) = render_timelines(results, ["0001", "0002", "0001"], out)
    assert drawn == out / "0001_power_timeline.png"
    assert drawn.read_bytes().startswith(PNG_MAGIC)
    stamp = drawn.stat().st_mtime_ns
    render_timelines(results, ["0001"], out)
    assert drawn.stat().st_mtime_ns == stamp  # up to date: not drawn again
    os.utime(source, ns=(stamp + 10**9, stamp + 10**9))
    render_timelines(results, ["0001"], out)
    assert drawn.stat().st_mtime_ns > stamp  # the CSV changed: drawn again
