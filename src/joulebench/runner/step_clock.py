"""Per-step timestamps of one ``generate`` call, for time-to-first-token and inter-token
latency, without slowing the call they time.

The clock is a stopping criterion that never stops anything: generate calls it once per
step, right after the step's token is chosen, with the tokens still on the device. On CPU
it reads the host clock. On CUDA it records an event in the stream and never waits for
the GPU: a streamer would get each step's tokens through ``.cpu()``, a host-device sync
per token, which on an H100 cost the tiny model about 10% of its throughput
(docs/benchmarks.md). The events are read once, after the batch's own end-of-generate
synchronisation. (A logits processor would do as well but for its price: transformers
inspects each processor's signature on every step, 12 us of host time a step against
2.3 us here.)
"""

from __future__ import annotations

import functools
import time
from typing import Any

HOST, CUDA_EVENTS = "host", "cuda_events"


def step_clock(device: str, max_steps: int) -> Any:
    """A clock for one generate call on ``device``; pass it in ``stopping_criteria``."""
    return _clock_class()(device, max_steps)


@functools.cache
def _clock_class() -> type:
    # Defined on first use: transformers is imported lazily, and the class once per process.
    from transformers import StoppingCriteria

    class StepClock(StoppingCriteria):
        def __init__(self, device: str, max_steps: int) -> None:
            self.kind = CUDA_EVENTS if device == "cuda" else HOST
            self.host_times: list[float] = []
            self.events: list[Any] = []
            self.steps = 0
            self._never: Any = None  # "not done" for every sequence, made on the first step
            if self.kind == CUDA_EVENTS:
                import torch

                # Made up front: the steps only record them, a few microseconds each.
                self.events = [torch.cuda.Event(enable_timing=True) for _ in range(max_steps + 1)]

        def start(self) -> None:
            """Mark the start; call just before generate, on an idle device."""
            if self.kind == CUDA_EVENTS:
                self.events[0].record()

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            self.steps += 1
            if self.kind == CUDA_EVENTS:
                if self.steps < len(self.events):
                    self.events[self.steps].record()
            else:
                self.host_times.append(time.perf_counter())
            if self._never is None or self._never.shape[0] != input_ids.shape[0]:
                import torch

                self._never = torch.zeros(
                    input_ids.shape[0], dtype=torch.bool, device=input_ids.device
                )
            return self._never

        def times(self, start: float) -> list[float]:
            """``start``, then each step's time on the host clock; call after a sync."""
            if self.kind == HOST:
                return [start, *self.host_times]
            used = self.events[: min(self.steps, len(self.events) - 1) + 1]
            return [start + used[0].elapsed_time(e) / 1000.0 for e in used]

    return StepClock


def token_timing(times: list[float], start: float, clock_kind: str = HOST) -> dict[str, Any]:
    """TTFT, decode time and decode steps from ``[start, step 1, step 2, ...]``."""
    if len(times) < 2:
        return {}
    return {
        "ttft_s": times[1] - start,
        "decode_s": times[-1] - times[1],
        "decode_steps": len(times) - 2,
        "step_clock": clock_kind,
    }
