"""One experiment's key figures and provenance as (label, text) pairs: what `show ID`
prints and the dashboard's experiment page shows, from ``api.show_experiment``'s parts."""

from __future__ import annotations

from typing import Any

from joulebench.config.parallelism import DATA


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}{unit}"
    return f"{value}{unit}"


def experiment_figures(parts: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of `show ID`, in its order."""
    setup, inf, energy = parts["setup"], parts["inference"], parts["energy"]
    prov = setup.get("provenance", {})
    lat, ttft = inf.get("request_latency", {}), inf.get("time_to_first_token", {})
    return [
        ("experiment", f"{setup['experiment_id']}  {setup.get('key') or ''}"),
        ("config hash", _fmt(setup.get("config_hash"))),
        ("device / processes", f"{setup.get('device')} x {setup.get('num_processes')}"),
        (
            "parallelism / world size",  # results of older versions: data, one per process
            f"{setup.get('parallelism', DATA)} / "
            f"{setup.get('world_size', setup.get('num_processes'))}",
        ),
        ("prompts / output tokens", f"{inf['num_prompts']} / {inf['total_output_tokens']}"),
        ("throughput", _fmt(inf.get("throughput_output_tokens_per_s"), " tokens/s")),
        (
            "request latency p50/p95",
            f"{_fmt(lat.get('p50_s'), ' s')} / {_fmt(lat.get('p95_s'), ' s')}",
        ),
        ("time to first token p50", _fmt(ttft.get("p50_s"), " s")),
        (
            "energy",
            f"{_fmt(energy.get('energy_j'), ' J')} ({energy.get('meter')}, {energy.get('method')})",
        ),
        ("energy per output token", _fmt(energy.get("energy_per_output_token_j"), " J")),
        ("dynamic energy per token", _fmt(energy.get("dynamic_energy_per_output_token_j"), " J")),
        ("quality flags", ", ".join(energy.get("quality_flags", [])) or "none"),
        ("batches resumed", _fmt(inf.get("batches_resumed"))),
        ("hosts", ", ".join(setup.get("hosts", []))),
        ("slurm", ", ".join(f"{k}={v}" for k, v in prov.get("slurm", {}).items()) or "-"),
        (
            "git commit",
            _fmt(prov.get("git_commit"))
            + (" (dirty: uncommitted changes)" if prov.get("git_dirty") else ""),
        ),
        ("model revision", _fmt(prov.get("model_revision"))),
        ("versions", ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items() if v)),
        (
            "dataset / prompt hash",
            f"{setup.get('dataset', {}).get('name')} / "
            f"{setup.get('dataset', {}).get('prompt_hash')}",
        ),
    ]
