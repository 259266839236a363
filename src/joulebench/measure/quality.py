"""Quality flags: how far to trust one energy figure. Pure, tested with literals.

A flag never changes a number; it tells the reader (and `joulebench report`, which
keeps flagged runs apart) that the number is weaker than it looks.
"""

from __future__ import annotations

from joulebench.measure.base import EnergyMeasurement

# Shortest window each source resolves well. NVML's counter is fine-grained, but power
# samples average over up to ~1 s on many GPUs; codecarbon reads power once at start and
# once at stop; RAPL counters update about every millisecond.
MIN_WINDOW_S = {
    ("nvml", "counter"): 0.2,
    ("nvml", "polling"): 1.0,
    ("nvml", "counter+polling"): 1.0,
    ("codecarbon", "estimate"): 1.0,
    ("codecarbon", "counter"): 1.0,
    ("rapl", "counter"): 0.01,
}

# Host-level energy (RAPL, codecarbon CPU/RAM) read on a node other work shared during
# the window (measure.host_share): the result's energy_j adds an apportioned host figure.
HOST_ENERGY_SHARED = "host_energy_shared"

FLAG_TEXT = {
    "window_too_short": "the measured window is shorter than the sensor resolves well",
    "nonpositive_energy": "the meter reported zero or negative energy",
    "estimate_only": "no hardware sensor was read; the figure is a model-based estimate",
    "counter_polling_disagreement": "NVML counter and power polling disagree",
    "gpu_throttled": "NVML reported power or thermal slowdown during the window",
    "nodes_share_a_machine": "nodes of this experiment are one machine (same boot ID): its "
    "host-level meter (codecarbon, RAPL) read all of it on each, so the sum counts it twice",
    "dynamic_within_baseline_noise": "the window drew under 5% more than the idle baseline "
    "would have: dynamic energy is noise (workload too "
    "small for the device)",
    # Serving and phase figures (issue 16): they qualify a split of the energy, never
    # the total, so they are informational.
    "per_request_energy_window_share": "per-request energy is the window's energy split by "
    "token share: the meter could not be read per engine step (an estimate, or a window "
    "shorter than its counter resolves)",
    "window_shorter_than_counter_resolution": "the serving window is shorter than the "
    "energy counter's update period",
    "no_steady_state": "the serving run never reached ML.ENERGY's steady state (too few "
    "requests beyond max_concurrency)",
    "prefill_window_too_short": "the prefill-only window is shorter than ten of the meter's "
    "updates: the prefill vs decode split is coarse",
    "decode_energy_negative": "the prefill-only window drew more than the whole run: the "
    "prefill vs decode split is noise",
    HOST_ENERGY_SHARED: "host-level energy was read on a node other work shared during the "
    "window: energy_j adds this experiment's apportioned share of it (host_share_method), "
    "the whole node's reading is host_energy_j",
}
SPLIT_BY_WINDOW_SHARE = "per_request_energy_window_share"
WINDOW_SHORTER_THAN_COUNTER = "window_shorter_than_counter_resolution"
NO_STEADY_STATE = "no_steady_state"
PREFILL_WINDOW_TOO_SHORT = "prefill_window_too_short"
DECODE_ENERGY_NEGATIVE = "decode_energy_negative"

# What "flagged" means, here and nowhere else (status counts it, report excludes it): a
# result whose energy carries a flag that keeps it out of the statistics. A model-based
# estimate is the best a machine without sensors can do, so it is labelled, not excluded,
# or a CPU-only suite would have no statistics at all; a dynamic energy lost in baseline
# drift leaves the total energy and throughput sound.
# A shared node's host energy is apportioned, not dropped: the GPU part stays exact and the
# apportioned host part is labelled with its method, so such results stay in the statistics.
INFORMATIONAL_FLAGS = frozenset(
    {
        "estimate_only",
        "dynamic_within_baseline_noise",
        SPLIT_BY_WINDOW_SHARE,
        WINDOW_SHORTER_THAN_COUNTER,
        NO_STEADY_STATE,
        PREFILL_WINDOW_TOO_SHORT,
        DECODE_ENERGY_NEGATIVE,
        HOST_ENERGY_SHARED,
    }
)


def excluding_flags(text: str | None) -> str:
    """The flags of a ";"-joined CSV cell that keep a run out of the statistics."""
    flags = [f.strip() for f in (text or "").split(";") if f.strip()]
    return ";".join(f for f in flags if f not in INFORMATIONAL_FLAGS)


def is_flagged(text: str | None) -> bool:
    """True when a result's quality flags exclude it from the statistics."""
    return bool(excluding_flags(text))


# Idle power drifts a few percent with temperature and clocks between the baseline and the
# window (seen on an H100: 125.9 W baseline, 125.3-129.5 W windows for a tiny model), so a
# dynamic share below this is indistinguishable from zero and may even come out negative.
DYNAMIC_NOISE_SHARE = 0.05


def quality_flags(
    measurement: EnergyMeasurement, window_s: float, disagreement: float = 0.10
) -> list[str]:
    """Flags for one node's measurement over a window of ``window_s`` seconds."""
    flags = []
    floor = MIN_WINDOW_S.get((measurement.meter, measurement.method), 1.0)
    if window_s < floor:
        flags.append("window_too_short")
    if measurement.energy_j <= 0:
        flags.append("nonpositive_energy")
    if measurement.is_estimate:
        flags.append("estimate_only")
    cross = measurement.details.get("polling_energy_j")
    if (
        isinstance(cross, (int, float))
        and measurement.energy_j > 0
        and abs(cross - measurement.energy_j) / measurement.energy_j > disagreement
    ):
        flags.append("counter_polling_disagreement")
    if measurement.details.get("throttled"):
        flags.append("gpu_throttled")
    return flags


# Meters that read the whole machine, not devices given to the job.
HOST_LEVEL_METERS = frozenset({"codecarbon", "rapl"})


def shared_machine_hosts(boot_ids: dict[str, str | None]) -> set[str]:
    """Hosts (nodes) whose machine another node of the same experiment also is."""
    seen: dict[str, list[str]] = {}
    for host, boot in boot_ids.items():
        if boot:
            seen.setdefault(boot, []).append(host)
    return {h for hosts in seen.values() if len(hosts) > 1 for h in hosts}


def dynamic_energy_flags(total_j: float | None, dynamic_j: float | None) -> list[str]:
    """Flag a dynamic energy too small, against the total, to tell from baseline drift."""
    if total_j is None or dynamic_j is None or total_j <= 0:
        return []
    return ["dynamic_within_baseline_noise"] if dynamic_j < DYNAMIC_NOISE_SHARE * total_j else []
