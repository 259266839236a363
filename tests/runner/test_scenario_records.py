"""The records of the scenario figures, from real runs on CPU: a serving experiment and
an offline one with the prefill-only window (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.results import Identity
from joulebench.results.records import (
    InferenceSection,
    PhaseEnergy,
    RankRecord,
    ServingRecord,
    ServingSection,
)
from joulebench.results.row import CSV_COLUMNS, flatten
from joulebench.results.scenario_row import SCENARIO_COLUMNS
from joulebench.schedulers.job import run_experiment

pytestmark = pytest.mark.e2e

COMMON = {
    "model": "models/tiny-llama",
    "device": "cpu",
    "max_input_tokens": 64,
    "max_output_tokens": 24,
    "min_output_tokens": 24,
    "warmup_iterations": 0,
    "energy_meter": "codecarbon",
    "idle_baseline_s": 0,
    "count_flops": False,
}


def _keys(record: type) -> set[str]:
    return set(record.__required_keys__ | record.__optional_keys__)  # type: ignore[attr-defined]


def _raw(checkout: Path, experiment_id: str) -> dict:
    work = checkout / "results" / "raw_results" / experiment_id / ".work"
    return json.loads((work / "rank_0.json").read_text())


def test_an_offline_run_with_count_prefill_energy_splits_prefill_and_decode(
    checkout: Path,
) -> None:
    cfg = ExperimentConfig(
        **COMMON, num_prompts=16, batch_size=4, count_prefill_energy=True, save_outputs=False
    )
    sections = run_experiment(cfg, Identity("0001"), checkout / "results")
    phases = sections["inference"]["energy_by_phase"]
    assert phases is not None and set(phases) == _keys(PhaseEnergy)
    total = sections["energy"]["energy_j"]
    assert phases["prefill_energy_j"] is not None and phases["decode_energy_j"] is not None
    assert phases["prefill_energy_j"] + phases["decode_energy_j"] == pytest.approx(total)
    assert phases["prefill_energy_per_input_token_j"] == pytest.approx(
        phases["prefill_energy_j"] / sections["inference"]["measured_input_tokens"]
    )
    # A codecarbon estimate over a fraction of a second cannot resolve a phase.
    assert "prefill_window_too_short" in phases["quality_flags"]
    assert "prefill_window_too_short" in sections["energy"]["quality_flags"]
    raw = _raw(checkout, "0001")
    assert RankRecord.__required_keys__ <= set(raw) <= _keys(RankRecord) and "prefill" in raw
    assert raw["prefill"]["num_prompts"] == 16
    assert 0 < raw["prefill"]["window_s"] < raw["window_s"]


def test_estimate_meters_skip_the_prefill_window_unless_asked() -> None:
    from joulebench.runner.prefill_window import wants_prefill_split

    base = ExperimentConfig(**COMMON)
    assert not wants_prefill_split(base, "cpu")  # codecarbon estimates
    assert wants_prefill_split(base.model_copy(update={"energy_meter": "rapl"}), "cpu")
    assert wants_prefill_split(ExperimentConfig(**{**COMMON, "energy_meter": "auto"}), "cuda")
    serving = ExperimentConfig(**COMMON, scenario={"mode": "serving"}, count_prefill_energy=True)
    assert not wants_prefill_split(serving, "cpu")  # served requests are split per step


def test_a_serving_run_writes_its_engine_record_and_section(checkout: Path) -> None:
    cfg = ExperimentConfig(
        **COMMON,
        scenario={
            "mode": "serving",
            "arrival": "poisson",
            "request_rate": 50.0,
            "max_concurrency": 3,
            "num_requests": 6,
            "slo_ttft_ms": 5000.0,
        },
    )
    sections = run_experiment(cfg, Identity("0001"), checkout / "results")
    inference = sections["inference"]
    assert InferenceSection.__required_keys__ <= set(inference) <= _keys(InferenceSection)
    serving = inference["serving"]
    assert set(serving) == _keys(ServingSection)
    assert serving["slo_attainment"] == 1.0 and serving["num_requests"] == 6
    assert inference["num_prompts"] == 6 and inference["total_output_tokens"] == 6 * 24
    assert inference["phase_timing_method"].startswith("serving engine steps")
    from transformers import AutoTokenizer

    outputs = sections["outputs"]
    assert outputs is not None and [len(t) for t in outputs["token_ids"]] == [24] * 6
    tok = AutoTokenizer.from_pretrained(checkout / "models" / "tiny-llama")
    assert outputs["texts"] == tok.batch_decode(outputs["token_ids"], skip_special_tokens=True)
    assert 0 < inference["prefill_s"] and 0 < inference["decode_s"]
    assert inference["prefill_s"] + inference["decode_s"] <= inference["window_s"]
    raw = _raw(checkout, "0001")
    assert set(raw["serving"]) == _keys(ServingRecord)
    steps = raw["serving"]["steps"]
    processed = sum(sum(s["tokens"].values()) for s in steps)
    prompts = sum(r["input_tokens"] for r in raw["serving"]["requests"])
    assert processed == prompts + 6 * 23  # each prompt once, then one token per decode
    assert max(len(s["tokens"]) for s in steps) <= 3
    # The CSV row carries the serving columns, appended after every column older than them.
    start = CSV_COLUMNS.index("others_cpu_share") + 1
    assert CSV_COLUMNS[start : start + len(SCENARIO_COLUMNS)] == list(SCENARIO_COLUMNS)
    cells = flatten(sections)
    assert {c for c in SCENARIO_COLUMNS if c not in cells} == {  # offline-only cells
        "prefill_energy_j",
        "decode_energy_j",
        "prefill_energy_per_input_token_j",
        "decode_energy_per_output_token_j",
    }
    assert cells["scenario_mode"] == "serving" and cells["batching_policy"]
    assert cells["energy_per_request_j_mean"] > 0
    assert cells["schedule_hash"] == serving["schedule_hash"]
