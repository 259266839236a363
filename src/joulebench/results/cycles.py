"""Cycles of one config that disagree several-fold: `unstable_across_cycles`. Pure.

A noisy node must not pass silently: on a loaded 2-core VM the cycles of one config came
out 6-15x apart in J/token, and their mean and CI looked like any other. Which cycle is
right cannot be told from the figures, so the runs stay in the statistics and the config
is flagged, with the CPU share other work took during each window where it was recorded
(``others_cpu_share``, from ``measure.host_load``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from joulebench.results.stats import to_float

# Cycles of one config whose energy per token or throughput differ by this factor or more
# are flagged. Cycles of one config on a quiet node differ by a few percent; the loaded VM
# gave 6-15x. 3x sits far from both: ordinary noise never trips it, a shared, overloaded
# node cannot pass.
UNSTABLE_RATIO = 3.0
UNSTABLE_METRICS = ("energy_per_output_token_j", "throughput_output_tokens_per_s")
# Other work taking a quarter of the node's CPU time in the window is enough to move CPU
# inference figures well past run-to-run noise (and host energy is then shared too).
LOADED_OTHERS_SHARE = 0.25
UNSTABLE_FLAG = "unstable_across_cycles"


def others_share(row: Mapping[str, str]) -> float | None:
    """Share of the busiest node's CPU time other work took during the window, if known."""
    return to_float(row.get("others_cpu_share"))


def _spread(rows: Sequence[Mapping[str, str]], metric: str) -> str | None:
    values = {
        r["experiment_id"]: v for r in rows if (v := to_float(r.get(metric))) is not None and v > 0
    }
    if len(values) < 2:
        return None
    low, high = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
    if values[high] / values[low] < UNSTABLE_RATIO:
        return None
    return (
        f"{metric} {values[high] / values[low]:.1f}x apart "
        f"({low}: {values[low]:.4g}, {high}: {values[high]:.4g})"
    )


def cycle_disagreement(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """Why a config's cycles are unstable (empty: they agree within UNSTABLE_RATIO)."""
    notes = [n for m in UNSTABLE_METRICS if (n := _spread(rows, m))]
    if not notes:
        return []
    shares = {r["experiment_id"]: x for r in rows if (x := others_share(r)) is not None}
    busy = {e: x for e, x in shares.items() if x > LOADED_OTHERS_SHARE}
    if busy:
        notes.append(
            "node shared during "
            + ", ".join(
                f"{e} (other work took {x:.0%} of its CPU time)" for e, x in sorted(busy.items())
            )
        )
    elif shares:
        notes.append(
            "no other work seen on the node's CPUs (others_cpu_share <= "
            f"{LOADED_OTHERS_SHARE:.0%}): look at GPU clocks, thermals, the network"
        )
    else:
        notes.append(
            "CPU share of other work not recorded (results from before joulebench "
            "recorded it, or no /proc)"
        )
    return notes
