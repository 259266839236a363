"""GPU energy from NVML: the hardware energy counter where the GPU has one (Volta+),
else power polling on a background thread integrated with the trapezoid rule.

GPU discovery and NVML error translation live in nvml_devices; pynvml is imported
only inside functions there, so importing joulebench never touches it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from joulebench.errors import MeasureError
from joulebench.measure.base import EnergyMeasurement
from joulebench.measure.nvml_devices import (
    SLOWDOWN_REASONS,
    Gpu,
    as_str,
    import_pynvml,
    not_supported,
    nvml_errors,
    optional_call,
    resolve_gpus,
    throttle_reasons,
)
from joulebench.measure.timeline import Reading


class _PowerPoller:
    """Samples power (W) of several devices on a thread and integrates to joules.

    Samples are also taken synchronously in start() and stop(), so the integral
    covers the whole window however short it is.
    """

    def __init__(self, read_w: Callable[[Any], float], handles: dict[str, Any], interval_s: float):
        self._read_w = read_w
        self._handles = handles
        self._interval_s = interval_s
        self._samples: dict[str, list[tuple[float, float]]] = {label: [] for label in handles}
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _sample(self) -> None:
        for label, handle in self._handles.items():
            watts = self._read_w(handle)
            self._samples[label].append((time.perf_counter(), watts))

    def _loop(self) -> None:
        while not self._stop_event.wait(self._interval_s):
            try:
                self._sample()
            except Exception as err:
                self.error = err
                return

    def start(self) -> None:
        self._sample()
        self._thread = threading.Thread(
            target=self._loop, name="joulebench-nvml-poller", daemon=True
        )
        self._thread.start()

    def halt(self) -> None:
        """Stop the thread; idempotent, so cleanup paths may call it again."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stop(self) -> dict[str, float]:
        self.halt()
        if self.error is not None:
            raise self.error
        self._sample()
        return {label: trapezoid_j(samples) for label, samples in self._samples.items()}

    def sample_counts(self) -> dict[str, int]:
        return {label: len(samples) for label, samples in self._samples.items()}


def trapezoid_j(samples: list[tuple[float, float]]) -> float:
    """Integrate (time_s, power_w) samples to joules with the trapezoid rule."""
    return sum((t1 - t0) * (w0 + w1) / 2.0 for (t0, w0), (t1, w1) in itertools.pairwise(samples))


@dataclass
class _Window:
    """State of one open start()/stop() window."""

    nvml: ModuleType
    gpus: list[Gpu]
    t0: float = 0.0
    poller: _PowerPoller | None = None
    driver_version: str | None = None
    closed: bool = False


class NvmlMeter:
    """Energy of the GPUs this process was given (CUDA_VISIBLE_DEVICES), via NVML.

    ``device_indices`` picks among the visible GPUs, counted as CUDA counts them
    (index 0 is the first entry of CUDA_VISIBLE_DEVICES); None means all of them.
    """

    name = "nvml"

    def __init__(
        self, device_indices: list[int] | None = None, poll_interval_s: float = 0.1
    ) -> None:
        if not poll_interval_s > 0:
            raise MeasureError(
                f"NvmlMeter poll_interval_s={poll_interval_s!r} is invalid: "
                "use a positive number of seconds such as 0.1"
            )
        self.device_indices = None if device_indices is None else list(device_indices)
        self.poll_interval_s = float(poll_interval_s)
        self._window: _Window | None = None

    def start(self) -> None:
        if self._window is not None:
            raise MeasureError(
                "NvmlMeter.start() called twice: call stop() before starting a new window"
            )
        nvml = import_pynvml()
        with nvml_errors(nvml, "initialising NVML"):
            nvml.nvmlInit()
        window = _Window(nvml=nvml, gpus=[])
        try:
            with nvml_errors(nvml, "finding this process's GPUs"):
                window.gpus = resolve_gpus(nvml, self.device_indices)
                version = optional_call(nvml, "nvmlSystemGetDriverVersion")
                window.driver_version = None if version is None else as_str(version)
            self._open(window)
        except BaseException:
            _close(window)
            raise
        self._window = window

    def _open(self, window: _Window) -> None:
        nvml = window.nvml
        for gpu in window.gpus:
            with nvml_errors(nvml, f"reading the energy counter of {gpu.label}"):
                try:
                    gpu.start_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
                except not_supported(nvml):
                    gpu.method = "polling"  # pre-Volta GPUs have no energy counter
        # Every GPU is polled: for GPUs without a counter the samples are the figure,
        # for the others they are an independent cross-check of the counter.
        polled = {g.label: g.handle for g in window.gpus}
        window.t0 = time.perf_counter()
        if polled:
            window.poller = _PowerPoller(
                lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
                polled,
                self.poll_interval_s,
            )
            with nvml_errors(nvml, "reading GPU power"):
                window.poller.start()

    def probe(self) -> list[Reading]:
        """Per GPU: power now, counter energy since start(), core temperature and SM
        clock (the last two show throttling); a value NVML refuses is left empty."""
        window = self._window
        if window is None or window.closed:
            return []
        nvml, out = window.nvml, []
        for gpu in window.gpus:
            milliwatts = optional_call(nvml, "nvmlDeviceGetPowerUsage", gpu.handle)
            total_mj = (
                optional_call(nvml, "nvmlDeviceGetTotalEnergyConsumption", gpu.handle)
                if gpu.method == "counter"
                else None
            )
            temp = optional_call(
                nvml,
                "nvmlDeviceGetTemperature",
                gpu.handle,
                getattr(nvml, "NVML_TEMPERATURE_GPU", 0),
            )
            clock = optional_call(
                nvml, "nvmlDeviceGetClockInfo", gpu.handle, getattr(nvml, "NVML_CLOCK_SM", 1)
            )
            out.append(
                Reading(
                    "nvml",
                    gpu.label,
                    power_w=None if milliwatts is None else milliwatts / 1000.0,
                    energy_j=None
                    if total_mj is None
                    else _delta_mj(gpu.start_mj, total_mj) / 1000.0,
                    temp_c=None if temp is None else float(temp),
                    clock_mhz=None if clock is None else float(clock),
                )
            )
        return out

    def stop(self) -> EnergyMeasurement:
        window, self._window = self._window, None
        if window is None:
            raise MeasureError("NvmlMeter.stop() called without start(): call start() first")
        try:
            return self._measure(window)
        finally:
            _close(window)

    def _measure(self, window: _Window) -> EnergyMeasurement:
        nvml = window.nvml
        energy: dict[str, float] = {}
        with nvml_errors(nvml, "reading GPU energy at the end of the window"):
            for gpu in window.gpus:
                if gpu.method == "counter":
                    end_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
                    energy[gpu.label] = _counter_j(gpu.label, _delta_mj(gpu.start_mj, end_mj))
            duration_s = time.perf_counter() - window.t0
            polled = window.poller.stop() if window.poller is not None else {}
            throttle = {g.label: throttle_reasons(nvml, g.handle) for g in window.gpus}
        for gpu in window.gpus:
            if gpu.method == "polling":
                energy[gpu.label] = polled[gpu.label]
        # Keep device order stable (as resolved), whichever path produced the value.
        energy = {g.label: energy[g.label] for g in window.gpus}
        details = self._details(window)
        for label, joules in polled.items():
            details["devices"][label]["polling_energy_j"] = joules
            details["devices"][label]["throttle_reasons"] = throttle[label]
        if polled:
            details["polling_energy_j"] = sum(polled.values())
        details["throttled"] = any(r & SLOWDOWN_REASONS for r in throttle.values() if r)
        return EnergyMeasurement(
            meter=self.name,
            method=_overall_method(window.gpus),
            duration_s=duration_s,
            energy_j_by_device=energy,
            is_estimate=False,
            details=details,
        )

    def _details(self, window: _Window) -> dict[str, Any]:
        samples = window.poller.sample_counts() if window.poller is not None else {}
        devices = {}
        for gpu in window.gpus:
            devices[gpu.label] = {**gpu.info, "method": gpu.method}
            if gpu.label in samples:
                devices[gpu.label]["power_samples"] = samples[gpu.label]
        return {
            "driver_version": window.driver_version,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "poll_interval_s": self.poll_interval_s,
            "devices": devices,
        }


COUNTER_MODULUS = 2**64  # NVML's total-energy counter is an unsigned 64-bit mJ count


def _delta_mj(start_mj: int, end_mj: int) -> int:
    """End minus start; a fall from the top half of the range is a wrap, not a reset."""
    delta = end_mj - start_mj
    if delta < 0 and start_mj >= COUNTER_MODULUS // 2:
        delta += COUNTER_MODULUS
    return delta


def _counter_j(label: str, delta_mj: int) -> float:
    if delta_mj < 0:
        raise MeasureError(
            f"the energy counter of {label} went backwards (GPU reset or driver reload "
            "during the window): rerun the measurement"
        )
    return delta_mj / 1000.0


def _overall_method(gpus: list[Gpu]) -> str:
    methods = {gpu.method for gpu in gpus}
    if methods == {"counter", "polling"}:
        return "counter+polling"
    return methods.pop() if methods else "counter"


def _close(window: _Window) -> None:
    """Release the poller thread and NVML; never raises, as it runs in finally blocks."""
    if window.closed:
        return
    window.closed = True
    if window.poller is not None:
        window.poller.halt()
    with contextlib.suppress(Exception):
        window.nvml.nvmlShutdown()
