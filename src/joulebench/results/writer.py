"""The seed's result files: eight numbered JSON files per experiment and one CSV row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.fsutil import atomic_write_json
from joulebench.results import aggregate
from joulebench.results.provenance import collect


@dataclass(frozen=True)
class Identity:
    """Who an experiment is: its ID and, when run from a suite, its key parts."""

    experiment_id: str
    key: str | None = None
    suite: str | None = None
    config_name: str | None = None
    cycle: int | None = None
    attempt: int = 1
    order_seed: int | None = None


def raw_dir(results_dir: Path, experiment_id: str) -> Path:
    return results_dir / "raw_results" / experiment_id


def csv_path(results_dir: Path, task_type: str) -> Path:
    return results_dir / f"{task_type}_results.csv"


def build_sections(ident: Identity, config: ExperimentConfig, config_hash: str, device: str,
                   ranks: list[dict[str, Any]], timing: dict[str, Any]) -> dict[str, Any]:
    """Everything the files and the CSV row are made from, keyed by file section."""
    ranks = sorted(ranks, key=lambda r: r["rank"])
    rank0 = ranks[0]
    inference = aggregate.inference_metrics(ranks)
    compute = aggregate.compute_metrics(ranks, inference)
    setup = {
        "experiment_id": ident.experiment_id, "key": ident.key, "suite": ident.suite,
        "config_name": ident.config_name, "cycle": ident.cycle, "attempt": ident.attempt,
        "cycle_order_seed": ident.order_seed,
        "config_hash": config_hash, "model": config.model, "task_type": config.task_type,
        "device": device, "num_processes": len(ranks),
        "hosts": sorted({r["host"] for r in ranks}),
        "dataset": rank0["dataset"],
        "thermal_by_node": {r["host"]: r.get("thermal") for r in ranks
                            if r.get("local_rank") == 0},
        "gpus_by_node": {r["host"]: r.get("gpus") for r in ranks
                         if r.get("local_rank") == 0 and r.get("gpus")},
        "timing": {**timing, "load_s_max": max(r["load_s"] for r in ranks),
                   "warmup_s_max": max(r["warmup_s"] for r in ranks),
                   "model_reused": all(r.get("model_reused", False) for r in ranks),
                   "phases_s_max": _phases_max(ranks)},
        "provenance": collect(config.model),
    }
    return {
        "setup": setup,
        "variables": config.model_dump(mode="json"),
        "architecture": rank0.get("architecture") or {},
        "inference": inference,
        "compute": compute,
        "per_process": [aggregate.per_process_energy(r) for r in ranks],
        "energy": aggregate.energy_metrics(ranks, inference, compute),
        "outputs": _outputs(ranks) if config.save_outputs else None,
    }


def _phases_max(ranks: list[dict[str, Any]]) -> dict[str, float]:
    """Each fixed-cost step's slowest process (the step ends at a barrier anyway)."""
    names = {name for r in ranks for name in r.get("phases_s", {})}
    return {n: max(r.get("phases_s", {}).get(n, 0.0) for r in ranks) for n in sorted(names)}


def _outputs(ranks: list[dict[str, Any]]) -> dict[str, list[Any]]:
    texts: list[str] = []
    tokens: list[list[int]] = []
    for rank in ranks:  # ranks hold contiguous prompt slices, so this is prompt order
        for _, batch in sorted(rank["batches"].items(), key=lambda kv: int(kv[0])):
            texts.extend(batch.get("texts", []))
            tokens.extend(batch.get("token_ids", []))
    return {"texts": texts, "token_ids": tokens}


def write_json_files(results_dir: Path, experiment_id: str, sections: dict[str, Any]
                     ) -> list[Path]:
    """Atomically write files 1-8 into raw_results/{id}/; returns their paths."""
    folder = raw_dir(results_dir, experiment_id)
    named = [
        ("1_experiment_setup", sections["setup"]),
        ("2_experiment_variables", sections["variables"]),
        ("3_model_architecture", sections["architecture"]),
        ("4_inference_metrics", sections["inference"]),
        ("5_compute_metrics", sections["compute"]),
        *((f"6_local_energy_results_process_{p['process_rank']}", p)
          for p in sections["per_process"]),
        ("7_global_energy_results", sections["energy"]),
    ]
    if sections["outputs"] is not None:
        named += [("8_text_output", sections["outputs"]["texts"]),
                  ("8_token_output", sections["outputs"]["token_ids"])]
    paths = []
    for suffix, payload in named:
        path = folder / f"{experiment_id}_{suffix}.json"
        atomic_write_json(path, payload)
        paths.append(path)
    return paths
