"""Host energy apart from GPU energy, apportioned on a shared node (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from joulebench.measure.host_share import node_sharing
from joulebench.measure.quality import HOST_ENERGY_SHARED, is_flagged
from joulebench.results.host_energy import with_host_energy


def energy_section(by_device: dict[str, float], load: dict[str, float] | None) -> Any:
    total = sum(by_device.values())
    return {
        "energy_j": total,
        "energy_kwh": total / 3.6e6,
        "emissions_kg": total * 1e-7,
        "energy_per_output_token_j": total / 100,
        "output_tokens_per_j": 100 / total,
        "flops_per_j": 1e9 / total,
        "queries_per_kwh": 10 / (total / 3.6e6),
        "baseline_power_w": 20.0,
        "dynamic_energy_j": total - 20.0 * 2.0,
        "dynamic_energy_per_output_token_j": (total - 40.0) / 100,
        "baseline_by_node": {
            "n1": {"power_w": 20.0, "power_w_by_device": {"gpu:GPU-1": 10.0, "cpu": 10.0}}
        },
        "per_node": {"n1": {"energy_j_by_device": by_device}},
        "other_meters": {},
        "host_load_by_node": {"n1": load},
        "quality_flags": ["estimate_only"],
    }


INFERENCE: Any = {"window_s": 2.0, "measured_output_tokens": 100}


def test_alone_the_split_is_reported_and_nothing_changes() -> None:
    energy = energy_section({"gpu:GPU-1": 300.0, "cpu": 80.0, "ram": 20.0}, None)
    out = with_host_energy(energy, INFERENCE, node_sharing({}, 8))
    assert (out["host_energy_j"], out["gpu_energy_j"]) == (100.0, 300.0)
    assert out["energy_j"] == 400.0 and out["energy_scope"] == "gpu+host"
    assert out["host_energy_apportioned_j"] is None and out["host_share_method"] is None
    assert HOST_ENERGY_SHARED not in out["quality_flags"]


def test_two_concurrent_experiments_never_count_a_host_joule_twice() -> None:
    # One node, one window: host meters read 100 J for the whole node in each
    # experiment's result; GPU counters read each experiment's own GPU.
    node_host_j = 100.0
    a = energy_section(
        {"gpu:GPU-1": 300.0, "cpu": 80.0, "ram": 20.0},
        {"own_cpu_s": 3.0, "node_busy_cpu_s": 8.0},
    )
    b = energy_section(
        {"gpu:GPU-2": 200.0, "cpu": 80.0, "ram": 20.0},
        {"own_cpu_s": 5.0, "node_busy_cpu_s": 8.0},
    )
    out_a = with_host_energy(a, INFERENCE, node_sharing({}, 8, ["0002"], "cuda:0"))
    out_b = with_host_energy(b, INFERENCE, node_sharing({}, 8, ["0001"], "cuda:1"))
    for out in (out_a, out_b):
        assert HOST_ENERGY_SHARED in out["quality_flags"]
        assert not is_flagged(";".join(out["quality_flags"]))  # labelled, still counted
        assert out["host_energy_j"] == node_host_j  # the whole node's reading, as read
        assert out["host_share_method"] == "cpu_time_share"
        assert out["energy_scope"] == "gpu+host_apportioned"
        assert out["host_sharing"]["concurrent_experiment_ids"]
    assert out_a["host_energy_apportioned_j"] == pytest.approx(37.5)
    assert out_b["host_energy_apportioned_j"] == pytest.approx(62.5)
    total = out_a["energy_j"] + out_b["energy_j"]
    assert total <= 300.0 + 200.0 + node_host_j + 1e-9
    assert out_a["energy_j"] == pytest.approx(337.5)


def test_figures_derived_from_energy_follow_the_apportioned_total() -> None:
    energy = energy_section({"gpu:GPU-1": 300.0, "cpu": 100.0}, None)
    sharing = node_sharing({}, 4, ["0009"], "cuda:0")
    sharing["job_cpus"] = 1  # no /proc reading: the allotted share, 1 of 4 CPUs
    out = with_host_energy(energy, INFERENCE, sharing)
    assert out["host_share_method"] == "cpu_allocation_share" and out["host_share"] == 0.25
    assert out["energy_j"] == pytest.approx(325.0)
    assert out["energy_per_output_token_j"] == pytest.approx(3.25)
    assert out["output_tokens_per_j"] == pytest.approx(100 / 325.0)
    assert out["energy_kwh"] == pytest.approx(325.0 / 3.6e6)
    assert out["queries_per_kwh"] == pytest.approx(10 / (325.0 / 3.6e6))
    # baseline: GPU part whole, host part by the same share
    assert out["baseline_power_w"] == pytest.approx(10.0 + 2.5)
    assert out["dynamic_energy_j"] == pytest.approx(325.0 - 12.5 * 2.0)


def test_gpu_only_energy_on_a_shared_node_is_exact_and_not_flagged() -> None:
    energy = energy_section({"gpu:GPU-1": 300.0}, {"own_cpu_s": 1.0, "node_busy_cpu_s": 4.0})
    out = with_host_energy(energy, INFERENCE, node_sharing({}, 8, ["0002"], "cuda:0"))
    assert out["energy_j"] == 300.0 and out["energy_scope"] == "gpu"
    assert HOST_ENERGY_SHARED not in out["quality_flags"]
