"""GPU energy from NVML: the hardware energy counter where the GPU has one (Volta+),
else power polling on a background thread integrated with the trapezoid rule.

pynvml is imported only inside functions of this module so that importing
joulebench on a laptop without NVIDIA drivers never touches it. Every NVML error is
turned into a MeasureError here, with the fix in the message.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from joulebench.errors import MeasureError
from joulebench.measure.base import EnergyMeasurement

_NO_NVML = (
    "NVML not available (no NVIDIA driver found): "
    "use energy_meter: codecarbon on machines without NVIDIA GPUs"
)
# Keyed by pynvml exception class name so a stand-in pynvml module (tests) only
# has to define the classes it raises.
_FIXES: dict[str, str] = {
    "NVMLError_LibraryNotFound": _NO_NVML,
    "NVMLError_DriverNotLoaded": _NO_NVML,
    "NVMLError_NoPermission": (
        "NVML refused access to the GPU: run where /dev/nvidia* is accessible "
        "(e.g. inside the Slurm GPU allocation), or use energy_meter: codecarbon"
    ),
    "NVMLError_LibRmVersionMismatch": (
        "the NVIDIA driver library and kernel module versions differ: "
        "reboot or reload the nvidia kernel module, then rerun"
    ),
    "NVMLError_GpuIsLost": (
        "the GPU fell off the bus: check `nvidia-smi` and ask the admins to reset the node"
    ),
}


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as err:
        raise MeasureError(
            "pynvml is not installed: pip install nvidia-ml-py, "
            "or use energy_meter: codecarbon on machines without NVIDIA GPUs"
        ) from err
    return pynvml


@contextlib.contextmanager
def _nvml_errors(nvml: ModuleType, action: str) -> Iterator[None]:
    """Translate any NVMLError raised while doing ``action`` into a MeasureError."""
    try:
        yield
    except nvml.NVMLError as err:
        raise _translate(err, action) from err


def _translate(err: BaseException, action: str) -> MeasureError:
    fix = _FIXES.get(type(err).__name__)
    if fix is not None:
        return MeasureError(f"{fix} (NVML: {err} while {action})")
    return MeasureError(
        f"NVML error while {action}: {err}: check that `nvidia-smi` works, "
        "or use energy_meter: codecarbon"
    )


def _not_supported(nvml: ModuleType) -> type[BaseException] | tuple[()]:
    # An empty tuple in an except clause matches nothing: safe if the class is absent.
    return getattr(nvml, "NVMLError_NotSupported", ())


def _as_str(value: Any) -> str:
    # Older pynvml releases return bytes for names and UUIDs.
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_cuda_visible_devices(value: str) -> list[str]:
    """Entries of CUDA_VISIBLE_DEVICES in order: indices as "0", UUIDs as given.

    Follows CUDA: a negative index ends the list (``-1`` hides every GPU). Unlike
    CUDA, which silently truncates at a malformed entry, raise, because measuring a
    different set of GPUs than the workload uses would give wrong energy.
    """
    entries: list[str] = []
    for raw in value.split(","):
        token = raw.strip()
        if not token:
            continue
        if token.lstrip("-").isdigit():
            if int(token) < 0:
                break
            entries.append(str(int(token)))
        elif token.startswith(("GPU-", "MIG-")):
            entries.append(token)
        else:
            raise MeasureError(
                f"CUDA_VISIBLE_DEVICES entry {token!r} is neither a GPU index nor a "
                "GPU-/MIG- UUID: fix CUDA_VISIBLE_DEVICES (see `nvidia-smi -L`)"
            )
    return entries


def _handle_by_uuid(nvml: ModuleType, uuid: str) -> Any:
    try:
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    except nvml.NVMLError:
        pass  # CUDA accepts unique UUID prefixes; NVML only full UUIDs
    matches = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        if _as_str(nvml.nvmlDeviceGetUUID(handle)).startswith(uuid):
            matches.append(handle)
    if len(matches) != 1:
        raise MeasureError(
            f"CUDA_VISIBLE_DEVICES entry {uuid!r} matches {len(matches)} GPUs known to "
            "NVML: fix CUDA_VISIBLE_DEVICES to list full UUIDs from `nvidia-smi -L`"
        )
    return matches[0]


def _handle_for_entry(nvml: ModuleType, entry: str) -> Any:
    """NVML handle of the physical GPU behind one CUDA_VISIBLE_DEVICES entry.

    MIG slices have no energy counter or power reading of their own, so a MIG entry
    resolves to its parent GPU (whose energy is shared with other slices).
    """
    if entry.isdigit():
        count = nvml.nvmlDeviceGetCount()
        if int(entry) >= count:
            raise MeasureError(
                f"CUDA_VISIBLE_DEVICES lists GPU {entry} but NVML sees only {count} "
                "GPU(s): fix CUDA_VISIBLE_DEVICES (see `nvidia-smi -L`)"
            )
        return nvml.nvmlDeviceGetHandleByIndex(int(entry))
    if entry.startswith("MIG-GPU-"):  # pre-R470 form: MIG-GPU-<uuid>/<gi>/<ci>
        return _handle_by_uuid(nvml, entry[len("MIG-") :].split("/")[0])
    handle = _handle_by_uuid(nvml, entry)
    if entry.startswith("MIG-"):
        handle = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
    return handle


def _visible_gpus(nvml: ModuleType) -> list[tuple[str, Any]]:
    """(CUDA_VISIBLE_DEVICES entry, handle) for each GPU this process may use, in CUDA order.

    Integer entries are taken as NVML indices; NVML orders by PCI bus, as CUDA does
    under CUDA_DEVICE_ORDER=PCI_BUS_ID (the usual setting on clusters).
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        count = nvml.nvmlDeviceGetCount()
        return [(str(i), nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
    entries = parse_cuda_visible_devices(env)
    if not entries:
        raise MeasureError(
            f"CUDA_VISIBLE_DEVICES={env!r} hides every GPU: unset it or list the GPUs "
            "to measure, or use energy_meter: codecarbon"
        )
    return [(entry, _handle_for_entry(nvml, entry)) for entry in entries]


@dataclass
class _Gpu:
    label: str
    handle: Any
    info: dict[str, Any]
    method: str = "counter"
    start_mj: int = 0


def _optional(nvml: ModuleType, fn_name: str, *args: Any) -> Any:
    """Call an informational NVML function; None if absent or unsupported.

    Used for details only, which must never make a measurement fail.
    """
    fn = getattr(nvml, fn_name, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except nvml.NVMLError:
        return None


def _describe(nvml: ModuleType, entry: str, handle: Any) -> _Gpu:
    uuid = _as_str(nvml.nvmlDeviceGetUUID(handle))
    limit_mw = _optional(nvml, "nvmlDeviceGetEnforcedPowerLimit", handle)
    info = {
        "name": _as_str(nvml.nvmlDeviceGetName(handle)),
        "uuid": uuid,
        "nvml_index": _optional(nvml, "nvmlDeviceGetIndex", handle),
        "cuda_visible_entry": entry,
        "mig_parent": entry.startswith("MIG-"),
        "power_limit_w": None if limit_mw is None else limit_mw / 1000.0,
    }
    return _Gpu(label=f"gpu:{uuid}", handle=handle, info=info)


def _select(
    visible: list[tuple[str, Any]], device_indices: list[int] | None
) -> list[tuple[str, Any]]:
    if device_indices is None:
        return visible
    bad = [i for i in device_indices if not 0 <= i < len(visible)]
    if bad:
        raise MeasureError(
            f"NvmlMeter device_indices {bad} out of range: this process sees "
            f"{len(visible)} GPU(s) (indices are relative to CUDA_VISIBLE_DEVICES)"
        )
    return [visible[i] for i in device_indices]


def _resolve_gpus(nvml: ModuleType, device_indices: list[int] | None) -> list[_Gpu]:
    gpus: dict[str, _Gpu] = {}
    for entry, handle in _select(_visible_gpus(nvml), device_indices):
        gpu = _describe(nvml, entry, handle)
        # Several MIG slices of one GPU collapse into one device: count it once.
        gpus.setdefault(gpu.label, gpu)
    if not gpus:
        raise MeasureError(
            "NVML sees no GPUs on this machine: use energy_meter: codecarbon, "
            "or run inside a GPU allocation"
        )
    return list(gpus.values())


class _PowerPoller:
    """Samples power (W) of several devices on a thread and integrates to joules.

    Samples are also taken synchronously in start() and stop(), so the integral
    covers the whole window however short it is.
    """

    def __init__(
        self, read_w: Callable[[Any], float], handles: dict[str, Any], interval_s: float
    ):
        self._read_w = read_w
        self._handles = handles
        self._interval_s = interval_s
        self._samples: dict[str, list[tuple[float, float]]] = {
            label: [] for label in handles
        }
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
    return sum(
        (t1 - t0) * (w0 + w1) / 2.0
        for (t0, w0), (t1, w1) in itertools.pairwise(samples)
    )


@dataclass
class _Window:
    """State of one open start()/stop() window."""

    nvml: ModuleType
    gpus: list[_Gpu]
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
        nvml = _import_pynvml()
        with _nvml_errors(nvml, "initialising NVML"):
            nvml.nvmlInit()
        window = _Window(nvml=nvml, gpus=[])
        try:
            with _nvml_errors(nvml, "finding this process's GPUs"):
                window.gpus = _resolve_gpus(nvml, self.device_indices)
                version = _optional(nvml, "nvmlSystemGetDriverVersion")
                window.driver_version = None if version is None else _as_str(version)
            self._open(window)
        except BaseException:
            _close(window)
            raise
        self._window = window

    def _open(self, window: _Window) -> None:
        nvml = window.nvml
        for gpu in window.gpus:
            with _nvml_errors(nvml, f"reading the energy counter of {gpu.label}"):
                try:
                    gpu.start_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
                except _not_supported(nvml):
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
            with _nvml_errors(nvml, "reading GPU power"):
                window.poller.start()

    def stop(self) -> EnergyMeasurement:
        window, self._window = self._window, None
        if window is None:
            raise MeasureError(
                "NvmlMeter.stop() called without start(): call start() first"
            )
        try:
            return self._measure(window)
        finally:
            _close(window)

    def _measure(self, window: _Window) -> EnergyMeasurement:
        nvml = window.nvml
        energy: dict[str, float] = {}
        with _nvml_errors(nvml, "reading GPU energy at the end of the window"):
            for gpu in window.gpus:
                if gpu.method == "counter":
                    end_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
                    energy[gpu.label] = _counter_j(gpu.label, _delta_mj(gpu.start_mj, end_mj))
            duration_s = time.perf_counter() - window.t0
            polled = window.poller.stop() if window.poller is not None else {}
            throttle = {g.label: _throttle_reasons(nvml, g.handle) for g in window.gpus}
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


# NVML clock-event bits that mean the GPU slowed itself: software power cap (0x4),
# hardware slowdown (0x8), software/hardware thermal (0x20/0x40), power brake (0x80).
SLOWDOWN_REASONS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def _throttle_reasons(nvml: ModuleType, handle: Any) -> int | None:
    for name in ("nvmlDeviceGetCurrentClocksEventReasons",
                 "nvmlDeviceGetCurrentClocksThrottleReasons"):
        value = _optional(nvml, name, handle)
        if value is not None:
            return int(value)
    return None


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


def _overall_method(gpus: list[_Gpu]) -> str:
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


def visible_gpu_temperatures() -> dict[str, float]:
    """Core temperature (degrees C) of each GPU this process was given."""
    nvml = _import_pynvml()
    with _nvml_errors(nvml, "initialising NVML"):
        nvml.nvmlInit()
    try:
        with _nvml_errors(nvml, "reading GPU temperatures"):
            return {gpu.label: float(nvml.nvmlDeviceGetTemperature(gpu.handle, 0))  # 0 = GPU
                    for gpu in _resolve_gpus(nvml, None)}
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
