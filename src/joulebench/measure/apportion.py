"""Split a serving window's energy among its requests (pure).

``per_step_counter``: the meter's cumulative counter is read after every engine step;
the energy between two reads belongs to the requests active in the steps between them,
in proportion to the tokens each processed there (prefill tokens and decode tokens
counted alike). Consecutive steps are grouped until a group spans at least the
counter's own update period (NVML's energy counter moves about every 100 ms), so no
share rests on a read the counter had not yet caught up with.

``window_share``: each request gets the window's energy times its share of all tokens
processed in the window (token-steps). Used for estimate-only meters and where the
whole window is shorter than the counter resolves; flagged.

Both methods give request energies that sum to the window's energy; the dynamic
figures (energy above the idle baseline) likewise sum to the window's dynamic energy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict

from joulebench.measure.quality import SPLIT_BY_WINDOW_SHARE, WINDOW_SHORTER_THAN_COUNTER

ApportionMethod = Literal["per_step_counter", "window_share"]
PER_STEP_COUNTER: ApportionMethod = "per_step_counter"
WINDOW_SHARE: ApportionMethod = "window_share"

# How often each meter's counter updates: the finest interval one read can resolve.
# NVML: the driver refreshes the total-energy counter about every 100 ms on recent
# NVIDIA GPUs; RAPL: the MSR updates about every 1 ms. Meters not listed (codecarbon)
# only estimate, and are never read per step.
COUNTER_RESOLUTION_S: dict[str, float] = {"nvml": 0.1, "rapl": 0.001}


class StepEnergy(TypedDict):
    """What the split needs of one engine step."""

    end_s: float  # seconds from the window start
    tokens: Mapping[str, int]  # request -> tokens processed in the step
    energy_j: float | None  # cumulative meter energy read after the step


class RequestEnergy(TypedDict):
    energy_j: float
    dynamic_energy_j: float | None


class Split(TypedDict):
    method: ApportionMethod
    counter_resolution_s: float | None
    groups: int  # counter intervals the energy was split over (1 for window_share)
    flags: list[str]
    by_request: dict[str, RequestEnergy]


def _shares(tokens: Mapping[str, int]) -> dict[str, float]:
    total = sum(tokens.values())
    return {k: v / total for k, v in tokens.items()} if total else {}


def window_share(
    steps: Sequence[StepEnergy], energy_j: float, dynamic_j: float | None
) -> dict[str, RequestEnergy]:
    token_steps: dict[str, int] = defaultdict(int)
    for step in steps:
        for request, n in step["tokens"].items():
            token_steps[request] += n
    return {
        r: {
            "energy_j": energy_j * share,
            "dynamic_energy_j": None if dynamic_j is None else dynamic_j * share,
        }
        for r, share in _shares(token_steps).items()
    }


def counter_groups(
    steps: Sequence[StepEnergy], energy_j: float, window_s: float, resolution_s: float
) -> list[tuple[float, float, dict[str, int]]]:
    """(joules, seconds, tokens by request) per run of steps spanning >= resolution_s.

    Intervals run from one read to the next (the first from the window start); the last
    runs to the window's end and takes the meter's final figure, so the groups' joules
    sum to ``energy_j`` exactly.
    """
    groups: list[tuple[float, float, dict[str, int]]] = []
    last_j, last_s = 0.0, 0.0
    pending: dict[str, int] = defaultdict(int)
    for i, step in enumerate(steps):
        for request, n in step["tokens"].items():
            pending[request] += n
        final = i == len(steps) - 1
        if final or step["end_s"] - last_s >= resolution_s:
            read_j = energy_j if final else float(step["energy_j"] or 0.0)
            end_s = window_s if final else step["end_s"]
            groups.append((read_j - last_j, end_s - last_s, dict(pending)))
            last_j, last_s, pending = read_j, end_s, defaultdict(int)
    return groups


def per_step(
    steps: Sequence[StepEnergy],
    energy_j: float,
    window_s: float,
    baseline_w: float | None,
    resolution_s: float,
) -> tuple[dict[str, RequestEnergy], int]:
    """Each group's energy (and its energy above baseline power x its seconds) split by
    tokens among its requests; (by request, number of groups)."""
    groups = counter_groups(steps, energy_j, window_s, resolution_s)
    total: dict[str, float] = defaultdict(float)
    dynamic: dict[str, float] = defaultdict(float)
    for joules, seconds, tokens in groups:
        above = joules - (baseline_w or 0.0) * seconds
        for request, share in _shares(tokens).items():
            total[request] += joules * share
            dynamic[request] += above * share
    split: dict[str, RequestEnergy] = {
        r: {"energy_j": j, "dynamic_energy_j": None if baseline_w is None else dynamic[r]}
        for r, j in total.items()
    }
    return split, len(groups)


def split_energy(
    steps: Sequence[StepEnergy],
    energy_j: float,
    window_s: float,
    *,
    meter: str,
    is_estimate: bool,
    baseline_w: float | None,
) -> Split:
    """The per-request split by the finest method the meter and the window allow."""
    resolution = COUNTER_RESOLUTION_S.get(meter)
    dynamic_j = None if baseline_w is None else energy_j - baseline_w * window_s
    read = bool(steps) and all(s["energy_j"] is not None for s in steps)
    flags: list[str] = []
    if resolution is not None and read and not is_estimate and window_s >= resolution:
        by_request, groups = per_step(steps, energy_j, window_s, baseline_w, resolution)
        return {
            "method": PER_STEP_COUNTER,
            "counter_resolution_s": resolution,
            "groups": groups,
            "flags": flags,
            "by_request": by_request,
        }
    flags.append(SPLIT_BY_WINDOW_SHARE)
    if resolution is not None and read and window_s < resolution:
        flags.append(WINDOW_SHORTER_THAN_COUNTER)
    return {
        "method": WINDOW_SHARE,
        "counter_resolution_s": resolution,
        "groups": 1,
        "flags": flags,
        "by_request": window_share(steps, energy_j, dynamic_j),
    }
