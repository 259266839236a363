"""The meter names are one list: the config accepts, the factory builds and the README
documents exactly the names in ``measure.names``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from joulebench.config.models import ExperimentConfig
from joulebench.measure import available_meter_names, make_meter
from joulebench.measure.names import EXTRA_METER_NAMES, METER_NAMES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_config_fields_take_exactly_the_measure_names() -> None:
    fields = ExperimentConfig.model_fields
    assert get_args(fields["energy_meter"].annotation) == METER_NAMES
    (extra,) = get_args(fields["extra_meters"].annotation)[:1]
    assert get_args(extra) == EXTRA_METER_NAMES
    assert set(METER_NAMES) == {"auto", *EXTRA_METER_NAMES}


def test_the_factory_builds_every_name_and_refuses_others() -> None:
    assert available_meter_names() == METER_NAMES
    for name in EXTRA_METER_NAMES:
        assert make_meter(name, device="cuda").name == name
    for name in METER_NAMES:
        ExperimentConfig(model="m", energy_meter=name, device="cuda")
    with pytest.raises(ValidationError):
        ExperimentConfig(model="m", energy_meter="bogus")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "names"), [("energy_meter", METER_NAMES), ("extra_meters", EXTRA_METER_NAMES)]
)
def test_the_readme_reference_lists_the_same_names(field: str, names: tuple[str, ...]) -> None:
    row = next(line for line in README.splitlines() if line.startswith(f"| `{field}` |"))
    meaning = row.strip("|").split(" | ")[-1]
    listed = set(re.findall(r"`([a-z]+)`", meaning))
    assert listed == set(names), (field, listed)
