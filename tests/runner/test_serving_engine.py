"""The dynamic batcher on the real tiny model (CPU torch, no fakes).

Requests join a batch already decoding and leave it when done; each must still get
exactly the tokens ``generate`` gives it alone (greedy), or batching changed the answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from joulebench.runner.serving import DynamicBatcher, Sampling, ServeLoop


@pytest.fixture(scope="module")
def loaded(tiny_model: Path) -> tuple[Any, Any, list[list[int]]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from joulebench.config.models import DatasetConfig
    from joulebench.runner.prompts import load_prompt_texts

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    texts = load_prompt_texts(DatasetConfig())[:7]
    # Prompts of different lengths, so joining rows need left padding.
    ids = [tok(t, truncation=True, max_length=8 + 9 * i)["input_ids"] for i, t in enumerate(texts)]
    return model, tok, ids


def greedy_alone(model: Any, ids: list[int], n: int, pad: int) -> list[int]:
    import torch

    out = model.generate(
        torch.tensor([ids]), max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=pad
    )
    return out[0, len(ids) :].tolist()


def test_staggered_requests_get_the_tokens_generate_gives_each_alone(loaded: Any) -> None:
    model, tok, ids = loaded
    pad = tok.pad_token_id or 0
    engine = DynamicBatcher(model, pad, Sampling(max_new_tokens=12, min_new_tokens=12))
    # Arrivals close enough that requests join a batch already decoding.
    loop = ServeLoop(engine, ids, [0.004 * i for i in range(len(ids))], max_concurrency=3)
    served = loop.run()
    assert [r["index"] for r in served] == list(range(len(ids)))
    for r in served:
        assert r["token_ids"] == greedy_alone(model, ids[r["index"]], 12, pad)
        assert r["output_tokens"] == 12 and r["input_tokens"] == len(ids[r["index"]])
        assert r["arrival_s"] <= r["admitted_s"] <= r["first_token_s"] <= r["finished_s"]
        assert r["token_s"] == sorted(r["token_s"])
    occupancy = [len(s["tokens"]) for s in loop.steps if s["kind"] == "decode"]
    assert max(occupancy) <= 3 and max(occupancy) >= 2  # batched, never over the cap
    assert engine.rows == []  # every request left the batch


def test_the_loop_waits_for_arrivals_and_admits_in_arrival_order(loaded: Any) -> None:
    model, tok, ids = loaded
    engine = DynamicBatcher(model, tok.pad_token_id or 0, Sampling(max_new_tokens=2))
    arrivals = [0.15, 0.0, 0.05]
    served = ServeLoop(engine, ids[:3], arrivals, max_concurrency=1).run()
    for r in served:
        assert r["admitted_s"] >= r["arrival_s"]
    order = sorted(served, key=lambda r: r["admitted_s"])
    assert [r["index"] for r in order] == [1, 2, 0]


def test_eos_ends_a_request_only_after_min_new_tokens(loaded: Any) -> None:
    model, tok, ids = loaded
    # Call every token the end: a request stops as soon as min_new_tokens allows.
    first = greedy_alone(model, ids[0], 1, tok.pad_token_id or 0)[0]
    how = Sampling(max_new_tokens=10, min_new_tokens=4, eos_token_id=first)
    served = ServeLoop(DynamicBatcher(model, 0, how), ids[:1], [0.0], 1).run()
    assert 4 <= served[0]["output_tokens"] <= 10
    assert first not in served[0]["token_ids"][:3]


class _CounterMeter:
    """Stands in for a counter meter's probe() (the reader's logic only)."""

    def __init__(self, name: str, energies: list[float | None]) -> None:
        self.name, self.energies = name, energies

    def probe(self) -> list[Any]:
        from joulebench.measure.timeline import Reading

        return [Reading(self.name, f"dev{i}", energy_j=e) for i, e in enumerate(self.energies)]


def test_the_step_reader_sums_counter_devices_and_refuses_partial_or_estimates() -> None:
    from joulebench.runner.serving_run import step_energy_reader

    read = step_energy_reader(_CounterMeter("rapl", [1.5, 2.0]))
    assert read is not None and read() == 3.5
    partial = step_energy_reader(_CounterMeter("nvml", [1.0, None]))  # one GPU only polled
    assert partial is not None and partial() is None
    assert step_energy_reader(_CounterMeter("codecarbon", [1.0])) is None
    assert step_energy_reader(None) is None
