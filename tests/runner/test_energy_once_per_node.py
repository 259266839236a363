"""The original system summed a machine-level meter across accelerate processes, so two
processes reported about twice the energy of one. Here the same workload in 1 and in 2
processes, with the same meter, must report about the same node power."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.results import Identity
from joulebench.results.records import (
    BatchRecord,
    ComputeSection,
    EnergySection,
    InferenceSection,
    ProcessEnergy,
    RankRecord,
    SetupSection,
)
from joulebench.schedulers.job import run_experiment

pytestmark = pytest.mark.e2e


def run(checkout: Path, processes: int, experiment_id: str) -> dict:
    config = ExperimentConfig(
        model="models/tiny-llama",
        device="cpu",
        num_processes=processes,
        num_prompts=48,
        batch_size=4,
        max_input_tokens=64,
        max_output_tokens=64,
        min_output_tokens=64,
        warmup_iterations=1,
        energy_meter="codecarbon",
        idle_baseline_s=0,
        count_flops=False,
        save_outputs=False,
    )
    return run_experiment(config, Identity(experiment_id), checkout / "results")


def test_two_processes_report_one_node_not_twice_the_energy(checkout: Path) -> None:
    one = run(checkout, 1, "0001")["energy"]
    sections = run(checkout, 2, "0002")
    two = sections["energy"]
    assert len(one["per_node"]) == len(two["per_node"]) == 1
    power = {
        n: e["energy_j"] / e["per_node"][next(iter(e["per_node"]))]["duration_s"]
        for n, e in ((1, one), (2, two))
    }
    # Summing per-process machine readings would give ~2x; one reading per node ~1x.
    assert 0.6 < power[2] / power[1] < 1.5, power
    assert two["energy_j"] < 1.6 * one["energy_j"], (one["energy_j"], two["energy_j"])
    per_rank1 = json.loads(
        (
            checkout
            / "results"
            / "raw_results"
            / "0002"
            / "0002_6_local_energy_results_process_1.json"
        ).read_text()
    )
    assert per_rank1["energy"] is None
    # who else used the CPUs: the node's counters once, both processes' CPU time as ours
    (load,) = two["host_load_by_node"].values()
    assert load["own_cpu_s"] > 0 and 0.0 <= load["others_cpu_share"] <= 1.0
    assert two["others_cpu_share"] == load["others_cpu_share"]
    # The typed records name exactly what the processes and the sections hold.
    for name, record in (
        ("setup", SetupSection),
        ("inference", InferenceSection),
        ("compute", ComputeSection),
        ("energy", EnergySection),
    ):
        assert record.__required_keys__ <= set(sections[name]) <= _keys(record), name
    assert all(set(p) == _keys(ProcessEnergy) for p in sections["per_process"])
    for rank in (0, 1):
        raw = json.loads(
            (
                checkout / "results" / "raw_results" / "0002" / ".work" / f"rank_{rank}.json"
            ).read_text()
        )
        assert RankRecord.__required_keys__ <= set(raw) <= _keys(RankRecord)
        assert not {"serving", "prefill"} & set(raw)  # an offline run on an estimate meter
        for batch in raw["batches"].values():
            assert BatchRecord.__required_keys__ <= set(batch) <= _keys(BatchRecord)


def _keys(record: type) -> set[str]:
    return set(record.__required_keys__ | record.__optional_keys__)  # type: ignore[attr-defined]
