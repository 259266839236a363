"""Offline mode's prefill vs decode energy (``count_prefill_energy``), pure.

The same batches run a second time with one output token (prefill only) inside a
window of their own; decode energy = the run's energy − the prefill window's energy.
Each gets its J/token: prefill per input token, decode per output token.
"""

from __future__ import annotations

from joulebench.measure.apportion import COUNTER_RESOLUTION_S
from joulebench.measure.base import EnergyMeasurement
from joulebench.measure.quality import DECODE_ENERGY_NEGATIVE, PREFILL_WINDOW_TOO_SHORT
from joulebench.results.records import EnergySection, InferenceSection, PhaseEnergy, PrefillWindow
from joulebench.results.stats import ratio

# The prefill window should span this many counter updates to resolve its energy.
MIN_COUNTER_UPDATES = 10
METHOD = (
    "prefill_window: the measured batches rerun with one output token in a window of "
    "their own (prefill energy); decode energy = the run's energy - prefill energy"
)


def phase_energy(
    prefills: list[PrefillWindow], energy: EnergySection, inference: InferenceSection
) -> PhaseEnergy:
    """From every process's prefill window: energies of the nodes (their local rank 0s)
    summed, tokens of all processes summed, the longest window."""
    flags: list[str] = []
    readings = [EnergyMeasurement.from_dict(p["energy"]) for p in prefills if p["energy"]]
    prefill_j = sum(m.energy_j for m in readings) if readings else None
    window_s = max(p["window_s"] for p in prefills)
    meter = readings[0].meter if readings else ""
    if window_s < MIN_COUNTER_UPDATES * COUNTER_RESOLUTION_S.get(meter, 1.0):
        flags.append(PREFILL_WINDOW_TOO_SHORT)
    total_j = energy["energy_j"]
    decode_j = None if prefill_j is None or total_j is None else total_j - prefill_j
    if decode_j is not None and decode_j < 0:
        flags.append(DECODE_ENERGY_NEGATIVE)
    input_tokens = sum(p["input_tokens"] for p in prefills)
    return {
        "method": METHOD,
        "prefill_energy_j": prefill_j,
        "decode_energy_j": decode_j,
        "prefill_window_s": window_s,
        "prefill_energy_per_input_token_j": ratio(prefill_j, input_tokens),
        "decode_energy_per_output_token_j": ratio(decode_j, inference["measured_output_tokens"]),
        "quality_flags": flags,
    }
