from __future__ import annotations

from pathlib import Path

from joulebench.measure.thermal import cool_down, cpu_temperatures_c


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waits_until_every_sensor_is_below_the_threshold() -> None:
    readings = iter(
        [
            {"gpu:A": 80.0, "gpu:B": 70.0},
            {"gpu:A": 66.0, "gpu:B": 60.0},
            {"gpu:A": 59.0, "gpu:B": 58.0},
        ]
    )
    clock = FakeClock()
    out = cool_down(lambda: next(readings), 60.0, 300, poll_s=2, sleep=clock.sleep, clock=clock)
    assert out["reached"] is True and out["waited_s"] == 4.0
    assert out["start_temperature_c"] == {"gpu:A": 80.0, "gpu:B": 70.0}


def test_gives_up_after_the_maximum_wait() -> None:
    clock = FakeClock()
    out = cool_down(lambda: {"gpu:A": 90.0}, 60.0, 10, poll_s=3, sleep=clock.sleep, clock=clock)
    assert out["reached"] is False and out["waited_s"] == 12.0


def test_without_a_threshold_only_the_start_temperature_is_recorded() -> None:
    out = cool_down(lambda: {"gpu:A": 50.0}, None, 300)
    assert out == {
        "start_temperature_c": {"gpu:A": 50.0},
        "threshold_c": None,
        "waited_s": 0.0,
        "reached": None,
    }


def test_thermal_zones_are_read_from_sysfs(tmp_path: Path) -> None:
    zone = tmp_path / "thermal_zone0"
    zone.mkdir()
    (zone / "type").write_text("x86_pkg_temp\n")
    (zone / "temp").write_text("47500\n")
    assert cpu_temperatures_c(tmp_path) == {"x86_pkg_temp:thermal_zone0": 47.5}
