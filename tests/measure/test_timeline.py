"""The power timeline: a real meter probed mid-window, written and read back as CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.measure.rapl_meter import RaplMeter
from joulebench.measure.timeline import (
    COLUMNS,
    Reading,
    TimelineRecorder,
    read_timeline,
    timeline_path,
    timeline_rows,
    write_timeline,
)
from tests.measure.test_rapl_meter import add_zone, set_uj


def test_rapl_probe_records_energy_as_it_grows_and_the_csv_marks_the_window(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)
    pkg = add_zone(root / "intel-rapl:0", "package-0", 1_000_000)
    meter = RaplMeter(root, poll_interval_s=60.0)
    meter.start()
    ticks = iter(range(100))
    recorder = TimelineRecorder(meter.probe, interval_s=60.0, clock=lambda: float(next(ticks)))
    recorder.start()  # t=0: 0 J so far
    set_uj(pkg, 3_000_000)  # +2 J
    samples = recorder.stop()  # t=1: the final reading
    energy = meter.stop().to_dict()

    assert [(t, r.device, r.energy_j) for t, r in samples] == [
        (0.0, "cpu:package-0", 0.0),
        (1.0, "cpu:package-0", 2.0),
    ]
    path = timeline_path(tmp_path, "0007")
    assert path.name == "0007_9_power_timeline.csv"
    write_timeline(
        path, timeline_rows(samples, 0.0, 1.0, energy, {"power_w": 1.5, "meter": "rapl"})
    )
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = read_timeline(path)
    kinds = [r["kind"] for r in rows]
    assert kinds == ["sample", "sample", "window_start", "window_end", "total", "baseline"]
    assert rows[1]["energy_j"] == 2.0 and rows[1]["source"] == "rapl"
    assert rows[4]["energy_j"] == energy["energy_j_by_device"]["cpu:package-0"]
    assert rows[5]["power_w"] == 1.5 and rows[5]["temp_c"] is None


def test_a_failing_probe_ends_the_recording_not_the_window() -> None:
    calls = []

    def probe() -> list[Reading]:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("sensor gone")
        return [Reading("nvml", "gpu:0", power_w=100.0, temp_c=60.0, clock_mhz=1400.0)]

    recorder = TimelineRecorder(probe, interval_s=60.0)
    recorder.start()
    samples = recorder.stop()
    assert [r.power_w for _, r in samples] == [100.0]


def test_nvml_probe_reads_power_counter_energy_and_temperature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from joulebench.measure import NvmlMeter
    from tests.measure.test_nvml_meter import UUID_A, UUID_B, FakeGpu, FakeNvml, install

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with_counter, without = FakeGpu(UUID_A, power_w=250.0), FakeGpu(UUID_B, counter=False)
    install(monkeypatch, FakeNvml([with_counter, without]))
    meter = NvmlMeter(poll_interval_s=60.0)
    meter.start()
    with_counter.energy_mj += 1500  # 1.5 J since start
    readings = {r.device: r for r in meter.probe()}
    meter.stop()
    a, b = readings[f"gpu:{UUID_A}"], readings[f"gpu:{UUID_B}"]
    assert (a.source, a.power_w, a.energy_j, a.temp_c) == ("nvml", 250.0, 1.5, 40.0)
    assert (b.power_w, b.energy_j, b.temp_c) == (100.0, None, 41.0)  # no counter: power only
    assert a.clock_mhz is None  # the stand-in has no clock query: left empty, not an error
    assert meter.probe() == []  # no window open


def test_thinning_keeps_every_devices_history_at_the_same_instants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import joulebench.measure.timeline as timeline

    monkeypatch.setattr(timeline, "MAX_SAMPLES", 20)
    ticks = iter(range(1000))

    def probe() -> list[Reading]:
        return [Reading("nvml", "gpu:0", power_w=100.0), Reading("nvml", "gpu:1", power_w=50.0)]

    recorder = TimelineRecorder(probe, interval_s=60.0, clock=lambda: float(next(ticks)))
    recorder.start()
    for _ in range(29):
        recorder._sample()  # the polling thread's step, run here at known instants
    samples = recorder.stop()
    by_device: dict[str, list[float]] = {}
    for t, r in samples:
        by_device.setdefault(r.device, []).append(t)
    assert by_device["gpu:0"] == by_device["gpu:1"]
    times = by_device["gpu:0"]
    assert times[0] == 0.0 and len(samples) <= 20 + 2
    assert times == sorted(times) and recorder.interval_s > 60.0


def test_the_baseline_is_one_row_per_device_when_the_meter_gave_per_device_power() -> None:
    per_device = {
        "power_w": 150.0,
        "meter": "nvml",
        "power_w_by_device": {"gpu:0": 100.0, "gpu:1": 50.0},
    }
    rows = timeline_rows([], 0.0, 1.0, None, per_device)
    baselines = [(r["device"], r["power_w"]) for r in rows if r["kind"] == "baseline"]
    assert baselines == [("gpu:0", 100.0), ("gpu:1", 50.0)]
    rows = timeline_rows([], 0.0, 1.0, None, {"power_w": 150.0, "meter": "codecarbon"})
    baselines = [(r["device"], r["power_w"]) for r in rows if r["kind"] == "baseline"]
    assert baselines == [("node total", 150.0)]


def test_long_windows_and_large_energies_keep_their_resolution(tmp_path: Path) -> None:
    samples = [
        (100_000.0 + t, Reading("nvml", "gpu:0", power_w=312.25, energy_j=1_234_567.891 + t))
        for t in (12_345.6789, 12_345.9012)
    ]
    path = tmp_path / "t.csv"
    write_timeline(path, timeline_rows(samples, 100_000.0, 12_346.5, None, None))
    rows = [r for r in read_timeline(path) if r["kind"] == "sample"]
    assert [r["t_s"] for r in rows] == [12_345.6789, 12_345.9012]
    assert [r["energy_j"] for r in rows] == [
        1_234_567.891 + 12_345.6789,
        1_234_567.891 + 12_345.9012,
    ]
