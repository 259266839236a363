"""CodecarbonMeter for real: codecarbon runs offline on a CPU-only machine."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from joulebench.errors import MeasureError
from joulebench.measure import CodecarbonMeter, EnergyMeasurement


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture(scope="module")
def one_second() -> EnergyMeasurement:
    meter = CodecarbonMeter()
    meter.start()
    busy(1.0)
    return meter.stop()


def test_busy_second_has_energy(one_second: EnergyMeasurement) -> None:
    m = one_second
    assert m.meter == "codecarbon"
    assert m.energy_j > 0
    assert m.energy_j_by_device["cpu"] > 0
    assert m.energy_j_by_device["ram"] > 0
    assert 0.9 < m.duration_s < 3.0
    assert m.emissions_kg is not None and m.emissions_kg > 0


def test_estimate_flags_match_sources(one_second: EnergyMeasurement) -> None:
    m = one_second
    sources = m.details["component_sources"]
    assert set(sources) >= {"cpu", "ram"}
    if sources["cpu"] in ("cpu_load", "constant"):  # no RAPL readable, e.g. any VM
        assert m.is_estimate is True
        assert m.method == "estimate"
    assert "ram" in m.details["estimated_components"]  # codecarbon never senses RAM
    assert m.details["tracking_mode"] == "machine"
    assert m.details["country_iso_code"] == "USA"


def test_round_trip_through_json(one_second: EnergyMeasurement) -> None:
    d = json.loads(json.dumps(one_second.to_dict()))
    assert d["energy_j"] == pytest.approx(one_second.energy_j)
    assert EnergyMeasurement.from_dict(d) == one_second


def test_short_window_is_not_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    meter = CodecarbonMeter(measure_power_secs=1.0)
    meter.start()
    time.sleep(0.3)  # well under measure_power_secs: energy comes from stop()'s reading
    m = meter.stop()
    assert m.energy_j > 0
    assert list(tmp_path.iterdir()) == []  # no emissions.csv or other litter


def test_meter_is_reusable() -> None:
    meter = CodecarbonMeter()
    for _ in range(2):
        meter.start()
        busy(0.1)
        assert meter.stop().energy_j > 0


def test_misuse_is_a_measure_error(tmp_path: Path) -> None:
    with pytest.raises(MeasureError, match="without start"):
        CodecarbonMeter().stop()
    with pytest.raises(MeasureError, match="does not exist"):
        CodecarbonMeter(output_dir=tmp_path / "missing")
    with pytest.raises(MeasureError, match="positive"):
        CodecarbonMeter(measure_power_secs=0)


def test_from_dict_names_missing_keys() -> None:
    with pytest.raises(MeasureError, match="duration_s"):
        EnergyMeasurement.from_dict({"meter": "x", "method": "estimate"})


@pytest.mark.parametrize(("cpus_on_node", "expect_calls"), [("2", False), (None, True)])
def test_inside_slurm_codecarbon_does_not_call_scontrol(
    tmp_path: Path, cpus_on_node: str | None, expect_calls: bool
) -> None:
    """Each scontrol call hits slurmctld (and hangs while it is down): use Slurm's env."""
    import os
    import subprocess
    import sys

    calls = tmp_path / "scontrol.calls"
    fake = tmp_path / "bin" / "scontrol"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho NumCPUs=2\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env |= {"PATH": f"{fake.parent}:{env['PATH']}", "SLURM_JOB_ID": "4242"}
    if cpus_on_node:
        env["SLURM_CPUS_ON_NODE"] = cpus_on_node
    probe = (
        "import time\nfrom joulebench.measure import CodecarbonMeter\n"
        "m = CodecarbonMeter()\nm.start()\ntime.sleep(1.2)\n"
        "print(m.stop().energy_j > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip().endswith("True"), out.stderr[-500:]
    assert calls.exists() == expect_calls
