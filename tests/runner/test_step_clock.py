"""The per-step clock: one timestamp per generated token, and outputs left unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.runner.step_clock import HOST, step_clock, token_timing


def test_token_timing_from_timestamps() -> None:
    timing = token_timing([10.0, 10.5, 10.6, 10.8], 10.0, HOST)
    assert timing == pytest.approx(
        {"ttft_s": 0.5, "decode_s": 0.3, "decode_steps": 2, "step_clock": HOST}
    )
    assert token_timing([10.0], 10.0) == {}


def test_clock_times_every_step_without_changing_the_output(tiny_model: Path) -> None:
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteriaList

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    enc = tok(["the cost of a token", "joules"], return_tensors="pt", padding=True)
    kwargs = {
        "max_new_tokens": 12,
        "min_new_tokens": 12,
        "do_sample": False,
        "pad_token_id": tok.pad_token_id,
    }
    with torch.no_grad():
        plain = model.generate(**enc, **kwargs)
        clock = step_clock("cpu", 12)
        start = time.perf_counter()
        clock.start()
        timed = model.generate(**enc, **kwargs, stopping_criteria=StoppingCriteriaList([clock]))
    assert torch.equal(plain, timed)
    times = clock.times(start)
    assert len(times) == 13 and times == sorted(times)
    timing = token_timing(times, start, clock.kind)
    assert timing["decode_steps"] == 11 and timing["ttft_s"] > 0 and timing["decode_s"] > 0
