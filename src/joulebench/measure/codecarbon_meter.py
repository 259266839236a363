"""Energy meter backed by codecarbon, for machines without NVIDIA GPUs (laptops, CPU nodes).

codecarbon reads RAPL / NVML when it can and otherwise *estimates* CPU power from
load and a TDP table and RAM power from its size. The meter reports which of those
happened per component, so a CPU-load estimate is never mistaken for a sensor reading.

codecarbon is imported only inside :meth:`CodecarbonMeter.start` because importing it
pulls in pandas and friends; ``import joulebench.measure`` must stay cheap.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from joulebench.errors import MeasureError
from joulebench.measure.base import EnergyMeasurement
from joulebench.measure.timeline import Reading

J_PER_KWH = 3.6e6

# codecarbon CPU modes that read a hardware energy/power sensor; anything else
# ("cpu_load", "constant") is a model-based estimate.
_CPU_SENSOR_MODES = frozenset({"intel_rapl", "windows_emi", "intel_power_gadget"})
_ESTIMATE_SOURCES = frozenset({"cpu_load", "constant", "ram_model"})

_QUIET_HINT = "set CODECARBON_LOG_LEVEL=warning to see codecarbon's own reason"


class CodecarbonMeter:
    """Measures a window with codecarbon's OfflineEmissionsTracker (never uses the network)."""

    name = "codecarbon"

    def __init__(
        self,
        country_iso_code: str = "USA",
        measure_power_secs: float = 1.0,
        output_dir: str | Path | None = None,
    ) -> None:
        if not measure_power_secs > 0:
            raise MeasureError(
                f"codecarbon measure_power_secs={measure_power_secs!r} is invalid: "
                "use a positive number of seconds such as 1.0"
            )
        # codecarbon raises a bare OSError deep inside start() for this; catch it early.
        if output_dir is not None and not Path(output_dir).is_dir():
            raise MeasureError(
                f"codecarbon output_dir {str(output_dir)!r} does not exist: "
                "create it or leave output_dir unset"
            )
        self.country_iso_code = country_iso_code
        self.measure_power_secs = float(measure_power_secs)
        # Only used by codecarbon's Power Gadget / powermetrics backends for log files;
        # the temp dir keeps those out of the user's working directory.
        self.output_dir = str(output_dir) if output_dir is not None else tempfile.gettempdir()
        self._tracker: Any = None

    def start(self) -> None:
        if self._tracker is not None:
            raise MeasureError(
                "CodecarbonMeter.start() called twice: call stop() before starting a new window"
            )
        tracker = _new_tracker(self.country_iso_code, self.measure_power_secs, self.output_dir)
        tracker.start()
        # codecarbon's start() swallows every exception (@suppress); an unset start
        # time is the only sign it failed, and we want to fail before the workload runs.
        if getattr(tracker, "_start_time", None) is None:
            raise MeasureError(f"codecarbon failed to start tracking: {_QUIET_HINT}")
        self._tracker = tracker

    def probe(self) -> list[Reading]:
        """codecarbon's running sums, per component (its own fields: it has no public
        mid-run reading; they move every ``measure_power_secs``)."""
        tracker = self._tracker
        if tracker is None:
            return []
        out = []
        for device in ("cpu", "ram", "gpu"):
            energy = getattr(tracker, f"_total_{device}_energy", None)
            power = getattr(tracker, f"_{device}_power", None)
            watts = getattr(power, "W", None)
            if energy is None or (device == "gpu" and not energy.kWh and not watts):
                continue  # no GPU seen: the results have no "gpu" device either
            out.append(
                Reading("codecarbon", device, power_w=watts, energy_j=float(energy.kWh) * J_PER_KWH)
            )
        return out

    def stop(self) -> EnergyMeasurement:
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            raise MeasureError("CodecarbonMeter.stop() called without start(): call start() first")
        tracker.stop()
        data = getattr(tracker, "final_emissions_data", None)
        if data is None:
            raise MeasureError(f"codecarbon failed to report energy on stop: {_QUIET_HINT}")
        return _to_measurement(data, component_sources(tracker), self.measure_power_secs)


def _quiet_codecarbon() -> str:
    """Silence codecarbon unless the user asked for its logs via CODECARBON_LOG_LEVEL.

    The level must be set on the logger *before* the tracker is built: the tracker
    logs a warning during construction, before it applies its own log_level.
    """
    level = os.environ.get("CODECARBON_LOG_LEVEL", "error").upper()
    if not isinstance(logging.getLevelName(level), int):
        level = "ERROR"
    logging.getLogger("codecarbon").setLevel(level)
    return level.lower()


def slurm_cpus() -> int | None:
    """The CPUs Slurm gave this job on this node, from the environment it exports."""
    for name in ("SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def _spare_the_slurm_controller() -> None:
    """Answer codecarbon's CPU count from the job's environment.

    Inside a Slurm job codecarbon runs ``scontrol show job`` (no timeout) every time
    it counts CPUs, dozens of times per experiment: thousands of array tasks then load
    slurmctld, and while slurmctld is down each call hangs on retries (a 14 s
    experiment took ~120 s in the dev-cluster fault test). Slurm already exports the
    count, so use that.
    """
    import codecarbon.core.util as util

    cpus = slurm_cpus()
    if util.SLURM_JOB_ID is None or cpus is None:
        return
    import importlib

    for name in (
        "codecarbon.core.util",
        "codecarbon.emissions_tracker",
        "codecarbon.core.cpu",
        "codecarbon.external.hardware",
    ):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "count_cpus"):
            module.count_cpus = lambda cpus=cpus: cpus
    try:
        from codecarbon.external.ram import RAM
    except ImportError:
        return
    # RAM asks scontrol once for the job's memory; SLURM_MEM_PER_NODE says it (in MB).
    mem_mb = os.environ.get("SLURM_MEM_PER_NODE", "")
    allocated = f"AllocTRES=cpu={cpus},mem={mem_mb}M" if mem_mb.isdigit() else None
    RAM._read_slurm_scontrol = lambda self: allocated  # None: the machine's total RAM


def _new_tracker(country_iso_code: str, measure_power_secs: float, output_dir: str) -> Any:
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError as err:
        raise MeasureError(
            "codecarbon is not installed: pip install codecarbon, "
            "or use energy_meter: nvml on machines with NVIDIA GPUs"
        ) from err
    level = _quiet_codecarbon()
    _spare_the_slurm_controller()
    return OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        measure_power_secs=measure_power_secs,
        output_dir=output_dir,
        output_methods=[],  # results go to joulebench's files, not emissions.csv
        emissions_endpoint=None,  # a user config could otherwise add an HTTP output
        log_level=level,
        tracking_mode="machine",
        # The single-run lock file also installs SIGINT/SIGTERM handlers that raise
        # SystemExit; the runner owns signal handling, so skip it.
        allow_multiple_runs=True,
    )


def component_sources(tracker: Any) -> dict[str, str]:
    """Map component ("cpu", "gpu", "ram") to how codecarbon obtained its power.

    Classified by class name, as codecarbon itself does, so a reloaded codecarbon
    module does not break isinstance checks.
    """
    sources: dict[str, str] = {}
    for hw in getattr(tracker, "_hardware", []):
        kind = type(hw).__name__
        if kind == "CPU":
            sources["cpu"] = str(getattr(hw, "_mode", "unknown"))
        elif kind == "GPU":
            sources["gpu"] = "gpu_driver"
        elif kind == "RAM":
            sources["ram"] = "ram_model"
        elif kind in ("AppleSiliconChip", "Raspberry"):
            part = str(getattr(hw, "chip_part", "cpu")).lower()
            sources[part] = "powermetrics" if kind == "AppleSiliconChip" else "raspberry_pmic"
    return sources


def _is_sensor(source: str) -> bool:
    return source not in _ESTIMATE_SOURCES and source != "unknown"


def _to_measurement(
    data: Any, sources: dict[str, str], measure_power_secs: float
) -> EnergyMeasurement:
    energy = {
        "cpu": float(data.cpu_energy) * J_PER_KWH,
        "ram": float(data.ram_energy) * J_PER_KWH,
    }
    # Only report a GPU entry when codecarbon tracked one; a 0 J "gpu" on a CPU
    # machine would read as "the GPU was idle".
    if "gpu" in sources or (data.gpu_count or 0) > 0:
        energy["gpu"] = float(data.gpu_energy) * J_PER_KWH
    sensed = [comp for comp, src in sources.items() if _is_sensor(src)]
    is_estimate = not sensed
    return EnergyMeasurement(
        meter="codecarbon",
        # codecarbon's RAPL/NVML paths read cumulative energy counters.
        method="estimate" if is_estimate else "counter",
        duration_s=float(data.duration),
        energy_j_by_device=energy,
        is_estimate=is_estimate,
        emissions_kg=float(data.emissions),
        details=_details(data, sources, measure_power_secs),
    )


def _details(data: Any, sources: dict[str, str], measure_power_secs: float) -> dict[str, Any]:
    return {
        "codecarbon_version": data.codecarbon_version,
        "tracking_mode": data.tracking_mode,
        "component_sources": dict(sources),
        "estimated_components": sorted(c for c, s in sources.items() if not _is_sensor(s)),
        "cpu_model": data.cpu_model,
        "cpu_count": data.cpu_count,
        "gpu_model": data.gpu_model,
        "gpu_count": data.gpu_count,
        "ram_total_size_gb": data.ram_total_size,
        "cpu_power_w": float(data.cpu_power),
        "gpu_power_w": float(data.gpu_power),
        "ram_power_w": float(data.ram_power),
        "country_iso_code": data.country_iso_code,
        "pue": data.pue,
        "measure_power_secs": measure_power_secs,
    }
