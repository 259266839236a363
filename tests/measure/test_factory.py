from __future__ import annotations

import subprocess
import sys

import pytest

from joulebench.errors import MeasureError
from joulebench.measure import (
    CodecarbonMeter,
    EnergyMeter,
    NvmlMeter,
    available_meter_names,
    make_meter,
)


@pytest.mark.parametrize(
    ("name", "device", "expected"),
    [
        ("auto", "cuda", NvmlMeter),
        ("auto", "cuda:1", NvmlMeter),
        ("auto", "cpu", CodecarbonMeter),
        ("auto", "mps", CodecarbonMeter),
        ("nvml", "cpu", NvmlMeter),
        ("codecarbon", "cuda", CodecarbonMeter),
    ],
)
def test_make_meter_picks(name: str, device: str, expected: type) -> None:
    meter = make_meter(name, device=device)
    assert type(meter) is expected
    assert isinstance(meter, EnergyMeter)


def test_unknown_name_lists_valid_values() -> None:
    with pytest.raises(MeasureError) as info:
        make_meter("bogus", device="cpu")
    message = str(info.value)
    assert "'bogus'" in message
    for valid in available_meter_names():
        assert valid in message


def test_available_meter_names() -> None:
    assert set(available_meter_names()) == {"auto", "codecarbon", "nvml", "rapl"}


def test_import_is_light() -> None:
    # Vendor libraries load only when a meter starts, so the CLI stays fast and
    # machines without NVIDIA drivers can import joulebench.
    code = (
        "import sys, joulebench.measure\n"
        "heavy = [m for m in ('torch', 'pynvml', 'codecarbon', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
