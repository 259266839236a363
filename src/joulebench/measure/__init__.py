"""Energy meters: one start()/stop() window in, one EnergyMeasurement out.

Importing this package is cheap: codecarbon and pynvml are imported only when a
meter starts, so machines without them can still import joulebench.
"""

from joulebench.measure.base import METHODS, EnergyMeasurement, EnergyMeter
from joulebench.measure.codecarbon_meter import CodecarbonMeter
from joulebench.measure.factory import available_meter_names, make_meter
from joulebench.measure.nvml_devices import parse_cuda_visible_devices
from joulebench.measure.nvml_meter import NvmlMeter
from joulebench.measure.rapl_meter import RaplMeter

__all__ = [
    "METHODS",
    "CodecarbonMeter",
    "EnergyMeasurement",
    "EnergyMeter",
    "NvmlMeter",
    "RaplMeter",
    "available_meter_names",
    "make_meter",
    "parse_cuda_visible_devices",
]
