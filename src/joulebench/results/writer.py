"""An experiment's result sections, built once from its processes' records.

What the eight JSON files and the CSV row hold; where they go is ``results.layout``.
"""

from __future__ import annotations

from dataclasses import dataclass

from joulebench.config.models import ExperimentConfig
from joulebench.results import aggregate
from joulebench.results.provenance import collect
from joulebench.results.records import Outputs, RankRecord, RunTiming, Sections, SetupSection


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


def build_sections(
    ident: Identity,
    config: ExperimentConfig,
    config_hash: str,
    device: str,
    ranks: list[RankRecord],
    timing: RunTiming,
    *,
    batch_size_used: int,
) -> Sections:
    """Everything the files and the CSV row are made from, keyed by file section.

    ``batch_size_used`` is the batch the workers ran, which differs from the config's
    after an out-of-memory retry with half the batch (``oom_halve_batch``).
    """
    ranks = sorted(ranks, key=lambda r: r["rank"])
    rank0 = ranks[0]
    inference = aggregate.inference_metrics(ranks)
    compute = aggregate.compute_metrics(ranks, inference)
    setup: SetupSection = {
        "experiment_id": ident.experiment_id,
        "key": ident.key,
        "suite": ident.suite,
        "config_name": ident.config_name,
        "cycle": ident.cycle,
        "attempt": ident.attempt,
        "cycle_order_seed": ident.order_seed,
        "config_hash": config_hash,
        "model": config.model,
        "task_type": config.task_type,
        "device": device,
        "num_processes": len(ranks),
        "nodes": config.nodes,
        "hosts": sorted({r["host"] for r in ranks}),
        "dataset": rank0["dataset"],
        "thermal_by_node": {r["host"]: r.get("thermal") for r in ranks if r.get("local_rank") == 0},
        "gpus_by_node": {
            r["host"]: r.get("gpus") for r in ranks if r.get("local_rank") == 0 and r.get("gpus")
        },
        "timing": {
            **timing,
            "load_s_max": max(r["load_s"] for r in ranks),
            "warmup_s_max": max(r["warmup_s"] for r in ranks),
            "model_reused": all(r.get("model_reused", False) for r in ranks),
            "phases_s_max": _phases_max(ranks),
        },
        "provenance": collect(config.model),
        "batch_size_used": batch_size_used,
        "oom_halved_batch": batch_size_used != config.batch_size,
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


def _phases_max(ranks: list[RankRecord]) -> dict[str, float]:
    """Each fixed-cost step's slowest process (the step ends at a barrier anyway)."""
    names = {name for r in ranks for name in r.get("phases_s", {})}
    return {n: max(r.get("phases_s", {}).get(n, 0.0) for r in ranks) for n in sorted(names)}


def _outputs(ranks: list[RankRecord]) -> Outputs:
    texts: list[str] = []
    tokens: list[list[int]] = []
    for rank in ranks:  # ranks hold contiguous prompt slices, so this is prompt order
        for _, batch in sorted(rank["batches"].items(), key=lambda kv: int(kv[0])):
            texts.extend(batch.get("texts", []))
            tokens.extend(batch.get("token_ids", []))
    return {"texts": texts, "token_ids": tokens}
