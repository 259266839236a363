"""One flat CSV row per experiment, with a fixed column order.

The order is a constant, not derived from dict iteration, so every row of every run
lines up; new columns are only ever appended at the end.
"""

from __future__ import annotations

from typing import Any

from joulebench.config.parallelism import DATA
from joulebench.results.records import Sections, SetupSection
from joulebench.results.scenario_row import (
    SCENARIO_COLUMNS,
    SCENARIO_STRING_COLUMNS,
    SCENARIO_VARIABLE_COLUMNS,
    scenario_cells,
)

# Config fields copied into the CSV as they are (ExperimentConfig names).
_CONFIG_COLUMNS = (
    "precision",
    "quantization",
    "batch_size",
    "num_prompts",
    "max_input_tokens",
    "max_output_tokens",
    "min_output_tokens",
)

# Figures copied from the inference and energy sections under their own names.
_INFERENCE_COLUMNS = (
    "total_input_tokens",
    "total_output_tokens",
    "measured_output_tokens",
    "window_s",
    "throughput_output_tokens_per_s",
    "throughput_queries_per_s",
)
_ENERGY_COLUMNS = (
    "energy_j",
    "energy_kwh",
    "emissions_kg",
    "energy_per_output_token_j",
    "output_tokens_per_j",
    "flops_per_j",
    "queries_per_kwh",
)
_DYNAMIC_COLUMNS = (
    "baseline_power_w",
    "dynamic_energy_j",
    "dynamic_energy_per_output_token_j",
)

CSV_COLUMNS: list[str] = [
    "experiment_id",
    "key",
    "suite",
    "model",
    "config_name",
    "cycle",
    "attempt",
    "config_hash",
    "task_type",
    "started_at",
    "finished_at",
    "device",
    "num_processes",
    *_CONFIG_COLUMNS,
    "decoder_mode",
    "temperature",
    "top_k",
    "top_p",
    "warmup_iterations",
    "dataset",
    "prompt_hash",
    "batches_total",
    "batches_resumed",
    *_INFERENCE_COLUMNS,
    "latency_mean_s",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
    "flops_analytic_total",
    "flops_counted_prefill",
    "flops_counted_over_analytic",
    "peak_memory_bytes_max",
    "energy_meter",
    "energy_method",
    "energy_is_estimate",
    *_ENERGY_COLUMNS,
    "hosts",
    "slurm_job_id",
    "git_commit",
    "torch_version",
    "transformers_version",
    "batch_size_used",
    "oom_halved_batch",
    "quality_flags",
    *_DYNAMIC_COLUMNS,
    "request_latency_p50_s",
    "request_latency_p90_s",
    "request_latency_p95_s",
    "request_latency_p99_s",
    "ttft_p50_s",
    "ttft_p95_s",
    "itl_mean_s",
    "prefill_s",
    "decode_s",
    "cpu_model",
    "gpu_names",
    "slurm_restart_count",
    "gpu_energy_wh_per_1000_queries",
    "cycle_order_seed",
    "model_revision",
    "git_dirty",
    "peak_memory_source",
    "others_cpu_share",
    *SCENARIO_COLUMNS,
    "host_energy_j",
    "gpu_energy_j",
    "host_energy_apportioned_j",
    "host_share",
    "host_share_method",
    "energy_scope",
    "device_set",
    "concurrent_experiment_ids",
    "parallelism",
    "world_size",
    "peak_memory_bytes_sum",
    "nodes",
]

# How a loaded table types each column (see results.frame); every other column is a number.
STRING_COLUMNS = frozenset(
    {
        "experiment_id",
        "key",
        "suite",
        "model",
        "config_name",
        "config_hash",
        "task_type",
        "device",
        "precision",
        "quantization",
        "decoder_mode",
        "dataset",
        "prompt_hash",
        "energy_meter",
        "energy_method",
        "hosts",
        "slurm_job_id",
        "git_commit",
        "torch_version",
        "transformers_version",
        "quality_flags",
        "cpu_model",
        "gpu_names",
        "model_revision",
        "peak_memory_source",
        *SCENARIO_STRING_COLUMNS,
        "host_share_method",
        "energy_scope",
        "device_set",
        "concurrent_experiment_ids",
        "parallelism",
    }
)
INTEGER_COLUMNS = frozenset({"cycle", "attempt"})
BOOLEAN_COLUMNS = frozenset({"energy_is_estimate", "oom_halved_batch", "git_dirty"})
TIME_COLUMNS = frozenset({"started_at", "finished_at"})


def column_kind(name: str) -> str:
    """ "str", "int", "bool", "time" or "float"; a column this version does not know is text."""
    for kind, names in (
        ("str", STRING_COLUMNS),
        ("int", INTEGER_COLUMNS),
        ("bool", BOOLEAN_COLUMNS),
        ("time", TIME_COLUMNS),
    ):
        if name in names:
            return kind
    return "float" if name in CSV_COLUMNS else "str"


# CSV columns that record a config field (column -> dotted field): what the report can
# tell varied from the CSV alone when the suite's YAML is gone.
VARIABLE_COLUMNS: dict[str, str] = {
    "device": "device",
    "num_processes": "num_processes",
    "parallelism": "parallelism",
    "precision": "precision",
    "quantization": "quantization",
    "batch_size": "batch_size",
    "num_prompts": "num_prompts",
    "max_input_tokens": "max_input_tokens",
    "max_output_tokens": "max_output_tokens",
    "min_output_tokens": "min_output_tokens",
    "decoder_mode": "decoder.mode",
    "temperature": "decoder.temperature",
    "top_k": "decoder.top_k",
    "top_p": "decoder.top_p",
    "warmup_iterations": "warmup_iterations",
    "dataset": "dataset.name",
    **SCENARIO_VARIABLE_COLUMNS,
    "nodes": "nodes",
}


def _gpu_names(setup: SetupSection) -> list[str]:
    return [
        str(gpu["name"])
        for node in setup.get("gpus_by_node", {}).values()
        for gpu in node.values()
        if isinstance(gpu, dict) and gpu.get("name")
    ]


def flatten(sections: Sections) -> dict[str, Any]:
    setup, var = sections["setup"], sections["variables"]
    inf, comp, energy = sections["inference"], sections["compute"], sections["energy"]
    prov = setup["provenance"]
    slurm = prov.get("slurm", {})
    sharing = energy.get("host_sharing") or {}
    row = {
        "experiment_id": setup["experiment_id"],
        "key": setup["key"],
        "suite": setup["suite"],
        "model": setup["model"],
        "config_name": setup["config_name"],
        "cycle": setup["cycle"],
        "attempt": setup["attempt"],
        "config_hash": setup["config_hash"],
        "task_type": setup["task_type"],
        "started_at": setup["timing"].get("started_at"),
        "finished_at": setup["timing"].get("finished_at"),
        "device": setup["device"],
        "num_processes": setup["num_processes"],
        "dataset": setup["dataset"]["name"],
        "prompt_hash": setup["dataset"]["prompt_hash"],
        "decoder_mode": var["decoder"]["mode"],
        "temperature": var["decoder"]["temperature"],
        "top_k": var["decoder"]["top_k"],
        "top_p": var["decoder"]["top_p"],
        "batches_total": inf["num_batches"],
        "batches_resumed": inf["batches_resumed"],
        "latency_mean_s": inf["batch_latency"]["mean_s"],
        "latency_p50_s": inf["batch_latency"]["p50_s"],
        "latency_p95_s": inf["batch_latency"]["p95_s"],
        "latency_p99_s": inf["batch_latency"]["p99_s"],
        "flops_analytic_total": comp["flops"]["analytic_total_flops"],
        "flops_counted_prefill": comp["flops"].get("counted_prefill_flops"),
        "flops_counted_over_analytic": comp["flops"].get("counted_over_analytic"),
        "peak_memory_bytes_max": comp["peak_memory_bytes_max"],
        "energy_meter": energy["meter"],
        "energy_method": energy["method"],
        "energy_is_estimate": energy["is_estimate"],
        "hosts": " ".join(setup["hosts"]),
        "slurm_job_id": slurm.get("slurm_job_id"),
        "git_commit": prov.get("git_commit"),
        "torch_version": prov["versions"].get("torch"),
        "transformers_version": prov["versions"].get("transformers"),
        "batch_size_used": setup.get("batch_size_used", var["batch_size"]),
        "oom_halved_batch": setup.get("oom_halved_batch", False),
        "quality_flags": ";".join(energy.get("quality_flags", [])),
        "request_latency_p50_s": inf["request_latency"]["p50_s"],
        "request_latency_p90_s": inf["request_latency"]["p90_s"],
        "request_latency_p95_s": inf["request_latency"]["p95_s"],
        "request_latency_p99_s": inf["request_latency"]["p99_s"],
        "ttft_p50_s": inf["time_to_first_token"]["p50_s"],
        "ttft_p95_s": inf["time_to_first_token"]["p95_s"],
        "itl_mean_s": inf["inter_token_latency"]["mean_s"],
        "prefill_s": inf["prefill_s"],
        "decode_s": inf["decode_s"],
        "cpu_model": prov.get("cpu_model"),
        "gpu_names": " | ".join(_gpu_names(setup)),
        "slurm_restart_count": slurm.get("slurm_restart_count"),
        "cycle_order_seed": setup.get("cycle_order_seed"),
        "model_revision": prov.get("model_revision"),
        "git_dirty": prov.get("git_dirty"),
        "peak_memory_source": comp.get("peak_memory_source"),
        "others_cpu_share": energy.get("others_cpu_share"),
        **{
            name: energy.get(name)
            for name in (
                "host_energy_j",
                "gpu_energy_j",
                "host_energy_apportioned_j",
                "host_share",
                "host_share_method",
                "energy_scope",
            )
        },
        "device_set": sharing.get("device_set"),
        # space-separated like "hosts": a ";" or "," would read as a list separator
        "concurrent_experiment_ids": " ".join(sharing.get("concurrent_experiment_ids", [])),
        "parallelism": setup.get("parallelism", DATA),
        "world_size": setup.get("world_size", setup["num_processes"]),
        "peak_memory_bytes_sum": comp.get("peak_memory_bytes_sum"),
        "nodes": var.get("nodes", 1),  # results written before the field ran on one node
    }
    for name in (*_CONFIG_COLUMNS, "warmup_iterations"):
        row[name] = var[name]
    for name in _INFERENCE_COLUMNS:
        row[name] = inf[name]
    for name in (*_ENERGY_COLUMNS, *_DYNAMIC_COLUMNS, "gpu_energy_wh_per_1000_queries"):
        row[name] = energy[name]
    row.update(scenario_cells(sections))
    return row
