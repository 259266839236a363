"""Aggregation rules on literal worker outputs: energy once per node, resumed batches."""

from __future__ import annotations

from typing import Any

import pytest

from joulebench.results import aggregate
from joulebench.results.stats import latency_summary, percentile


def energy(joules: float) -> dict[str, Any]:
    return {
        "meter": "nvml",
        "method": "counter",
        "duration_s": 2.0,
        "energy_j_by_device": {"gpu:A": joules},
        "is_estimate": False,
        "emissions_kg": None,
        "details": {},
    }


def rank(
    r: int,
    local: int,
    host: str,
    joules: float | None,
    resumed: list[int] = (),
    window_s: float = 2.0,
) -> dict[str, Any]:
    batches = {
        str(i): {
            "num_prompts": 2,
            "input_tokens": 10,
            "output_tokens": 8,
            "latency_s": 0.1 * (i + 1),
        }
        for i in range(3)
    }
    return {
        "rank": r,
        "local_rank": local,
        "host": host,
        "window_s": window_s,
        "batches": batches,
        "resumed_batches": list(resumed),
        "energy": energy(joules) if joules is not None else None,
        "memory": {"peak_rss_bytes": 100 + r},
        "flops": {"linear_params": 1000, "analytic_method": "2N"},
    }


def test_processes_of_one_node_are_never_summed() -> None:
    ranks = [rank(0, 0, "n1", 100.0), rank(1, 1, "n1", None)]
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["energy_j"] == 100.0
    assert out["energy_per_output_token_j"] == pytest.approx(100.0 / 48)


def test_a_stray_measurement_from_a_non_zero_local_rank_is_ignored() -> None:
    ranks = [rank(0, 0, "n1", 100.0), rank(1, 1, "n1", 100.0)]
    assert aggregate.node_energies(ranks)["n1"].energy_j == 100.0
    assert len(aggregate.node_energies(ranks)) == 1


def test_nodes_are_summed() -> None:
    ranks = [rank(0, 0, "n1", 100.0), rank(1, 1, "n1", None), rank(2, 0, "n2", 60.0)]
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["energy_j"] == 160.0
    assert set(out["energy_j_by_device"]) == {"n1/gpu:A", "n2/gpu:A"}


def test_each_nodes_reading_is_kept_apart_with_host_gpus_and_flags() -> None:
    ranks = [rank(0, 0, "n1", 100.0), rank(1, 1, "n1", None), rank(2, 0, "n2", 60.0)]
    ranks[0]["cuda_visible_devices"], ranks[2]["cuda_visible_devices"] = "0,1", "2,3"
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    per_node = out["per_node"]
    assert sorted(per_node) == ["n1", "n2"]
    assert [per_node[h]["energy_j"] for h in ("n1", "n2")] == [100.0, 60.0]
    assert (per_node["n1"]["host"], per_node["n1"]["gpus"]) == ("n1", "0,1")
    assert (per_node["n2"]["method"], per_node["n2"]["gpus"]) == ("counter", "2,3")
    assert out["energy_j"] == sum(n["energy_j"] for n in per_node.values())
    assert per_node["n1"]["quality_flags"] == []


def test_nodes_of_one_machine_are_flagged_for_host_level_meters_only() -> None:
    ranks = [rank(0, 0, "n1", 100.0), rank(1, 0, "n2", 60.0)]
    for r in ranks:
        r["boot_id"] = "same-boot"
    inf = aggregate.inference_metrics(ranks)
    nvml = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert "nodes_share_a_machine" not in nvml["quality_flags"]  # each node's own GPUs
    for r in ranks:
        r["energy"] = {**r["energy"], "meter": "codecarbon", "method": "estimate"}
    host = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert "nodes_share_a_machine" in host["quality_flags"]
    assert all("nodes_share_a_machine" in n["quality_flags"] for n in host["per_node"].values())
    ranks[1]["boot_id"] = "other-boot"
    apart = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert "nodes_share_a_machine" not in apart["quality_flags"]


def test_resumed_batches_count_for_totals_but_not_for_the_window() -> None:
    ranks = [rank(0, 0, "n1", 50.0, resumed=[0, 1]), rank(1, 1, "n1", None, resumed=[0])]
    inf = aggregate.inference_metrics(ranks)
    assert (inf["num_batches"], inf["batches_resumed"], inf["batches_measured"]) == (6, 3, 3)
    assert inf["total_output_tokens"] == 48 and inf["measured_output_tokens"] == 24
    assert inf["throughput_output_tokens_per_s"] == pytest.approx(24 / 2.0)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["energy_per_output_token_j"] == pytest.approx(50.0 / 24)
    assert out["flops_per_j"] == pytest.approx(2 * 1000 * (30 + 24) / 50.0)


def test_dynamic_energy_uses_the_node_baseline_over_the_window() -> None:
    ranks = [rank(0, 0, "n1", 100.0), rank(1, 1, "n1", None)]
    ranks[0]["baseline"] = {"power_w": 10.0, "source": "cache"}
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["baseline_power_w"] == 10.0
    assert out["dynamic_energy_j"] == pytest.approx(100.0 - 10.0 * 2.0)
    assert out["dynamic_energy_per_output_token_j"] == pytest.approx(80.0 / 48)


def test_no_baseline_means_no_dynamic_energy() -> None:
    ranks = [rank(0, 0, "n1", 100.0)]
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["baseline_power_w"] is None and out["dynamic_energy_j"] is None


def test_request_latency_weights_batches_by_their_requests() -> None:
    batches = [
        {"num_prompts": 3, "latency_s": 1.0, "ttft_s": 0.1, "decode_s": 0.9, "decode_steps": 9},
        {"num_prompts": 1, "latency_s": 5.0, "ttft_s": 0.5, "decode_s": 4.5, "decode_steps": 9},
    ]
    phases = aggregate.latency_phases(batches, batches)
    assert phases["request_latency"]["p50_s"] == 1.0  # three of four requests took 1 s
    assert phases["time_to_first_token"]["max_s"] == 0.5
    assert phases["inter_token_latency"]["mean_s"] == pytest.approx((0.1 + 0.5) / 2)
    assert phases["prefill_s"] == pytest.approx(0.6) and phases["energy_by_phase"] is None


def test_gpu_energy_in_aienergyscore_units() -> None:
    ranks = [rank(0, 0, "n1", 360.0), rank(1, 1, "n1", None)]
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    # 360 J = 0.1 Wh over 12 queries -> 8.33 Wh per 1,000 queries
    assert out["gpu_energy_wh_per_1000_queries"] == pytest.approx(0.1 / 12 * 1000)


def test_batches_run_after_the_steady_state_window_are_not_measured() -> None:
    ranks = [rank(0, 0, "n1", 50.0)]
    ranks[0]["outside_window_batches"] = [2]
    inf = aggregate.inference_metrics(ranks)
    assert (inf["batches_measured"], inf["batches_outside_window"]) == (2, 1)
    assert inf["measured_prompts"] == 4 and inf["num_prompts"] == 6


def test_percentiles_match_numpy_linear_interpolation() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(8.8)
    assert percentile(values, 99) == pytest.approx(9.76)
    assert latency_summary([])["p99_s"] is None
    assert latency_summary([2.0])["mean_s"] == 2.0


def test_extra_meters_report_their_own_figures_once_per_node() -> None:
    ranks = [rank(0, 0, "n1", 100.0), rank(1, 1, "n1", None), rank(2, 0, "n2", 80.0)]
    rapl = {**energy(30.0), "meter": "rapl", "energy_j_by_device": {"cpu:package-0": 30.0}}
    ranks[0]["extra_energy"] = {"rapl": rapl, "codecarbon": {"unavailable": "no"}}
    ranks[1]["extra_energy"] = {"rapl": rapl}  # a non-zero local rank never counts
    ranks[2]["extra_energy"] = {"rapl": rapl}
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["energy_j"] == 180.0  # the primary meter's figure is unchanged
    assert out["other_meters"]["rapl"]["energy_j"] == 60.0
    assert out["other_meters"]["codecarbon"]["energy_j"] is None


def test_peak_memory_is_the_gpus_on_a_gpu_run_and_host_rss_on_a_cpu_run() -> None:
    # The H100 float16 run: 6.7 GB host RSS, far less on the GPU.
    gpu = aggregate.peak_memory_summary(
        {
            "0": {"peak_rss_bytes": 6_734_000_000, "cuda_max_allocated_bytes": 2_300_000_000},
            "1": {"peak_rss_bytes": 6_000_000_000, "cuda_max_allocated_bytes": 2_400_000_000},
        }
    )
    assert gpu == {
        "peak_memory_bytes_max": 2_400_000_000,
        "peak_memory_bytes_sum": 4_700_000_000,
        "peak_memory_source": "cuda_max_allocated",
        "peak_host_rss_bytes_max": 6_734_000_000,
    }
    cpu = aggregate.peak_memory_summary(
        {"0": {"peak_rss_bytes": 300}, "1": {"peak_rss_bytes": 500}}
    )
    assert cpu == {
        "peak_memory_bytes_max": 500,
        "peak_memory_bytes_sum": 800,
        "peak_memory_source": "host_rss",
        "peak_host_rss_bytes_max": 500,
    }


def test_host_load_sums_every_process_of_a_node_as_ours() -> None:
    start = {"busy_s": 10.0, "steal_s": 0.0, "cpus": 2, "load_avg_1m": 1.0}
    end = {"busy_s": 14.0, "steal_s": 0.0, "cpus": 2, "load_avg_1m": 2.0}
    ranks = [
        {
            **rank(0, 0, "n1", 100.0),
            "node_cpu": {"start": start, "end": end},
            "own_window_cpu_s": 1.0,
        },
        {**rank(1, 1, "n1", None), "own_window_cpu_s": 1.0},
        rank(2, 0, "n2", 60.0),
    ]  # no counters (an older worker, or no /proc)
    by_node = aggregate.host_load_by_node(ranks)
    # 4 CPU-seconds busy in a 2 s window on 2 CPUs, 2 of them ours: others took 50 %
    assert by_node["n1"]["others_cpu_share"] == pytest.approx(0.5)
    assert by_node["n2"] is None
    inf = aggregate.inference_metrics(ranks)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["others_cpu_share"] == pytest.approx(0.5)


def tensor_ranks(window_s: tuple[float, float] = (2.0, 2.5)) -> list[dict[str, Any]]:
    """Two tensor ranks of one node: the same three batches, energy on local rank 0."""
    return [
        {**rank(0, 0, "n1", 100.0, window_s=window_s[0]), "parallelism": "tensor"},
        {**rank(1, 1, "n1", None, window_s=window_s[1]), "parallelism": "tensor"},
    ]


def test_tensor_ranks_count_their_shared_batches_once() -> None:
    ranks = tensor_ranks()
    inf = aggregate.inference_metrics(ranks)
    assert inf["total_output_tokens"] == 24  # 3 batches x 8, not x 2 ranks
    assert inf["measured_prompts"] == 6
    assert inf["num_batches"] == 3
    assert inf["window_s"] == 2.5  # the slowest rank closes the window
    assert inf["throughput_output_tokens_per_s"] == pytest.approx(24 / 2.5)
    out = aggregate.energy_metrics(ranks, inf, aggregate.compute_metrics(ranks, inf))
    assert out["energy_per_output_token_j"] == pytest.approx(100.0 / 24)
    data = [{**r, "parallelism": "data"} for r in ranks]
    assert aggregate.inference_metrics(data)["total_output_tokens"] == 48


def test_tensor_flops_are_the_whole_models_and_memory_is_per_process_max_and_sum() -> None:
    ranks = tensor_ranks()
    inf = aggregate.inference_metrics(ranks)
    comp = aggregate.compute_metrics(ranks, inf)
    # linear_params is the global (DTensor) count: 2 x params x tokens counted once
    assert comp["flops"]["analytic_total_flops"] == 2 * 1000 * (30 + 24)
    assert set(comp["memory_by_process"]) == {"0", "1"}
    assert comp["peak_memory_bytes_max"] == 101
    assert comp["peak_memory_bytes_sum"] == 201
    ranks[0]["flops"]["counted_prefill_flops"] = 500
    counted = aggregate.compute_metrics(ranks, inf)["flops"]
    assert "global rank 0 only" in counted["counted_method"]


def test_a_tensor_ranks_process_file_says_its_tokens_are_not_added() -> None:
    zero, one = (aggregate.per_process_energy(r) for r in tensor_ranks())
    assert zero["note"] is None and zero["energy"] is not None
    assert one["note"] is not None and "not added again" in one["note"]
    data_one = aggregate.per_process_energy(rank(1, 1, "n1", None))
    assert data_one["note"] is not None and "contributes tokens" in data_one["note"]
