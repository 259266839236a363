"""Build the energy meter named in an experiment config (``energy_meter:``)."""

from __future__ import annotations

from joulebench.errors import MeasureError
from joulebench.measure.base import EnergyMeter
from joulebench.measure.codecarbon_meter import CodecarbonMeter
from joulebench.measure.names import METER_NAMES, MeterName
from joulebench.measure.nvml_meter import NvmlMeter
from joulebench.measure.rapl_meter import RaplMeter


def available_meter_names() -> tuple[MeterName, ...]:
    """Values accepted by :func:`make_meter` (and by the ``energy_meter`` config key)."""
    return METER_NAMES


def make_meter(name: str, *, device: str) -> EnergyMeter:
    """Return a fresh, not yet started meter.

    ``"auto"`` picks NVML for CUDA runs, because codecarbon would only estimate the
    CPU side while the GPU draws most of the power, and codecarbon otherwise. It never
    picks RAPL: its counters are root-only on most systems, so it is opt-in.
    Nothing vendor-specific is imported here: meters import their libraries on start().
    """
    if name not in METER_NAMES:
        raise MeasureError(f"unknown energy meter {name!r}: use one of {', '.join(METER_NAMES)}")
    if name == "auto":
        # "cuda:1" style device strings still mean an NVIDIA GPU run.
        name = "nvml" if device.split(":", 1)[0].strip().lower() == "cuda" else "codecarbon"
    if name == "nvml":
        return NvmlMeter()
    if name == "rapl":
        return RaplMeter()
    return CodecarbonMeter()
