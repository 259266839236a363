"""Idle baseline power per node: measured for a few seconds, or reused from a cache.

Dynamic energy = total - baseline power x window duration: what the workload itself
cost, without what the node burns standing still. The cache is keyed by host, meter
and device set, since another GPU set idles at another power.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joulebench.fsutil import atomic_write_json
from joulebench.measure.base import EnergyMeter


def cache_path(cache_dir: Path, meter: str, devices: str) -> Path:
    digest = hashlib.sha256(devices.encode()).hexdigest()[:10]
    return cache_dir / f"{socket.gethostname()}-{meter}-{digest}.json"


def read_cached(path: Path, max_age_s: float, now: float | None = None) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        age = (now or time.time()) - float(data["measured_at"])
        power = float(data["power_w"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: measure again
    if age < 0 or age > max_age_s:
        return None
    return {**data, "source": "cache", "age_s": age, "power_w": power}


def measure(
    meter: EnergyMeter, duration_s: float, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    meter.start()
    sleep(duration_s)
    reading = meter.stop()
    seconds = reading.duration_s or duration_s
    return {
        "measured_at": time.time(),
        "duration_s": seconds,
        "meter": reading.meter,
        "method": reading.method,
        "is_estimate": reading.is_estimate,
        "power_w": reading.energy_j / seconds,
        "power_w_by_device": {k: v / seconds for k, v in reading.energy_j_by_device.items()},
    }


def idle_baseline(
    make_meter: Callable[[], EnergyMeter],
    meter_name: str,
    devices: str,
    cache_dir: Path,
    duration_s: float,
    max_age_s: float,
) -> dict[str, Any]:
    """The node's idle power (W), from a young enough cache entry or a fresh reading."""
    path = cache_path(cache_dir, meter_name, devices)
    cached = read_cached(path, max_age_s)
    if cached is not None:
        return cached
    fresh = {**measure(make_meter(), duration_s), "devices": devices}
    atomic_write_json(path, fresh)
    return {**fresh, "source": "measured", "age_s": 0.0}


def dynamic_energy_j(
    total_j: float | None, baseline_power_w: float | None, window_s: float
) -> float | None:
    if total_j is None or baseline_power_w is None:
        return None
    return total_j - baseline_power_w * window_s
