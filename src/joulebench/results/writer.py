"""An experiment's result sections, built once from its processes' records.

What the eight JSON files and the CSV row hold; where they go is ``results.layout``.
"""

from __future__ import annotations

from dataclasses import dataclass

from joulebench.config.models import ExperimentConfig
from joulebench.measure.host_share import HostSharing
from joulebench.results import aggregate
from joulebench.results.host_energy import with_host_energy
from joulebench.results.provenance import collect
from joulebench.results.records import (
    EnergySection,
    InferenceSection,
    Outputs,
    RankRecord,
    RunTiming,
    Sections,
    SetupSection,
)


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
    sharing: HostSharing | None = None,
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
        "num_processes": config.num_processes,
        "parallelism": config.parallelism,
        "world_size": len(ranks),
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
    # Apportioned first, so per-request and per-phase figures split this experiment's share.
    energy = with_host_energy(
        aggregate.energy_metrics(ranks, inference, compute), inference, sharing
    )
    _add_scenario_figures(ranks, config, inference, energy)
    return {
        "setup": setup,
        "variables": config.model_dump(mode="json"),
        "architecture": rank0.get("architecture") or {},
        "inference": inference,
        "compute": compute,
        "per_process": [aggregate.per_process_energy(r) for r in ranks],
        "energy": energy,
        "outputs": _outputs(ranks) if config.save_outputs else None,
    }


def _add_scenario_figures(
    ranks: list[RankRecord],
    config: ExperimentConfig,
    inference: InferenceSection,
    energy: EnergySection,
) -> None:
    """Serving runs' per-request figures; offline runs' prefill vs decode energy."""
    rank0 = ranks[0]
    if "serving" in rank0:
        from joulebench.measure.quality import NO_STEADY_STATE
        from joulebench.results.serving_metrics import serving_section

        serving, per_request = serving_section(
            rank0["serving"], config.scenario, inference["window_s"], energy
        )
        inference["serving"] = serving
        steps = rank0["serving"]["steps"]
        for phase in ("prefill", "decode"):  # engine time per kind, not summed TTFTs
            seconds = sum(x["end_s"] - x["start_s"] for x in steps if x["kind"] == phase)
            inference[f"{phase}_s"] = seconds  # type: ignore[literal-required]
        inference["phase_timing_method"] = (
            "serving engine steps (host clock): prefill_s sums the prefill steps, decode_s "
            "the decode steps"
        )
        flags = set(energy["quality_flags"])
        if per_request is not None:
            energy["per_request"] = per_request
            flags.update(per_request["quality_flags"])
        if serving["steady_state"] is None:
            flags.add(NO_STEADY_STATE)
        energy["quality_flags"] = sorted(flags)
    prefills = [r["prefill"] for r in ranks if "prefill" in r]
    if prefills:
        from joulebench.results.phase_energy import phase_energy

        phases = phase_energy(prefills, energy, inference)
        inference["energy_by_phase"] = phases
        inference["energy_by_phase_note"] = phases["method"]
        energy["quality_flags"] = sorted({*energy["quality_flags"], *phases["quality_flags"]})


def _phases_max(ranks: list[RankRecord]) -> dict[str, float]:
    """Each fixed-cost step's slowest process (the step ends at a barrier anyway)."""
    names = {name for r in ranks for name in r.get("phases_s", {})}
    return {n: max(r.get("phases_s", {}).get(n, 0.0) for r in ranks) for n in sorted(names)}


def _outputs(ranks: list[RankRecord]) -> Outputs:
    texts: list[str] = []
    tokens: list[list[int]] = []
    # Ranks hold contiguous prompt slices, so this is prompt order (tensor: rank 0 only).
    for rank in aggregate.token_ranks(ranks):
        for _, batch in sorted(rank["batches"].items(), key=lambda kv: int(kv[0])):
            texts.extend(batch.get("texts", []))
            tokens.extend(batch.get("token_ids", []))
    return {"texts": texts, "token_ids": tokens}
