"""NVML's side of the GPU meter: find the GPUs this process was given, describe them,
and translate NVML errors into MeasureErrors whose message says the fix.

pynvml is imported only inside functions, so importing joulebench on a laptop
without NVIDIA drivers never touches it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from joulebench.errors import MeasureError

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


def import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as err:
        raise MeasureError(
            "pynvml is not installed: pip install nvidia-ml-py, "
            "or use energy_meter: codecarbon on machines without NVIDIA GPUs"
        ) from err
    return pynvml


@contextlib.contextmanager
def nvml_errors(nvml: ModuleType, action: str) -> Iterator[None]:
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


def not_supported(nvml: ModuleType) -> type[BaseException] | tuple[()]:
    # An empty tuple in an except clause matches nothing: safe if the class is absent.
    return getattr(nvml, "NVMLError_NotSupported", ())


def as_str(value: Any) -> str:
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
        if as_str(nvml.nvmlDeviceGetUUID(handle)).startswith(uuid):
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
class Gpu:
    label: str
    handle: Any
    info: dict[str, Any]
    method: str = "counter"
    start_mj: int = 0


def optional_call(nvml: ModuleType, fn_name: str, *args: Any) -> Any:
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


def _describe(nvml: ModuleType, entry: str, handle: Any) -> Gpu:
    uuid = as_str(nvml.nvmlDeviceGetUUID(handle))
    limit_mw = optional_call(nvml, "nvmlDeviceGetEnforcedPowerLimit", handle)
    info = {
        "name": as_str(nvml.nvmlDeviceGetName(handle)),
        "uuid": uuid,
        "nvml_index": optional_call(nvml, "nvmlDeviceGetIndex", handle),
        "cuda_visible_entry": entry,
        "mig_parent": entry.startswith("MIG-"),
        "power_limit_w": None if limit_mw is None else limit_mw / 1000.0,
    }
    return Gpu(label=f"gpu:{uuid}", handle=handle, info=info)


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


def resolve_gpus(nvml: ModuleType, device_indices: list[int] | None) -> list[Gpu]:
    gpus: dict[str, Gpu] = {}
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


# NVML clock-event bits that mean the GPU slowed itself: software power cap (0x4),
# hardware slowdown (0x8), software/hardware thermal (0x20/0x40), power brake (0x80).
SLOWDOWN_REASONS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def throttle_reasons(nvml: ModuleType, handle: Any) -> int | None:
    for name in (
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetCurrentClocksThrottleReasons",
    ):
        value = optional_call(nvml, name, handle)
        if value is not None:
            return int(value)
    return None


def _with_visible_gpus(action: str, read: Any) -> dict[str, Any]:
    nvml = import_pynvml()
    with nvml_errors(nvml, "initialising NVML"):
        nvml.nvmlInit()
    try:
        with nvml_errors(nvml, action):
            return {gpu.label: read(nvml, gpu) for gpu in resolve_gpus(nvml, None)}
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def visible_gpu_temperatures() -> dict[str, float]:
    """Core temperature (degrees C) of each GPU this process was given."""
    return _with_visible_gpus(
        "reading GPU temperatures",
        lambda nvml, gpu: float(nvml.nvmlDeviceGetTemperature(gpu.handle, 0)),
    )  # sensor 0 = the GPU die


def visible_gpu_inventory() -> dict[str, dict[str, Any]]:
    """Provenance of the GPUs this process was given: name, UUID, power limit, driver."""

    def describe(nvml: ModuleType, gpu: Gpu) -> dict[str, Any]:
        driver = optional_call(nvml, "nvmlSystemGetDriverVersion")
        return {**gpu.info, "driver_version": None if driver is None else as_str(driver)}

    return _with_visible_gpus("describing the GPUs", describe)


def visible_gpu_count() -> int | None:
    """How many GPUs this process may use, read through NVML so that the caller needs
    neither torch nor a CUDA context; None when NVML cannot tell (no driver, an entry of
    CUDA_VISIBLE_DEVICES it cannot resolve)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and not parse_cuda_visible_devices(env):
        return 0
    try:
        return len(visible_gpu_inventory())
    except MeasureError:
        return None
