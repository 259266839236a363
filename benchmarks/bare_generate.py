"""The baseline of harness_overhead.py: a bare ``model.generate`` loop, one per process.

    accelerate launch ... benchmarks/bare_generate.py CONFIG.json OUT_DIR

Same model, prompts (same selection and per-process shard), batch size and output length
as the harness; one warm-up batch, then the timed loop between two barriers, as the
harness's window. Each process writes ``bare_rank{r}.json`` (output tokens, seconds).
``bare_window`` is also what window_ab.py runs beside the harness in the same processes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from joulebench.config.models import ExperimentConfig
from joulebench.runner.model import load_model_and_tokenizer
from joulebench.runner.prompts import batches, load_prompt_texts, select_prompts, shard
from joulebench.runner.worker import generation_kwargs


def bare_window(cfg: ExperimentConfig, acc: Any, model: Any, tok: Any) -> tuple[int, float]:
    """(this process's output tokens, the node's window in s) of one bare generate loop."""
    import torch

    texts = load_prompt_texts(cfg.dataset)
    counts = [len(ids) for ids in tok(texts, add_special_tokens=True)["input_ids"]]
    prompts = select_prompts(texts, counts, cfg.num_prompts, cfg.max_input_tokens, cfg.dataset.name)
    mine = shard(prompts, acc.process_index, acc.num_processes)
    kwargs = generation_kwargs(cfg, tok.pad_token_id)
    encoded = [
        tok(
            b, return_tensors="pt", padding=True, truncation=True, max_length=cfg.max_input_tokens
        ).to(acc.device)
        for b in batches(mine, cfg.batch_size)
    ]
    with torch.no_grad():
        for _ in range(cfg.warmup_iterations):
            model.generate(**encoded[0], **kwargs)
        acc.wait_for_everyone()
        out_tokens, start = 0, time.perf_counter()
        for enc in encoded:
            out = model.generate(**enc, **kwargs)
            out_tokens += int((out[:, enc["input_ids"].shape[1] :] != tok.pad_token_id).sum())
        acc.wait_for_everyone()
        return out_tokens, time.perf_counter() - start


def main() -> None:
    import torch
    from accelerate import Accelerator

    cfg = ExperimentConfig.model_validate(json.loads(Path(sys.argv[1]).read_text()))
    out_dir = Path(sys.argv[2])
    acc = Accelerator(cpu=cfg.device == "cpu")
    torch.manual_seed(cfg.seed + acc.process_index)
    model, tok = load_model_and_tokenizer(cfg, cfg.device, acc.device)
    out_tokens, window_s = bare_window(cfg, acc, model, tok)
    (out_dir / f"bare_rank{acc.process_index}.json").write_text(
        json.dumps({"output_tokens": out_tokens, "window_s": window_s})
    )


if __name__ == "__main__":
    main()
