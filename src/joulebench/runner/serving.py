"""The serving engine: a dynamic batcher that admits arrived requests between steps.

One engine *step* is one forward pass: either the prefill of the requests admitted since
the last step (left-padded together, each producing its first token) or one decode token
for every request in flight. Between steps the loop admits whatever has arrived, up to
``max_concurrency`` in flight; a finished request leaves the batch at once. Each
request's KV cache rows join and leave the batch's ``DynamicCache`` (left-padded, with
the attention mask and explicit position ids keeping padding out of attention), so no
request waits for a batch to fill or to drain.

Measured against transformers' own continuous batching (``init_continuous_batching``,
paged attention) in ``benchmarks/serving_engine.py``; the result names the policy run
(``BATCHING_POLICY``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from joulebench.results.records import DECODE, PREFILL, ServedRequest, StepRecord

BATCHING_POLICY = "dynamic_step_batcher"  # admit arrivals between steps, prefill first


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen (the config's decoder block and lengths)."""

    max_new_tokens: int
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    eos_token_id: int | None = None


class DynamicBatcher:
    """The batch of requests in flight: their KV cache rows, masks and last tokens."""

    policy = BATCHING_POLICY

    def __init__(self, model: Any, pad_token_id: int, sampling: Sampling) -> None:
        self.model, self.pad, self.sampling = model, pad_token_id, sampling
        self.rows: list[int] = []  # request index of each batch row
        self.produced: list[int] = []  # output tokens so far, per row
        self._cache: Any = None
        self._mask: Any = None  # [rows, positions] 1 = real token
        self._lengths: Any = None  # real tokens per row (the next position id)
        self._last: Any = None  # last chosen token per row

    def prefill(self, requests: list[int], input_ids: list[list[int]]) -> list[int]:
        """Run the prompts of newly admitted requests; their first tokens."""
        import torch
        from transformers import DynamicCache

        device = self.model.device
        width = max(len(ids) for ids in input_ids)
        ids = torch.tensor(
            [[self.pad] * (width - len(x)) + x for x in input_ids], device=device, dtype=torch.long
        )
        mask = torch.tensor(
            [[0] * (width - len(x)) + [1] * len(x) for x in input_ids], device=device
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        with torch.no_grad():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
            )
        chosen = self._choose(out.logits[:, -1, :], [0] * len(requests))
        self._merge(out.past_key_values, mask, mask.sum(-1), chosen)
        self.rows += requests
        self.produced += [1] * len(requests)
        return chosen.tolist()

    def decode(self) -> list[int]:
        """One token for every request in flight, in row order."""
        import torch

        ones = torch.ones((len(self.rows), 1), dtype=self._mask.dtype, device=self._mask.device)
        mask = torch.cat([self._mask, ones], dim=1)
        with torch.no_grad():
            out = self.model(
                input_ids=self._last[:, None],
                attention_mask=mask,
                position_ids=self._lengths[:, None],
                cache=self._cache,
                use_cache=True,
            )
        self._cache, self._mask = out.past_key_values, mask
        self._lengths = self._lengths + 1
        self._last = self._choose(out.logits[:, -1, :], self.produced)
        self.produced = [n + 1 for n in self.produced]
        return self._last.tolist()

    def finished_rows(self, last_tokens: list[int]) -> list[int]:
        s = self.sampling
        return [
            row
            for row, (n, token) in enumerate(zip(self.produced, last_tokens, strict=True))
            if n >= s.max_new_tokens or (token == s.eos_token_id and n >= s.min_new_tokens)
        ]

    def drop(self, rows: list[int]) -> None:
        """Remove finished rows; trim the padding columns no remaining row needs."""
        import torch

        if not rows:
            return
        gone = set(rows)
        keep = [r for r in range(len(self.rows)) if r not in gone]
        self.rows = [self.rows[r] for r in keep]
        self.produced = [self.produced[r] for r in keep]
        if not keep:
            self._cache = self._mask = self._lengths = self._last = None
            return
        index = torch.tensor(keep, device=self._mask.device)
        mask = self._mask[index]
        first = int(mask.any(dim=0).nonzero()[0])  # leading columns that are all padding
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, first:]
            layer.values = layer.values[index, :, first:]
        self._mask, self._lengths, self._last = (
            mask[:, first:],
            self._lengths[index],
            self._last[index],
        )

    def _merge(self, cache: Any, mask: Any, lengths: Any, last: Any) -> None:
        import torch
        from torch.nn.functional import pad

        if self._cache is None:
            self._cache, self._mask, self._lengths, self._last = cache, mask, lengths, last
            return
        width = max(self._mask.shape[1], mask.shape[1])

        def left(t: Any, dim_from_end: int) -> Any:
            short = width - t.shape[-dim_from_end]
            return t if short == 0 else pad(t, [0, 0] * (dim_from_end - 1) + [short, 0])

        for mine, new in zip(self._cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([left(mine.keys, 2), left(new.keys, 2)])
            mine.values = torch.cat([left(mine.values, 2), left(new.values, 2)])
        self._mask = torch.cat([left(self._mask, 1), left(mask, 1)])
        self._lengths = torch.cat([self._lengths, lengths])
        self._last = torch.cat([self._last, last])

    def _choose(self, logits: Any, produced: list[int]) -> Any:
        import torch

        s = self.sampling
        logits = logits.float()
        if s.eos_token_id is not None and s.min_new_tokens:
            early = torch.tensor([n < s.min_new_tokens for n in produced], device=logits.device)
            logits[early, s.eos_token_id] = float("-inf")  # as generate's min_new_tokens
        if not s.do_sample:
            return logits.argmax(dim=-1)
        logits = logits / s.temperature
        if s.top_k:
            kth = torch.topk(logits, min(s.top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if s.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative - ordered.softmax(-1) > s.top_p  # keep the first over top_p
            logits = logits.scatter(1, order, ordered.masked_fill(drop, float("-inf")))
        return torch.multinomial(logits.softmax(-1), 1).squeeze(-1)


@dataclass
class ServeLoop:
    """Drives an engine through an arrival schedule in real time."""

    engine: DynamicBatcher
    input_ids: list[list[int]]  # request index -> prompt token ids
    arrival_s: list[float]
    max_concurrency: int
    on_step: Callable[[], float | None] = lambda: None  # read after each step (energy)
    sync: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    steps: list[StepRecord] = field(default_factory=list)

    def run(self) -> list[ServedRequest]:
        """Serve every request; returns them in index order (times from the start)."""
        engine, t0 = self.engine, self.clock()
        waiting = deque(sorted(range(len(self.arrival_s)), key=lambda i: (self.arrival_s[i], i)))
        served: dict[int, ServedRequest] = {}
        done = 0
        while done < len(self.arrival_s):
            now = self.clock() - t0
            admit: list[int] = []
            room = self.max_concurrency - len(engine.rows)
            while waiting and len(admit) < room and self.arrival_s[waiting[0]] <= now:
                admit.append(waiting.popleft())
            if not admit and not engine.rows:
                self.sleep(max(0.0, self.arrival_s[waiting[0]] - now))
                continue
            start = self.clock() - t0
            if admit:
                for i in admit:
                    served[i] = self._new(i, start)
                tokens = engine.prefill(admit, [self.input_ids[i] for i in admit])
                counts = {str(i): len(self.input_ids[i]) for i in admit}
                kind = PREFILL
            else:
                counts = {str(i): 1 for i in engine.rows}
                tokens = engine.decode()
                kind = DECODE
            self.sync()
            end = self.clock() - t0
            energy = self.on_step()
            self.steps.append(
                {"kind": kind, "start_s": start, "end_s": end, "tokens": counts, "energy_j": energy}
            )
            # The tokens of the rows just run: prefill appends rows at the end.
            rows = engine.rows[-len(admit) :] if admit else engine.rows
            for i, token in zip(rows, tokens, strict=True):
                served[i]["token_s"].append(end)
                served[i]["token_ids"].append(token)
                served[i]["output_tokens"] += 1
            finished = engine.finished_rows(tokens if not admit else self._last_tokens(tokens))
            for row in finished:
                served[engine.rows[row]]["finished_s"] = end
            done += len(finished)
            engine.drop(finished)
        for rec in served.values():
            rec["first_token_s"] = rec["token_s"][0]
        return [served[i] for i in sorted(served)]

    def _last_tokens(self, new_tokens: list[int]) -> list[int]:
        """Per row of the batch, its latest token (-1 where it made none this step)."""
        rows = len(self.engine.rows)
        return [-1] * (rows - len(new_tokens)) + new_tokens

    def _new(self, index: int, admitted_s: float) -> ServedRequest:
        return {
            "index": index,
            "arrival_s": self.arrival_s[index],
            "admitted_s": admitted_s,
            "first_token_s": 0.0,
            "finished_s": 0.0,
            "input_tokens": len(self.input_ids[index]),
            "output_tokens": 0,
            "token_s": [],
            "token_ids": [],
        }
