"""The scenario block and count_prefill_energy in the typed config."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from joulebench.config.models import HASH_OMITTED_AT, ExperimentConfig
from joulebench.config.scenario import ARRIVAL_PROCESSES, SCENARIO_MODES


def _hash_before_issue_16(cfg: ExperimentConfig) -> str:
    """config_hash as it was computed before the scenario fields (and the other fields
    added since, all at their defaults here) existed."""
    data = cfg.model_dump(mode="json")
    for name in HASH_OMITTED_AT:
        del data[name]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def test_configs_without_the_new_fields_keep_their_hash_and_checkpoints() -> None:
    for cfg in (
        ExperimentConfig(model="m"),
        ExperimentConfig(model="m", batch_size=4, scenario={"mode": "offline"}),
        ExperimentConfig(model="m", count_prefill_energy=None),
    ):
        assert cfg.config_hash() == _hash_before_issue_16(cfg)


def test_serving_settings_and_the_prefill_switch_change_the_hash() -> None:
    base = ExperimentConfig(model="m")
    hashes = {
        base.config_hash(),
        ExperimentConfig(model="m", scenario={"mode": "serving"}).config_hash(),
        ExperimentConfig(
            model="m", scenario={"mode": "serving", "request_rate": 8.0}
        ).config_hash(),
        ExperimentConfig(model="m", count_prefill_energy=True).config_hash(),
        ExperimentConfig(model="m", count_prefill_energy=False).config_hash(),
    }
    assert len(hashes) == 5


def test_defaults_and_vocabulary() -> None:
    sc = ExperimentConfig(model="m").scenario
    assert (sc.mode, sc.arrival, sc.request_rate, sc.max_concurrency, sc.num_requests) == (
        "offline",
        "poisson",
        4.0,
        32,
        256,
    )
    assert SCENARIO_MODES == ("offline", "serving")
    assert ARRIVAL_PROCESSES == ("poisson", "constant", "burst")


@pytest.mark.parametrize(
    ("scenario", "extra", "words"),
    [
        ({"mode": "serving", "request_rate": -1.0}, {}, "greater than 0"),
        ({"mode": "serving", "request_rate": 0.0}, {}, "greater than 0"),
        ({"mode": "serving", "max_concurrency": 0}, {}, "greater than or equal to 1"),
        ({"mode": "serving", "num_requests": 0}, {}, "greater than or equal to 1"),
        ({"slo_tpot_ms": 200.0}, {}, "set scenario.mode: serving"),
        ({"mode": "serving"}, {"num_processes": 2}, "set num_processes: 1"),
        ({"mode": "batch"}, {}, "'offline' or 'serving'"),
        ({"mode": "serving", "request_rate": "4"}, {}, "valid number"),
    ],
)
def test_bad_scenarios_are_refused_with_the_fix(scenario: dict, extra: dict, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        ExperimentConfig(model="m", scenario=scenario, **extra)
    assert words in str(err.value)
