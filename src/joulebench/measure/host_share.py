"""Whether host-level energy was read on a shared node, and this experiment's share. Pure.

GPU energy is per device: each experiment's NVML counter covers exactly its GPUs. Host
meters (RAPL package/DRAM, codecarbon's CPU and RAM) read the whole node, so when other
work ran there during the window - our own concurrent experiments (``--max-parallel``),
array tasks sharing the node, or other users' jobs beside a Slurm allocation smaller
than the node - each experiment's reading holds the others' joules too. Such a result
is flagged ``host_energy_shared``; its host part is kept apart from its GPU part and an
apportioned host figure, with the method named, is what totals add, so summing results
never counts one joule twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

# Why a node counts as shared during one experiment's window.
ShareReason = Literal["concurrent_experiments", "slurm_partial_node"]
CONCURRENT_EXPERIMENTS: ShareReason = "concurrent_experiments"
SLURM_PARTIAL_NODE: ShareReason = "slurm_partial_node"

# How the apportioned host figure was made: this experiment's CPU seconds over the node's
# busy CPU seconds in the window (measure.host_load); or, where /proc is not readable, the
# CPUs the job was allotted over the node's; "whole_node" when the node was not shared.
ShareMethod = Literal["cpu_time_share", "cpu_allocation_share", "whole_node"]
CPU_TIME_SHARE: ShareMethod = "cpu_time_share"
CPU_ALLOCATION_SHARE: ShareMethod = "cpu_allocation_share"
WHOLE_NODE: ShareMethod = "whole_node"


class HostSharing(TypedDict):
    """What the scheduler knows about who else used the node (JSON file 7, ``host_sharing``)."""

    shared: bool
    reasons: list[str]  # ShareReason values
    concurrent_experiment_ids: list[str]  # our own experiments that overlapped this one
    device_set: str | None  # e.g. "cpu:0" or "cuda:2,3" (--max-parallel), else None
    job_cpus: int | None  # CPUs Slurm gave the job on this node
    node_cpus: int | None  # CPUs the node has


def slurm_cpus(env: Mapping[str, str]) -> int | None:
    """CPUs the Slurm job holds on this node (SLURM_CPUS_ON_NODE; else the first entry of
    SLURM_JOB_CPUS_PER_NODE, e.g. "16(x2)"), or None outside Slurm."""
    if not env.get("SLURM_JOB_ID"):
        return None
    value = env.get("SLURM_CPUS_ON_NODE", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    first = env.get("SLURM_JOB_CPUS_PER_NODE", "").split(",")[0].split("(")[0]
    return int(first) if first.isdigit() and int(first) > 0 else None


def node_sharing(
    env: Mapping[str, str],
    node_cpus: int | None,
    concurrent_ids: list[str] | None = None,
    device_set: str | None = None,
) -> HostSharing:
    """The sharing record of one experiment from its environment and our own scheduler.

    A Slurm job holding fewer CPUs than the node has (no ``--exclusive``, or a partial
    request) shares the node with whatever Slurm puts beside it; one holding every CPU
    has it alone as far as host energy goes.
    """
    reasons: list[str] = []
    concurrent = sorted(set(concurrent_ids or []))
    if concurrent:
        reasons.append(CONCURRENT_EXPERIMENTS)
    job_cpus = slurm_cpus(env)
    if job_cpus is not None and node_cpus is not None and job_cpus < node_cpus:
        reasons.append(SLURM_PARTIAL_NODE)
    return {
        "shared": bool(reasons),
        "reasons": reasons,
        "concurrent_experiment_ids": concurrent,
        "device_set": device_set,
        "job_cpus": job_cpus,
        "node_cpus": node_cpus,
    }


def host_share(sharing: HostSharing, load: Mapping[str, Any] | None) -> tuple[float, ShareMethod]:
    """This experiment's share of the node's host energy in the window, and its method.

    Measured CPU time wins (own CPU seconds / the node's busy CPU seconds): shares of
    experiments over one window then add up to at most 1. Without it, the allotted CPUs.
    """
    if not sharing["shared"]:
        return 1.0, WHOLE_NODE
    if load and load.get("node_busy_cpu_s", 0) > 0:
        return min(1.0, max(0.0, load["own_cpu_s"] / load["node_busy_cpu_s"])), CPU_TIME_SHARE
    if sharing["job_cpus"] and sharing["node_cpus"]:
        return min(1.0, sharing["job_cpus"] / sharing["node_cpus"]), CPU_ALLOCATION_SHARE
    cores = sharing["device_set"] or ""
    if cores.startswith("cpu:") and sharing["node_cpus"]:
        return min(1.0, len(cores[4:].split(",")) / sharing["node_cpus"]), CPU_ALLOCATION_SHARE
    return 1.0, WHOLE_NODE


def is_gpu_label(label: str) -> bool:
    """GPU energy labels: NVML's "gpu:GPU-<uuid>", codecarbon's "gpu"; the rest is host."""
    return label == "gpu" or label.startswith("gpu:")


def split_host_gpu(energy_j_by_device: Mapping[str, float]) -> tuple[float, float]:
    """(host joules, GPU joules) of one reading."""
    gpu = sum(j for label, j in energy_j_by_device.items() if is_gpu_label(label))
    host = sum(j for label, j in energy_j_by_device.items() if not is_gpu_label(label))
    return host, gpu
