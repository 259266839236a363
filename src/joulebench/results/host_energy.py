"""The host part of an experiment's energy apart from its GPU part; apportioned on a
shared node so that no total counts one joule twice. Pure.

Every result gets ``host_energy_j`` (what the host meters read for the whole node),
``gpu_energy_j`` and ``energy_scope`` (what ``energy_j`` adds up). On a node shared during
the window (``measure.host_share``) the result is flagged ``host_energy_shared`` and
``energy_j`` becomes GPU + the apportioned host figure (``host_energy_apportioned_j``, by
``host_share_method``); every figure derived from ``energy_j`` follows, so the
per-token, per-query and dynamic figures are this experiment's, and summing the
``energy_j`` of experiments that ran together counts each host joule at most once.
"""

from __future__ import annotations

from typing import Any, Literal

from joulebench.measure.baseline import dynamic_energy_j
from joulebench.measure.host_share import HostSharing, host_share, is_gpu_label, split_host_gpu
from joulebench.measure.quality import HOST_ENERGY_SHARED
from joulebench.results.records import EnergySection, InferenceSection
from joulebench.results.stats import ratio

# What energy_j adds up: GPU energy, host energy (whole node or apportioned), or both.
EnergyScope = Literal["gpu", "host", "gpu+host", "host_apportioned", "gpu+host_apportioned"]

# Figures that are energy per something (scale with energy_j) or something per energy.
_PER_ENERGY = ("output_tokens_per_j", "flops_per_j", "queries_per_kwh")
_ENERGY_PER = ("energy_kwh", "energy_per_output_token_j", "emissions_kg")


def _scope(host_j: float, gpu_j: float, apportioned: bool) -> EnergyScope:
    host = "host_apportioned" if apportioned else "host"
    if gpu_j > 0 and host_j > 0:
        return "gpu+host_apportioned" if apportioned else "gpu+host"
    return "gpu" if gpu_j > 0 else host  # type: ignore[return-value]


def _host_meters_read(energy: EnergySection) -> bool:
    """Whether any meter of the window read host-level energy (primary or extra)."""
    for reading in energy["per_node"].values():
        if any(not is_gpu_label(k) for k in reading.get("energy_j_by_device", {})):
            return True
    for extra in energy["other_meters"].values():
        for reading in extra.get("per_node", {}).values():
            if "unavailable" not in reading and any(
                not is_gpu_label(k) for k in reading.get("energy_j_by_device", {})
            ):
                return True
    return False


def _apportioned_baseline_w(energy: EnergySection, share: float) -> float | None:
    total = 0.0
    for baseline in energy["baseline_by_node"].values():
        by_device = baseline.get("power_w_by_device")
        if not by_device:
            return None
        total += sum(w if is_gpu_label(k) else w * share for k, w in by_device.items())
    return total if energy["baseline_by_node"] else None


def with_host_energy(
    energy: EnergySection, inference: InferenceSection, sharing: HostSharing | None
) -> EnergySection:
    """``energy`` with the host/GPU split, and apportioned when the node was shared."""
    host_j = gpu_j = 0.0
    for reading in energy["per_node"].values():
        h, g = split_host_gpu(reading.get("energy_j_by_device", {}))
        host_j, gpu_j = host_j + h, gpu_j + g
    out: dict[str, Any] = dict(energy)
    measured = energy["energy_j"] is not None
    out.update(
        host_energy_j=host_j if measured else None,
        gpu_energy_j=gpu_j if measured else None,
        host_energy_apportioned_j=None,
        host_share=None,
        host_share_method=None,
        energy_scope=_scope(host_j, gpu_j, False) if measured else None,
        host_sharing=sharing,
    )
    if sharing is None or not sharing["shared"] or not _host_meters_read(energy):
        return out  # type: ignore[return-value]
    loads = [v for v in energy["host_load_by_node"].values() if v]
    share, method = host_share(sharing, loads[0] if len(loads) == 1 else None)
    out["quality_flags"] = sorted({*energy["quality_flags"], HOST_ENERGY_SHARED})
    out.update(host_share=share, host_share_method=method)
    if not measured or host_j <= 0:
        return out  # type: ignore[return-value]
    apportioned_j = host_j * share
    new_j = gpu_j + apportioned_j
    old_j = energy["energy_j"] or 0.0
    factor = new_j / old_j if old_j > 0 else 0.0
    out.update(
        host_energy_apportioned_j=apportioned_j,
        energy_j=new_j,
        energy_scope=_scope(host_j, gpu_j, True),
    )
    for name in _ENERGY_PER:
        if energy.get(name) is not None:
            out[name] = energy[name] * factor  # type: ignore[literal-required]
    for name in _PER_ENERGY:
        out[name] = ratio(energy.get(name), factor) if factor > 0 else None  # type: ignore[literal-required]
    baseline_w = _apportioned_baseline_w(energy, share)
    out["baseline_power_w"] = baseline_w
    dynamic = dynamic_energy_j(new_j, baseline_w, inference["window_s"])
    out["dynamic_energy_j"] = dynamic
    tokens = inference["measured_output_tokens"]
    out["dynamic_energy_per_output_token_j"] = ratio(dynamic, tokens)
    return out  # type: ignore[return-value]
