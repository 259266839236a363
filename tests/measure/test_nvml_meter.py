"""NvmlMeter against a stand-in pynvml module, so these run on machines with no GPU."""

from __future__ import annotations

import sys
import threading
import time
from types import ModuleType
from typing import Any

import pytest

from joulebench.errors import MeasureError
from joulebench.measure import EnergyMeasurement, NvmlMeter, parse_cuda_visible_devices
from joulebench.measure.nvml_meter import trapezoid_j


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # pynvml's class names
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_NotFound(NVMLError):
    pass


class FakeGpu:
    def __init__(self, uuid: str, *, counter: bool = True, power_w: float = 100.0) -> None:
        self.uuid = uuid
        self.counter = counter
        self.power_w = power_w
        self.energy_mj = 1_000_000  # arbitrary non-zero start, as on a real GPU


class FakeNvml(ModuleType):
    """The subset of pynvml that NvmlMeter calls; handles are FakeGpu objects."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_NotFound = NVMLError_NotFound

    def __init__(self, gpus: list[FakeGpu], *, init_error: Exception | None = None) -> None:
        super().__init__("pynvml")
        self.gpus = gpus
        self.init_error = init_error
        self.initialised = 0
        self.power_reads = 0
        self.migs: dict[str, tuple[str, FakeGpu]] = {}  # MIG uuid -> (handle, parent)

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        if uuid in self.migs:
            return self.migs[uuid][0]
        raise NVMLError_NotFound("Not Found")

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, mig: str) -> FakeGpu:
        return next(parent for handle, parent in self.migs.values() if handle == mig)

    def nvmlDeviceGetIndex(self, handle: FakeGpu) -> int:
        return self.gpus.index(handle)

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        return handle.uuid

    def nvmlDeviceGetName(self, handle: FakeGpu) -> bytes:
        return b"NVIDIA H100 80GB HBM3"  # bytes, as older pynvml returns

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeGpu) -> int:
        return 700_000

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        if not handle.counter:
            raise NVMLError_NotSupported("Not Supported")
        return handle.energy_mj

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        return 40 + self.gpus.index(handle)

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        self.power_reads += 1
        return int(handle.power_w * 1000)


UUID_A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
UUID_B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"
UUID_C = "GPU-cccccccc-1111-2222-3333-444444444444"


def install(monkeypatch: pytest.MonkeyPatch, fake: FakeNvml) -> FakeNvml:
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


@pytest.fixture
def three_gpus(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return install(monkeypatch, FakeNvml([FakeGpu(UUID_A), FakeGpu(UUID_B), FakeGpu(UUID_C)]))


def test_counter_path_energy_is_millijoule_delta(three_gpus: FakeNvml) -> None:
    meter = NvmlMeter()
    meter.start()
    three_gpus.gpus[0].energy_mj += 12_345  # 12.345 J
    three_gpus.gpus[2].energy_mj += 500
    m = meter.stop()
    assert m.meter == "nvml" and m.method == "counter" and not m.is_estimate
    assert m.energy_j_by_device == {
        f"gpu:{UUID_A}": pytest.approx(12.345),
        f"gpu:{UUID_B}": 0.0,
        f"gpu:{UUID_C}": pytest.approx(0.5),
    }
    assert m.energy_j == pytest.approx(12.845)
    dev = m.details["devices"][f"gpu:{UUID_A}"]
    assert dev["name"] == "NVIDIA H100 80GB HBM3" and dev["power_limit_w"] == 700.0
    assert dev["method"] == "counter" and dev["nvml_index"] == 0
    assert m.details["driver_version"] == "550.54.15"
    assert three_gpus.initialised == 0  # nvmlShutdown balanced nvmlInit
    # The counter is the figure; polling runs beside it as a cross-check.
    assert three_gpus.power_reads > 0
    assert dev["polling_energy_j"] >= 0 and "polling_energy_j" in m.details
    assert m.details["throttled"] is False


def test_polling_cross_check_disagreeing_with_the_counter_is_flagged(three_gpus: FakeNvml) -> None:
    from joulebench.measure.quality import quality_flags

    meter = NvmlMeter(poll_interval_s=0.02)
    meter.start()
    time.sleep(0.3)  # 3 GPUs x 100 W x 0.3 s = ~90 J by polling
    three_gpus.gpus[0].energy_mj += 10_000  # the counters claim only 10 J
    m = meter.stop()
    assert m.details["polling_energy_j"] == pytest.approx(90, rel=0.3)
    assert "counter_polling_disagreement" in quality_flags(m, window_s=5.0)


def test_polling_fallback_integrates_constant_power(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = install(monkeypatch, FakeNvml([FakeGpu(UUID_A, counter=False, power_w=100.0)]))
    meter = NvmlMeter(poll_interval_s=0.05)
    meter.start()
    time.sleep(0.3)
    m = meter.stop()
    assert m.method == "polling" and not m.is_estimate
    assert m.energy_j == pytest.approx(100.0 * m.duration_s, rel=0.02)
    assert 25.0 < m.energy_j < 40.0  # ~30 J for 100 W over ~0.3 s
    assert m.details["devices"][f"gpu:{UUID_A}"]["power_samples"] >= 4
    assert fake.initialised == 0
    assert not [t for t in threading.enumerate() if t.name == "joulebench-nvml-poller"]


def test_mixed_counter_and_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = install(
        monkeypatch,
        FakeNvml([FakeGpu(UUID_A), FakeGpu(UUID_B, counter=False, power_w=50.0)]),
    )
    meter = NvmlMeter(poll_interval_s=0.02)
    meter.start()
    fake.gpus[0].energy_mj += 2_000
    time.sleep(0.1)
    m = meter.stop()
    assert m.method == "counter+polling"
    assert m.energy_j_by_device[f"gpu:{UUID_A}"] == pytest.approx(2.0)
    assert m.energy_j_by_device[f"gpu:{UUID_B}"] == pytest.approx(50.0 * m.duration_s, rel=0.05)
    methods = {k: v["method"] for k, v in m.details["devices"].items()}
    assert methods == {f"gpu:{UUID_A}": "counter", f"gpu:{UUID_B}": "polling"}


def test_cuda_visible_devices_by_index(
    three_gpus: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    meter = NvmlMeter()
    meter.start()
    m = meter.stop()
    assert list(m.energy_j_by_device) == [f"gpu:{UUID_C}", f"gpu:{UUID_A}"]
    assert m.details["cuda_visible_devices"] == "2,0"


def test_cuda_visible_devices_by_uuid_and_prefix(
    three_gpus: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{UUID_B}, GPU-cccccccc")
    meter = NvmlMeter()
    meter.start()
    m = meter.stop()
    assert list(m.energy_j_by_device) == [f"gpu:{UUID_B}", f"gpu:{UUID_C}"]


def test_mig_slices_resolve_to_their_parent_gpu_once(
    three_gpus: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    mig1, mig2 = "MIG-11111111-aaaa", "MIG-22222222-bbbb"
    three_gpus.migs = {
        mig1: ("mig-handle-1", three_gpus.gpus[1]),
        mig2: ("mig-handle-2", three_gpus.gpus[1]),
    }
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{mig1},{mig2}")
    meter = NvmlMeter()
    meter.start()
    m = meter.stop()
    assert list(m.energy_j_by_device) == [f"gpu:{UUID_B}"]
    assert m.details["devices"][f"gpu:{UUID_B}"]["mig_parent"] is True


def test_device_indices_are_relative_to_visible_devices(
    three_gpus: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    meter = NvmlMeter(device_indices=[1])
    meter.start()
    assert list(meter.stop().energy_j_by_device) == [f"gpu:{UUID_C}"]
    with pytest.raises(MeasureError, match="out of range"):
        NvmlMeter(device_indices=[2]).start()
    assert three_gpus.initialised == 0  # a failed start still shuts NVML down


def test_bad_cuda_visible_devices(three_gpus: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    with pytest.raises(MeasureError, match="fix CUDA_VISIBLE_DEVICES"):
        NvmlMeter().start()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    with pytest.raises(MeasureError, match="hides every GPU"):
        NvmlMeter().start()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-deadbeef")
    with pytest.raises(MeasureError, match="matches 0 GPUs"):
        NvmlMeter().start()
    assert three_gpus.initialised == 0


def test_parse_cuda_visible_devices() -> None:
    assert parse_cuda_visible_devices("0, 3") == ["0", "3"]
    # CUDA stops at a negative index
    assert parse_cuda_visible_devices("1,-1,2") == ["1"]
    assert parse_cuda_visible_devices("") == []
    assert parse_cuda_visible_devices(f"MIG-{UUID_A[4:]},{UUID_B}") == [
        f"MIG-{UUID_A[4:]}",
        UUID_B,
    ]
    with pytest.raises(MeasureError, match="neither a GPU index"):
        parse_cuda_visible_devices("0,gpu1")


def test_library_not_found_says_use_codecarbon(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml([], init_error=NVMLError_LibraryNotFound("not found")))
    with pytest.raises(MeasureError) as info:
        NvmlMeter().start()
    message = str(info.value)
    assert "NVML not available" in message
    assert "use energy_meter: codecarbon" in message
    assert "\n" not in message
    # the vendor error stays behind the boundary
    assert not isinstance(info.value, NVMLError)


def test_unknown_nvml_error_is_translated(
    three_gpus: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(handle: Any) -> int:
        raise NVMLError("Unknown Error")

    monkeypatch.setattr(three_gpus, "nvmlDeviceGetTotalEnergyConsumption", broken)
    with pytest.raises(MeasureError, match="nvidia-smi"):
        NvmlMeter().start()
    assert three_gpus.initialised == 0


def test_poller_failure_surfaces_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = install(monkeypatch, FakeNvml([FakeGpu(UUID_A, counter=False)]))
    meter = NvmlMeter(poll_interval_s=0.01)
    meter.start()

    def lost(handle: Any) -> int:
        raise NVMLError("GPU is lost")

    monkeypatch.setattr(fake, "nvmlDeviceGetPowerUsage", lost)
    time.sleep(0.05)
    with pytest.raises(MeasureError, match="reading GPU energy"):
        meter.stop()
    assert fake.initialised == 0
    assert not [t for t in threading.enumerate() if t.name == "joulebench-nvml-poller"]


def test_counter_wrap_at_64_bits_is_not_a_reset(three_gpus: FakeNvml) -> None:
    three_gpus.gpus[0].energy_mj = 2**64 - 1_000
    meter = NvmlMeter()
    meter.start()
    three_gpus.gpus[0].energy_mj = 500  # wrapped past 2**64 mJ
    m = meter.stop()
    assert m.energy_j_by_device[f"gpu:{UUID_A}"] == pytest.approx(1.5)


def test_counter_going_backwards_is_an_error(three_gpus: FakeNvml) -> None:
    meter = NvmlMeter()
    meter.start()
    three_gpus.gpus[0].energy_mj = 0  # driver reload resets the counter
    with pytest.raises(MeasureError, match="went backwards"):
        meter.stop()
    assert three_gpus.initialised == 0


def test_stop_without_start_and_double_start(three_gpus: FakeNvml) -> None:
    with pytest.raises(MeasureError, match="without start"):
        NvmlMeter().stop()
    meter = NvmlMeter()
    meter.start()
    with pytest.raises(MeasureError, match="twice"):
        meter.start()
    meter.stop()


def test_measurement_round_trips(three_gpus: FakeNvml) -> None:
    meter = NvmlMeter()
    meter.start()
    m = meter.stop()
    assert EnergyMeasurement.from_dict(m.to_dict()) == m


def test_trapezoid() -> None:
    assert trapezoid_j([(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]) == pytest.approx(550.0)
    assert trapezoid_j([(0.0, 100.0)]) == 0.0


def test_temperatures_of_the_visible_gpus(
    three_gpus: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    from joulebench.measure.nvml_devices import visible_gpu_temperatures

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert visible_gpu_temperatures() == {f"gpu:{UUID_C}": 42.0}
    assert three_gpus.initialised == 0


def test_inventory_of_the_visible_gpus(three_gpus: FakeNvml) -> None:
    from joulebench.measure.nvml_devices import visible_gpu_inventory

    inventory = visible_gpu_inventory()
    assert list(inventory) == [f"gpu:{u}" for u in (UUID_A, UUID_B, UUID_C)]
    first = inventory[f"gpu:{UUID_A}"]
    assert first["name"] == "NVIDIA H100 80GB HBM3" and first["power_limit_w"] == 700.0
    assert first["driver_version"] == "550.54.15"
