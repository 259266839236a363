"""RaplMeter against a fake powercap tree of real files, laid out as the kernel does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from joulebench.errors import MeasureError
from joulebench.measure import EnergyMeasurement, EnergyMeter, make_meter, rapl_meter
from joulebench.measure.factory import available_meter_names
from joulebench.measure.rapl_meter import RaplMeter, counter_delta_uj

MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def add_zone(zone_dir: Path, name: str, energy_uj: int, max_uj: int = MAX_UJ) -> Path:
    zone_dir.mkdir(parents=True)
    (zone_dir / "name").write_text(f"{name}\n")
    (zone_dir / "max_energy_range_uj").write_text(f"{max_uj}\n")
    set_uj(zone_dir, energy_uj)
    return zone_dir


def set_uj(zone_dir: Path, energy_uj: int | str) -> None:
    # Replace atomically: the poller thread may read while the test writes.
    tmp = zone_dir / "energy_uj.tmp"
    tmp.write_text(f"{energy_uj}\n")
    os.replace(tmp, zone_dir / "energy_uj")


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """Two packages, each with a core and a dram subzone, nested as in sysfs."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type dir: not a zone
    zones = {"root": root}
    for n in (0, 1):
        pkg = add_zone(root / f"intel-rapl:{n}", f"package-{n}", 1_000_000)
        zones[f"pkg{n}"] = pkg
        zones[f"core{n}"] = add_zone(pkg / f"intel-rapl:{n}:0", "core", 500_000)
        zones[f"dram{n}"] = add_zone(pkg / f"intel-rapl:{n}:1", "dram", 2_000_000)
    return zones


def measure(meter: RaplMeter, during: dict[Path, int]) -> EnergyMeasurement:
    meter.start()
    for zone_dir, energy_uj in during.items():
        set_uj(zone_dir, energy_uj)
    return meter.stop()


def wait_for_polls(meter: RaplMeter, more: int, timeout_s: float = 5.0) -> None:
    """Block until the poller has finished ``more`` further readings."""
    window = meter._window
    assert window is not None
    target = window.polls + more
    deadline = time.monotonic() + timeout_s
    while window.polls < target:
        assert time.monotonic() < deadline, "the RAPL poller thread stopped sampling"
        time.sleep(0.01)


def test_packages_and_dram_advance(tree: dict[str, Path]) -> None:
    m = measure(
        RaplMeter(tree["root"]),
        {
            tree["pkg0"]: 3_500_000,
            tree["pkg1"]: 1_250_000,
            tree["dram0"]: 2_750_000,
            tree["dram1"]: 2_000_000,
            tree["core0"]: 9_000_000,  # already inside package-0: must not count
        },
    )
    assert m.energy_j_by_device == pytest.approx(
        {
            "cpu:package-0": 2.5,
            "dram:package-0": 0.75,
            "cpu:package-1": 0.25,
            "dram:package-1": 0.0,
        }
    )
    assert list(m.energy_j_by_device) == [
        "cpu:package-0",
        "dram:package-0",
        "cpu:package-1",
        "dram:package-1",
    ]
    assert m.meter == "rapl" and m.method == "counter" and m.is_estimate is False
    assert m.duration_s >= 0
    zone = m.details["zones"]["dram:package-1"]
    assert zone == {
        "path": str(tree["dram1"]),
        "name": "dram",
        "max_energy_range_uj": MAX_UJ,
        "wraps": 0,
    }
    assert m.details["ignored_zones"] == {str(tree["core0"]): "core", str(tree["core1"]): "core"}
    assert EnergyMeasurement.from_dict(m.to_dict()) == m


def test_wrap_around_at_max(tree: dict[str, Path]) -> None:
    set_uj(tree["pkg0"], MAX_UJ - 1_000_000)
    m = measure(RaplMeter(tree["root"]), {tree["pkg0"]: 500_000})
    # 1_000_000 uJ up to the maximum, 1 uJ to roll over to 0, then 500_000 uJ.
    assert m.energy_j_by_device["cpu:package-0"] == pytest.approx(1.500001)
    assert m.details["zones"]["cpu:package-0"]["wraps"] == 1
    assert m.details["zones"]["cpu:package-1"]["wraps"] == 0


def test_counter_delta() -> None:
    assert counter_delta_uj(10, 25, 99) == 15
    assert counter_delta_uj(90, 5, 99) == 15  # 90 -> 99 -> 0 -> 5
    assert counter_delta_uj(7, 7, 99) == 0


def test_poller_catches_several_wraps(tree: dict[str, Path]) -> None:
    root = tree["root"]
    (root / "intel-rapl:0" / "max_energy_range_uj").write_text("999\n")
    set_uj(tree["pkg0"], 900)
    meter = RaplMeter(root, poll_interval_s=0.05)
    meter.start()
    # Readings the poller must see; a start/stop pair alone would see 900 -> 300.
    for energy_uj in (100, 500, 50):
        set_uj(tree["pkg0"], energy_uj)
        wait_for_polls(meter, 2)  # a full reading taken after the write
    set_uj(tree["pkg0"], 300)
    m = meter.stop()
    # 900 -> 100 (wrap: 200) -> 500 (400) -> 50 (wrap: 550) -> 300 (250)
    assert m.energy_j_by_device["cpu:package-0"] == pytest.approx(1400 / 1e6)
    assert m.details["zones"]["cpu:package-0"]["wraps"] == 2
    assert m.details["polls"] >= 7


def test_subzones_linked_at_top_level_and_other_zones_ignored(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    pkg = add_zone(root / "intel-rapl:0", "package-0", 0)
    dram = add_zone(root / "intel-rapl:0:0", "dram", 0)  # only the top-level link
    add_zone(root / "intel-rapl:0:1", "uncore", 0)
    psys = add_zone(root / "intel-rapl:1", "psys", 0)  # whole platform: includes package
    mmio = add_zone(root / "intel-rapl-mmio:0", "package-0", 0)  # same package again
    m = measure(RaplMeter(root), {pkg: 4_000_000, dram: 1_000_000, psys: 9, mmio: 9})
    assert m.energy_j_by_device == pytest.approx({"cpu:package-0": 4.0, "dram:package-0": 1.0})
    assert set(m.details["ignored_zones"].values()) == {"uncore", "psys"}


def test_no_zones_is_a_measure_error(tmp_path: Path) -> None:
    for root in (tmp_path / "missing", tmp_path):
        meter = RaplMeter(root)
        with pytest.raises(MeasureError, match="RAPL not available") as info:
            meter.start()
        assert "energy_meter: codecarbon" in str(info.value)
        assert meter._window is None


def test_permission_denied_names_file_and_fix(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_read = rapl_meter._read_uj

    def read(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(rapl_meter, "_read_uj", read)
    with pytest.raises(MeasureError) as info:
        RaplMeter(tree["root"]).start()
    message = str(info.value)
    assert str(tree["pkg0"] / "energy_uj") in message
    assert "sudo chmod a+r" in message and "intel-rapl:*/energy_uj" in message
    assert "root" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(tree: dict[str, Path]) -> None:
    (tree["dram1"] / "energy_uj").chmod(0)
    with pytest.raises(MeasureError, match="sudo chmod a\\+r"):
        RaplMeter(tree["root"]).start()


def test_broken_counter_file_is_a_measure_error(tree: dict[str, Path]) -> None:
    energy = tree["dram0"] / "energy_uj"
    energy.unlink()
    energy.mkdir()  # reading a directory fails with an OSError that is not EACCES
    with pytest.raises(MeasureError, match=str(energy)):
        RaplMeter(tree["root"]).start()
    energy.rmdir()
    energy.write_text("garbage\n")
    with pytest.raises(MeasureError, match="not a number of microjoules"):
        RaplMeter(tree["root"]).start()


def test_poller_error_surfaces_on_stop(tree: dict[str, Path]) -> None:
    meter = RaplMeter(tree["root"], poll_interval_s=0.01)
    meter.start()
    set_uj(tree["pkg1"], "garbage")
    window = meter._window
    assert window is not None
    deadline = time.monotonic() + 5.0
    while window.error is None:  # the poller thread, not stop(), hits it first
        assert time.monotonic() < deadline, "the RAPL poller never read the bad file"
        time.sleep(0.01)
    with pytest.raises(MeasureError, match="not a number of microjoules"):
        meter.stop()
    assert meter._window is None  # the meter can start again once the file is fixed


def test_misuse_is_a_measure_error(tree: dict[str, Path]) -> None:
    with pytest.raises(MeasureError, match="without start"):
        RaplMeter(tree["root"]).stop()
    with pytest.raises(MeasureError, match="poll_interval_s"):
        RaplMeter(tree["root"], poll_interval_s=0)
    meter = RaplMeter(tree["root"])
    meter.start()
    with pytest.raises(MeasureError, match="called twice"):
        meter.start()
    meter.stop()
    meter.start()  # reusable after stop()
    assert meter.stop().energy_j == 0


def test_zero_range_is_a_measure_error(tree: dict[str, Path]) -> None:
    (tree["dram1"] / "max_energy_range_uj").write_text("0\n")
    with pytest.raises(MeasureError, match="max_energy_range_uj=0"):
        RaplMeter(tree["root"]).start()


def test_factory_builds_rapl() -> None:
    meter = make_meter("rapl", device="cpu")
    assert type(meter) is RaplMeter and isinstance(meter, EnergyMeter)
    assert meter.name == "rapl"
    assert "rapl" in available_meter_names()
    assert type(make_meter("auto", device="cpu")) is not RaplMeter


def test_real_powercap_works_or_says_why() -> None:
    meter = RaplMeter()
    try:
        meter.start()
    except MeasureError as err:
        # This VM has no RAPL; a RAPL machine without root gets the permission fix.
        assert "RAPL not available" in str(err) or "permission denied" in str(err)
        return
    assert meter.stop().energy_j >= 0
