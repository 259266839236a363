"""Offline mode's prefill-only window (``count_prefill_energy``).

After the measured window, the batches it measured run again with one output token
(prefill plus the first token's sampling), between the same barriers and metered the same
way (once per node, by local rank 0). The parent turns it into prefill vs decode energy
(:mod:`joulebench.results.phase_energy`).
"""

from __future__ import annotations

import time
from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.measure.apportion import COUNTER_RESOLUTION_S
from joulebench.results.records import PrefillWindow


def wants_prefill_split(cfg: ExperimentConfig, device: str) -> bool:
    """The config's choice; unset, on for counter meters and off for estimates (a
    codecarbon estimate of a seconds-long window says nothing about phases)."""
    from joulebench.measure.factory import make_meter

    if cfg.scenario.serving:
        return False  # served requests are split per step instead
    if cfg.count_prefill_energy is not None:
        return cfg.count_prefill_energy
    return make_meter(cfg.energy_meter, device=device).name in COUNTER_RESOLUTION_S


def prefill_window(wl: Any, indices: list[int]) -> PrefillWindow:
    """Run batches ``indices`` of the workload with one output token, metered."""
    import torch

    from joulebench.measure.factory import make_meter
    from joulebench.runner.worker import _sync

    acc, cfg = wl.acc, wl.cfg
    encoded = [wl.encode(wl.batches[i]) for i in indices]
    kwargs = {**wl.gen_kwargs, "max_new_tokens": 1, "min_new_tokens": 1}
    meter = make_meter(cfg.energy_meter, device=wl.device) if acc.local_process_index == 0 else None
    if meter is not None:
        meter.start()
    acc.wait_for_everyone()
    start = time.perf_counter()
    with torch.no_grad():
        for enc in encoded:
            wl.model.generate(**enc, **kwargs)
    _sync(wl.device)
    acc.wait_for_everyone()
    window_s = time.perf_counter() - start
    return {
        "window_s": window_s,
        "energy": meter.stop().to_dict() if meter is not None else None,
        "input_tokens": sum(int(enc["attention_mask"].sum()) for enc in encoded),
        "num_prompts": sum(len(wl.batches[i]) for i in indices),
    }
