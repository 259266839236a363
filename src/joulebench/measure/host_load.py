"""How much of a node's CPU other work used during the measured window, where visible.

A node shared with other jobs (or, on a VM, other tenants) runs the workload slower and
draws more host energy for it; on a loaded 2-core VM the cycles of one config came out
6-15x apart in J/token. Linux shows it cheaply: /proc/stat gives every CPU's busy and
stolen time, ``getrusage`` gives each of our own processes' CPU time, and the difference,
over the window, is what everything else used. Reading both costs microseconds, outside
the timed window. Elsewhere (no /proc) nothing is recorded.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROC_STAT = Path("/proc/stat")
PROC_LOADAVG = Path("/proc/loadavg")


def own_cpu_s() -> float:
    """CPU seconds this process (every thread) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def node_cpu_s(stat_text: str, ticks_per_s: float) -> dict[str, float] | None:
    """Busy and stolen CPU seconds of all CPUs since boot, from /proc/stat's "cpu" line."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu" and len(fields) >= 9:
            # user nice system idle iowait irq softirq steal ...; guest is inside user
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(float, fields[1:9])
            return {
                "busy_s": (user + nice + system + irq + softirq) / ticks_per_s,
                "steal_s": steal / ticks_per_s,
            }
    return None


def node_snapshot() -> dict[str, Any] | None:
    """The node's CPU counters now (local rank 0 takes one at each end of the window)."""
    try:
        counters = node_cpu_s(PROC_STAT.read_text(), float(os.sysconf("SC_CLK_TCK")))
        load_1m = float(PROC_LOADAVG.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if counters is None:
        return None
    return {**counters, "load_avg_1m": load_1m, "cpus": os.cpu_count() or 1}


def window_load(
    start: dict[str, Any] | None,
    end: dict[str, Any] | None,
    window_s: float,
    own_cpu_by_rank: Sequence[float],
) -> dict[str, Any] | None:
    """What the node's CPUs did during the window, and how much of it was not ours.

    ``others_cpu_share``: CPU time used by other processes (plus time a hypervisor stole
    for other guests) as a share of all the node's CPU time in the window; 0 = the node
    was ours alone, 1 = every CPU was busy with other work throughout.
    """
    if start is None or end is None or window_s <= 0:
        return None
    busy = end["busy_s"] - start["busy_s"]
    steal = end["steal_s"] - start["steal_s"]
    own = sum(own_cpu_by_rank)
    capacity = window_s * end["cpus"]
    # getrusage and /proc/stat tick at different moments: never report below zero
    others = max(0.0, busy - own) + max(0.0, steal)
    return {
        "cpus": end["cpus"],
        "window_s": window_s,
        "node_busy_cpu_s": busy,
        "steal_cpu_s": steal,
        "own_cpu_s": own,
        "load_avg_1m_end": end["load_avg_1m"],
        "others_cpu_share": min(1.0, others / capacity),
    }
