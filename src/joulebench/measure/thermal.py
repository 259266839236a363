"""Temperatures before a run, and the optional cooling gap between experiments.

Back-to-back experiments start on a hot GPU, which draws more power (leakage) and may
clock down; waiting until it cools below a threshold makes cycles comparable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TempReader = Callable[[], dict[str, float]]


def cpu_temperatures_c(root: Path = Path("/sys/class/thermal")) -> dict[str, float]:
    """Thermal zones the kernel exposes (often none in VMs): zone type -> degrees C."""
    temps: dict[str, float] = {}
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip()
            temps[f"{kind}:{zone.name}"] = int((zone / "temp").read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return temps


def gpu_temperatures_c() -> dict[str, float]:
    """The visible GPUs' core temperatures through NVML; empty if NVML is unavailable."""
    from joulebench.errors import MeasureError
    from joulebench.measure.nvml_devices import visible_gpu_temperatures

    try:
        return visible_gpu_temperatures()
    except MeasureError:
        return {}


def cool_down(
    read: TempReader,
    threshold_c: float | None,
    max_wait_s: float,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until every sensor reads below the threshold (or the wait runs out)."""
    start_temps = read()
    out: dict[str, Any] = {
        "start_temperature_c": start_temps,
        "threshold_c": threshold_c,
        "waited_s": 0.0,
        "reached": None,
    }
    if threshold_c is None or not start_temps:
        return out
    begin, temps = clock(), start_temps
    while max(temps.values()) >= threshold_c and clock() - begin < max_wait_s:
        sleep(poll_s)
        temps = read() or temps
    out.update(
        waited_s=clock() - begin, reached=max(temps.values()) < threshold_c, end_temperature_c=temps
    )
    return out
