"""What local rank 0 of a node reads around an experiment besides its main meter: the
idle baseline, the extra meters in the same window, the GPUs' inventory and the start
temperature (with the cooling wait). Vendor and sensor modules are imported on use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from joulebench.config.models import ExperimentConfig


def idle_baseline_reading(
    cfg: ExperimentConfig, device: str, task: dict[str, Any]
) -> dict[str, Any] | None:
    """The node's idle power before the run (cached per host, meter and devices); None
    when turned off or the task names no cache folder."""
    from joulebench.measure.baseline import idle_baseline
    from joulebench.measure.factory import make_meter

    if cfg.idle_baseline_s <= 0 or not task.get("baseline_cache_dir"):
        return None
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "all") if device == "cuda" else "cpu"
    meter_name = make_meter(cfg.energy_meter, device=device).name
    return idle_baseline(
        lambda: make_meter(cfg.energy_meter, device=device),
        meter_name,
        devices,
        Path(task["baseline_cache_dir"]),
        cfg.idle_baseline_s,
        cfg.idle_baseline_max_age_s,
    )


def start_extra_meters(cfg: ExperimentConfig, device: str) -> dict[str, Any]:
    """Extra meters share the window; one that cannot start is reported, not fatal."""
    from joulebench.errors import MeasureError
    from joulebench.measure.factory import make_meter

    started: dict[str, Any] = {}
    for name in cfg.extra_meters:
        try:
            extra = make_meter(name, device=device)
            extra.start()
            started[name] = extra
        except MeasureError as exc:
            started[name] = str(exc)
    return started


def stop_extra_meters(extras: dict[str, Any]) -> dict[str, Any]:
    from joulebench.errors import MeasureError

    out: dict[str, Any] = {}
    for name, extra in extras.items():
        if isinstance(extra, str):
            out[name] = {"unavailable": extra}
            continue
        try:
            out[name] = extra.stop().to_dict()
        except MeasureError as exc:
            out[name] = {"unavailable": str(exc)}
    return out


def boot_id() -> str | None:
    """This machine's kernel boot ID: two "nodes" that share it are one machine (the
    2-node dev cluster's namespaces), whose host-level meters each read all of it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def gpu_inventory(device: str) -> dict[str, Any] | None:
    """Provenance of the node's GPUs, whichever meter runs; None off CUDA or without NVML."""
    if device != "cuda":
        return None
    from joulebench.errors import MeasureError
    from joulebench.measure.nvml_devices import visible_gpu_inventory

    try:
        return visible_gpu_inventory()
    except MeasureError as exc:
        return {"unavailable": str(exc)}


def cool_down_reading(cfg: ExperimentConfig, device: str) -> dict[str, Any]:
    """Start temperature always; the wait only when cooldown_temp_c is set."""
    from joulebench.measure.thermal import cool_down, cpu_temperatures_c, gpu_temperatures_c

    read = gpu_temperatures_c if device == "cuda" else cpu_temperatures_c
    return {
        "sensor": "nvml" if device == "cuda" else "thermal_zone",
        **cool_down(read, cfg.cooldown_temp_c, cfg.cooldown_max_wait_s),
    }
