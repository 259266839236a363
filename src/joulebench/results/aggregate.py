"""Combine per-process worker outputs into one experiment's metrics.

Energy rule: each node is measured once, by its local rank 0, over a window that
spans all of that node's processes. Nodes are summed; processes of one node never are.
Throughput and energy cover the batches run in the measured window; batches restored
from a checkpoint count for latency and token totals but were not inside the window.
Tokens, latencies and outputs come from the ranks that own their batches: all of them in
data parallelism, global rank 0 alone in tensor parallelism (every rank runs the same
batches there, so counting each would count every token world-size times).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from joulebench.config.parallelism import DATA, TENSOR, counts_tokens
from joulebench.measure.base import EnergyMeasurement
from joulebench.measure.baseline import dynamic_energy_j
from joulebench.measure.host_load import window_load
from joulebench.measure.quality import (
    HOST_LEVEL_METERS,
    dynamic_energy_flags,
    quality_flags,
    shared_machine_hosts,
)
from joulebench.results.records import (
    BatchRecord,
    ComputeSection,
    EnergySection,
    InferenceSection,
    ProcessEnergy,
    RankRecord,
)
from joulebench.results.stats import latency_summary, ratio


def _batches(rank: RankRecord) -> list[tuple[int, BatchRecord]]:
    return [(int(k), v) for k, v in rank["batches"].items()]


def node_energies(ranks: list[RankRecord]) -> dict[str, EnergyMeasurement]:
    """host -> the measurement its local rank 0 took (one per node, by construction)."""
    out: dict[str, EnergyMeasurement] = {}
    for rank in ranks:
        if rank.get("local_rank") == 0 and rank.get("energy"):
            out[rank["host"]] = EnergyMeasurement.from_dict(rank["energy"])
    return out


def parallelism_of(ranks: list[RankRecord]) -> str:
    """The experiment's parallelism (records of versions before it are data parallel)."""
    return str(ranks[0].get("parallelism", DATA)) if ranks else DATA


def token_ranks(ranks: list[RankRecord]) -> list[RankRecord]:
    """The ranks whose batches count: every one, or global rank 0 alone in tensor mode."""
    return [r for r in ranks if counts_tokens(r.get("parallelism", DATA), r["rank"])]


def inference_metrics(ranks: list[RankRecord]) -> InferenceSection:
    """Tokens and latencies of the counting ranks; the window is the slowest rank's."""
    all_batches: list[BatchRecord] = []
    measured: list[BatchRecord] = []
    counting = token_ranks(ranks)
    for rank in counting:
        unmeasured = set(rank.get("resumed_batches", [])) | set(
            rank.get("outside_window_batches", [])
        )
        for index, batch in _batches(rank):
            all_batches.append(batch)
            if index not in unmeasured:
                measured.append(batch)
    window_s = max((r["window_s"] for r in ranks), default=0.0)
    m_out = sum(b["output_tokens"] for b in measured)
    m_in = sum(b["input_tokens"] for b in measured)
    m_prompts = sum(b["num_prompts"] for b in measured)
    return {
        **latency_phases(all_batches, measured),
        "num_prompts": sum(b["num_prompts"] for b in all_batches),
        "num_batches": len(all_batches),
        "batches_resumed": sum(len(r.get("resumed_batches", [])) for r in counting),
        "batches_outside_window": sum(len(r.get("outside_window_batches", [])) for r in counting),
        "batches_measured": len(measured),
        "total_input_tokens": sum(b["input_tokens"] for b in all_batches),
        "total_output_tokens": sum(b["output_tokens"] for b in all_batches),
        "measured_input_tokens": m_in,
        "measured_output_tokens": m_out,
        "measured_prompts": m_prompts,
        "window_s": window_s,
        "throughput_output_tokens_per_s": ratio(m_out, window_s),
        "throughput_total_tokens_per_s": ratio(m_in + m_out, window_s),
        "throughput_queries_per_s": ratio(m_prompts, window_s),
        "batch_latency": latency_summary([b["latency_s"] for b in all_batches]),
        "throughput_scope": "batches run in the measured window (resumed ones excluded)",
    }


def latency_phases(all_batches: list[BatchRecord], measured: list[BatchRecord]) -> dict[str, Any]:
    """Per-request latency, TTFT and inter-token latency.

    Static batching returns every request of a batch together, so a request's latency
    is its batch's; percentiles are taken over requests (batches weighted by size).
    """
    per_request = [b["latency_s"] for b in all_batches for _ in range(b["num_prompts"])]
    timed = [b for b in all_batches if "ttft_s" in b]
    ttft = [b["ttft_s"] for b in timed for _ in range(b["num_prompts"])]
    itl = [b["decode_s"] / b["decode_steps"] for b in timed if b.get("decode_steps")]
    m_timed = [b for b in measured if "ttft_s" in b]
    return {
        "request_latency": latency_summary(per_request),
        "time_to_first_token": latency_summary(ttft),
        "inter_token_latency": latency_summary(itl),
        "prefill_s": sum(b["ttft_s"] for b in m_timed) if m_timed else None,
        "decode_s": sum(b["decode_s"] for b in m_timed) if m_timed else None,
        "phase_timing_method": _timing_method(timed),
        "energy_by_phase": None,
        "energy_by_phase_note": "not split: the node is read once per measured window, and "
        "prefill and decode of successive batches interleave within it",
    }


def peak_memory_summary(peaks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The headline peak: GPU memory on a GPU run, host RSS on a CPU run.

    They are not mixed: on an H100 a float16 run of a float32 checkpoint peaked at 6.7 GB of
    host RSS (the cast copy plus the mapped file) against 2-3 GB on the GPU, and the max of
    the two read as if float16 needed more memory than float32.
    """
    rss = [m["peak_rss_bytes"] for m in peaks.values()]
    gpu = [m["cuda_max_allocated_bytes"] for m in peaks.values() if "cuda_max_allocated_bytes" in m]
    headline = gpu or rss
    return {
        "peak_memory_bytes_max": max(headline),
        # What the experiment held at once across processes: with a sharded model (tensor)
        # each process holds a part, and the sum is the model's footprint.
        "peak_memory_bytes_sum": sum(headline),
        "peak_memory_source": "cuda_max_allocated" if gpu else "host_rss",
        "peak_host_rss_bytes_max": max(rss),
    }


def _timing_method(timed: list[BatchRecord]) -> str | None:
    if not timed:
        return None
    clocks = sorted({b.get("step_clock", "host") for b in timed})
    where = {"host": "host clock", "cuda_events": "CUDA events in the stream (no per-step sync)"}
    return (
        "per-step timestamps from a never-stopping stopping criterion, "
        f"{' and '.join(where.get(c, c) for c in clocks)}: TTFT = first step - start"
    )


def compute_metrics(ranks: list[RankRecord], inference: InferenceSection) -> ComputeSection:
    rank0 = next(r for r in ranks if r["rank"] == 0)
    linear = rank0["flops"].get("linear_params", 0)
    counted = {
        k: v
        for k, v in rank0["flops"].items()
        if k.startswith(("counted", "analytic_prefill", "prefill", "attention"))
    }
    peaks = {str(r["rank"]): r["memory"] for r in ranks}
    return {
        "flops": {
            "analytic_total_flops": 2
            * linear
            * (inference["total_input_tokens"] + inference["total_output_tokens"]),
            "analytic_measured_flops": 2
            * linear
            * (inference["measured_input_tokens"] + inference["measured_output_tokens"]),
            "analytic_method": rank0["flops"].get("analytic_method"),
            "linear_params": linear,
            **counted,
            "counted_method": _counted_method(ranks) if counted else None,
        },
        "memory_by_process": peaks,
        **peak_memory_summary(peaks),
    }


def _counted_method(ranks: list[RankRecord]) -> str:
    method = "FlopCounterMode on one untimed prefill of the first batch"
    if parallelism_of(ranks) == TENSOR:
        return (
            f"{method}, counted on global rank 0 only: its shard of the sharded layers "
            f"(about 1/{len(ranks)} of them) plus the layers every rank runs whole"
        )
    return method


def energy_metrics(
    ranks: list[RankRecord], inference: InferenceSection, compute: ComputeSection
) -> EnergySection:
    nodes = node_energies(ranks)
    energy_j = sum(m.energy_j for m in nodes.values()) if nodes else None
    by_device: dict[str, float] = defaultdict(float)
    for host, m in nodes.items():
        for device, joules in m.energy_j_by_device.items():
            by_device[f"{host}/{device}"] += joules
    emissions = [m.emissions_kg for m in nodes.values() if m.emissions_kg is not None]
    methods = sorted({m.method for m in nodes.values()})
    out_tokens = inference["measured_output_tokens"]
    energy_kwh = energy_j / 3.6e6 if energy_j is not None else None
    per_node = per_node_readings(ranks, nodes, inference["window_s"])
    flags = sorted({f for reading in per_node.values() for f in reading["quality_flags"]})
    baselines = {
        r["host"]: r["baseline"] for r in ranks if r.get("local_rank") == 0 and r.get("baseline")
    }
    baseline_w = (
        sum(b["power_w"] for b in baselines.values())
        if nodes and set(baselines) >= set(nodes)
        else None
    )
    dynamic_j = dynamic_energy_j(energy_j, baseline_w, inference["window_s"])
    flags = sorted({*flags, *dynamic_energy_flags(energy_j, dynamic_j)})
    if not nodes:
        flags = ["no_energy_measured"]
    load = host_load_by_node(ranks)
    return {
        "energy_j": energy_j,
        "energy_kwh": energy_kwh,
        "energy_j_by_device": dict(by_device),
        "meter": ",".join(sorted({m.meter for m in nodes.values()})) or None,
        "method": ",".join(methods) or None,
        "is_estimate": any(m.is_estimate for m in nodes.values()) if nodes else None,
        "emissions_kg": sum(emissions) if emissions else None,
        "nodes_measured": sorted(nodes),
        "quality_flags": flags,
        "aggregation": "one measurement per node by local rank 0; nodes summed",
        "energy_per_output_token_j": ratio(energy_j, out_tokens),
        "baseline_power_w": baseline_w,
        "dynamic_energy_j": dynamic_j,
        "dynamic_energy_per_output_token_j": ratio(dynamic_j, out_tokens),
        "baseline_by_node": baselines,
        "output_tokens_per_j": ratio(out_tokens, energy_j),
        "flops_per_j": ratio(compute["flops"]["analytic_measured_flops"], energy_j),
        "queries_per_kwh": ratio(inference["measured_prompts"], energy_kwh),
        # AIEnergyScore's unit: GPU energy only, in Wh per 1,000 queries.
        "gpu_energy_wh_per_1000_queries": ratio(
            _gpu_j(nodes) / 3.6 if _gpu_j(nodes) is not None else None,
            inference["measured_prompts"],
        ),
        "per_node": per_node,
        "other_meters": other_meters(ranks, inference["window_s"]),
        "host_load_by_node": load,
        "others_cpu_share": others_cpu_share_max(load),
    }


def per_node_readings(
    ranks: list[RankRecord], nodes: dict[str, EnergyMeasurement], window_s: float
) -> dict[str, dict[str, Any]]:
    """host -> its node's reading as measured (energy_j, method, ...), with the host, the
    GPUs its meter covered and its own quality flags; the total is the sum of these."""
    first = {r["host"]: r for r in ranks if r.get("local_rank") == 0}
    shared = shared_machine_hosts({h: r.get("boot_id") for h, r in first.items()})
    return {
        host: {
            **m.to_dict(),
            "host": host,
            "gpus": first[host].get("cuda_visible_devices") if host in first else None,
            "quality_flags": sorted(
                {
                    *quality_flags(m, window_s),
                    *(
                        ["nodes_share_a_machine"]
                        if host in shared and m.meter in HOST_LEVEL_METERS
                        else []
                    ),
                }
            ),
        }
        for host, m in nodes.items()
    }


def host_load_by_node(ranks: list[RankRecord]) -> dict[str, Any]:
    """host -> what other work did with its CPUs in the window (None where not visible)."""
    out: dict[str, Any] = {}
    for rank in ranks:
        if rank.get("local_rank") != 0:
            continue
        node = rank.get("node_cpu") or {}
        own = [r.get("own_window_cpu_s") or 0.0 for r in ranks if r["host"] == rank["host"]]
        out[rank["host"]] = window_load(node.get("start"), node.get("end"), rank["window_s"], own)
    return out


def others_cpu_share_max(by_node: dict[str, Any]) -> float | None:
    """The busiest node's share of CPU time other work took (the CSV's one figure)."""
    shares = [n["others_cpu_share"] for n in by_node.values() if n]
    return max(shares) if shares else None


def other_meters(ranks: list[RankRecord], window_s: float) -> dict[str, Any]:
    """Each extra meter's own figures (same window, same once-per-node rule)."""
    out: dict[str, Any] = {}
    for rank in ranks:
        if rank.get("local_rank") != 0:
            continue
        for name, reading in (rank.get("extra_energy") or {}).items():
            entry = out.setdefault(name, {"energy_j": 0.0, "per_node": {}, "quality_flags": set()})
            entry["per_node"][rank["host"]] = reading
            if "unavailable" in reading:
                entry["energy_j"] = None
                continue
            m = EnergyMeasurement.from_dict(reading)
            if entry["energy_j"] is not None:
                entry["energy_j"] += m.energy_j
            entry["quality_flags"].update(quality_flags(m, window_s))
    for entry in out.values():
        entry["quality_flags"] = sorted(entry["quality_flags"])
    return out


def _gpu_j(nodes: dict[str, EnergyMeasurement]) -> float | None:
    gpu = [
        j for m in nodes.values() for d, j in m.energy_j_by_device.items() if d.startswith("gpu")
    ]
    return sum(gpu) if gpu else None


def _process_note(rank: RankRecord) -> str | None:
    if not counts_tokens(rank.get("parallelism", DATA), rank["rank"]):
        return (
            "tensor parallelism: this process ran the same batches as global rank 0 on its "
            "shard of the model; its tokens are rank 0's and are not added again"
            + ("" if rank.get("energy") else "; energy is measured once per node by local rank 0")
        )
    if rank.get("energy"):
        return None
    return (
        "energy is measured once per node by local "
        "rank 0; this process contributes tokens, timings and memory only"
    )


def per_process_energy(rank: RankRecord) -> ProcessEnergy:
    """The seed's per-process file; only local rank 0 carries the node's energy."""
    return {
        "process_rank": rank["rank"],
        "local_rank": rank["local_rank"],
        "host": rank["host"],
        "energy": rank.get("energy"),
        "note": _process_note(rank),
        "window_s": rank["window_s"],
        "input_tokens": sum(b["input_tokens"] for b in rank["batches"].values()),
        "output_tokens": sum(b["output_tokens"] for b in rank["batches"].values()),
        "memory": rank["memory"],
    }
