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
    if "running" in parts:  # no result files yet: what the tracker says
        run = parts["running"]
        return [
            ("experiment", f"{run['experiment_id']}  {run['key']}"),
            ("state", f"{run['state']} (attempt {run['attempt']}) since {run['since']}"),
            ("device set", run.get("device_set") or "-"),
            ("host / pid", f"{run.get('host')} / {run.get('pid')}"),
        ]
    setup, inf, energy = parts["setup"], parts["inference"], parts["energy"]
    sharing = energy.get("host_sharing") or {}
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
        (
            "host / GPU energy",
            f"{_fmt(energy.get('host_energy_j'), ' J')} / {_fmt(energy.get('gpu_energy_j'), ' J')}"
            f" (energy adds: {energy.get('energy_scope') or '-'})",
        ),
        (
            "host energy apportioned",
            f"{_fmt(energy.get('host_energy_apportioned_j'), ' J')} "
            f"(share {_fmt(energy.get('host_share'))}, {energy.get('host_share_method') or '-'})",
        ),
        (
            "device set / ran beside",
            f"{sharing.get('device_set') or '-'} / "
            f"{', '.join(sharing.get('concurrent_experiment_ids') or []) or '-'}",
        ),
        ("energy per output token", _fmt(energy.get("energy_per_output_token_j"), " J")),
        ("dynamic energy per token", _fmt(energy.get("dynamic_energy_per_output_token_j"), " J")),
        *_scenario_figures(inf, energy),
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


def _scenario_figures(inf: dict[str, Any], energy: dict[str, Any]) -> list[tuple[str, str]]:
    """Serving runs' load, latency and J/request; offline runs' prefill vs decode split."""
    rows: list[tuple[str, str]] = []
    serving = inf.get("serving")
    if serving:
        e2e, per = serving.get("e2e", {}), energy.get("per_request") or {}
        j = per.get("energy_per_request") or {}
        rows += [
            (
                "serving",
                f"{serving['arrival']} {serving['request_rate']}/s, "
                f"{serving['num_requests']} requests, at most {serving['max_concurrency']} "
                f"in flight ({serving['policy']})",
            ),
            (
                "requests/s (goodput)",
                f"{_fmt(serving.get('request_throughput_per_s'))} "
                f"({_fmt(serving.get('goodput_requests_per_s'))})",
            ),
            (
                "e2e latency p50/p95",
                f"{_fmt(e2e.get('p50_s'), ' s')} / {_fmt(e2e.get('p95_s'), ' s')}",
            ),
            (
                "energy per request mean/p90",
                f"{_fmt(j.get('mean_j'), ' J')} / {_fmt(j.get('p90_j'), ' J')} "
                f"({per.get('method', '-')})",
            ),
        ]
    phases = inf.get("energy_by_phase")
    if phases:
        rows.append(
            (
                "prefill / decode energy",
                f"{_fmt(phases.get('prefill_energy_j'), ' J')} / "
                f"{_fmt(phases.get('decode_energy_j'), ' J')}",
            )
        )
    return rows
