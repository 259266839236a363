"""The power timeline of one metered window: what the meter saw, sample by sample.

A meter that can be read mid-window offers ``probe()``: one reading per device (power,
cumulative energy since start, temperature and clock where the sensor gives them). The
recorder polls it on its own thread while the window runs; the CSV it writes beside the
result files (``{id}_9_power_timeline.csv``) lets a reader see throttling, a warm-up
spike or a meter that stalled, which one joule total hides.

Rows, all with the same columns (``COLUMNS``); ``t_s`` is seconds from the window start:
- ``sample``: one reading of one device;
- ``window_start`` / ``window_end``: the timed window (``t_s`` 0 and its length);
- ``total``: the meter's final figure per device at ``window_end`` (what the results use:
  codecarbon updates its sums only every ``measure_power_secs``, so the last samples may
  lag it);
- ``baseline``: the idle power (``power_w``), when one was measured: one row per device
  when the baseline has per-device figures (so each line has its own), else one row for
  the whole node with device ``node total``.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joulebench.fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

COLUMNS = ("t_s", "kind", "source", "device", "power_w", "energy_j", "temp_c", "clock_mhz")
TIMELINE_SUFFIX = "9_power_timeline.csv"
NODE_TOTAL = "node total"  # the baseline row's device when it has no per-device figures
# Long windows would otherwise grow the file without bound; past this many readings the
# recorder keeps every other sampling instant (all devices' readings of it) and doubles its
# interval (a 10-hour window stays ~1 MB).
MAX_SAMPLES = 20_000


@dataclass(frozen=True)
class Reading:
    """One device's state at one instant, as a meter's ``probe()`` returns it."""

    source: str  # the meter: nvml, rapl, codecarbon
    device: str  # the meter's device label (gpu:GPU-<uuid>, package-0, cpu, ram)
    power_w: float | None = None
    energy_j: float | None = None  # cumulative since the meter started
    temp_c: float | None = None
    clock_mhz: float | None = None


Probe = Callable[[], list[Reading]]


def timeline_path(folder: Path, experiment_id: str) -> Path:
    return folder / f"{experiment_id}_{TIMELINE_SUFFIX}"


class TimelineRecorder:
    """Polls a probe every ``interval_s`` on a daemon thread between start() and stop().

    A probe that raises ends the recording (logged), never the measurement: the
    timeline is a view of the window, the meter's own figure is the result.
    """

    def __init__(
        self, probe: Probe, interval_s: float = 0.25, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._probe = probe
        self.interval_s = interval_s
        self._clock = clock
        # One entry per sampling instant, so thinning drops whole instants: thinning single
        # readings would drop one device's history and keep another's.
        self._instants: list[tuple[float, list[Reading]]] = []
        self._readings = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="joulebench-timeline", daemon=True)
        self._thread.start()

    def _sample(self) -> bool:
        try:
            readings = self._probe()
        except Exception as exc:  # a sensor hiccup must not fail the experiment
            log.warning("power timeline: probe failed, recording stops (%s)", exc)
            return False
        now = self._clock()
        with self._lock:
            self._instants.append((now, list(readings)))
            self._readings += len(readings)
            if self._readings > MAX_SAMPLES:
                self._instants = self._instants[::2]
                self._readings = sum(len(rs) for _, rs in self._instants)
                self.interval_s *= 2
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self._sample():
                return

    def stop(self) -> list[tuple[float, Reading]]:
        """One last reading, then every (perf_counter time, reading) in order."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()
        with self._lock:
            return [(t, r) for t, readings in self._instants for r in readings]


def timeline_rows(
    samples: list[tuple[float, Reading]],
    window_start: float,
    window_s: float,
    measurement: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The CSV's rows: samples with times relative to the window start, then markers."""
    rows: list[dict[str, Any]] = [
        {
            "t_s": round(t - window_start, 4),
            "kind": "sample",
            "source": r.source,
            "device": r.device,
            "power_w": r.power_w,
            "energy_j": r.energy_j,
            "temp_c": r.temp_c,
            "clock_mhz": r.clock_mhz,
        }
        for t, r in samples
    ]
    rows.append({"t_s": 0.0, "kind": "window_start"})
    rows.append({"t_s": round(window_s, 4), "kind": "window_end"})
    if measurement:
        for device, energy_j in measurement.get("energy_j_by_device", {}).items():
            rows.append(
                {
                    "t_s": round(window_s, 4),
                    "kind": "total",
                    "source": measurement.get("meter"),
                    "device": device,
                    "energy_j": energy_j,
                }
            )
    return rows + baseline_rows(baseline)


def baseline_rows(baseline: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per device where the baseline has per-device figures: the samples are per device,
    and a node total drawn beside one GPU's line would read as that GPU idling far higher."""
    if not baseline or baseline.get("power_w") is None:
        return []
    by_device = baseline.get("power_w_by_device") or {NODE_TOTAL: baseline["power_w"]}
    return [
        {
            "t_s": 0.0,
            "kind": "baseline",
            "source": baseline.get("meter"),
            "device": device,
            "power_w": power_w,
        }
        for device, power_w in by_device.items()
    ]


def write_timeline(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically, so a reader (the dashboard) never sees half a file."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        # repr: the shortest text that reads back as the same float; a fixed number of
        # digits would blur t_s past ~1e4 s and cumulative energy past ~1 MJ.
        return repr(value)
    return "" if value is None else value


def read_timeline(path: Path) -> list[dict[str, Any]]:
    """The rows back, numbers as floats and empty cells as None."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        parsed: dict[str, Any] = {}
        for key in COLUMNS:
            value = row.get(key) or None
            if value is not None and key not in ("kind", "source", "device"):
                try:
                    parsed[key] = float(value)
                except ValueError:
                    parsed[key] = None
            else:
                parsed[key] = value
        out.append(parsed)
    return out
