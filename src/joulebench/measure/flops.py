"""FLOPs two ways: analytic from the architecture, counted by FlopCounterMode.

Counting slows a forward ~6x, so it runs on a separate, untimed pass; CPU's fused
attention kernel is invisible to the counter, so that pass uses eager attention.
"""

from __future__ import annotations

from typing import Any


def linear_params(model: Any) -> int:
    """Weights that take part in a matmul per token (embeddings lookups do not)."""
    import torch

    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def analytic_flops(model: Any, tokens: int) -> int:
    """2 FLOPs (multiply + add) per linear weight per token; attention scores excluded."""
    return 2 * linear_params(model) * tokens


def counted_prefill_flops(model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """Count one prefill forward of ``inputs`` and compare with the analytic figure."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    previous = getattr(model.config, "_attn_implementation", None)
    switched = False
    if previous not in (None, "eager") and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
            switched = True
        except (ValueError, ImportError, AttributeError):
            pass
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(**inputs)
        counted = int(counter.get_total_flops())
    finally:
        if switched:
            model.set_attn_implementation(previous)
    tokens = int(inputs["input_ids"].numel())  # padded positions are computed too
    analytic = analytic_flops(model, tokens)
    return {
        "counted_prefill_flops": counted,
        "analytic_prefill_flops": analytic,
        "prefill_tokens": tokens,
        "counted_over_analytic": counted / analytic if analytic else None,
        "attention_implementation_counted": "eager"
        if switched or previous == "eager"
        else previous,
    }
