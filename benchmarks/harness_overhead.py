"""Harness overhead: joulebench's timed section vs a bare `model.generate` loop.

    python benchmarks/harness_overhead.py [--model models/tiny-llama] [--repeats 3]

Same model, prompts, batch size and output length, one process, CPU. Both are timed in
the same run, alternating, and the ratio of their throughputs is printed (issue 6's bar:
>= 0.98). Also prints the fixed cost of an experiment (launch, load, warm-up, meter).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from joulebench.config.models import ExperimentConfig
from joulebench.results import Identity
from joulebench.runner.model import load_model_and_tokenizer
from joulebench.runner.prompts import batches, load_prompt_texts, select_prompts
from joulebench.runner.worker import generation_kwargs
from joulebench.schedulers.job import run_experiment


def bare_tokens_per_s(cfg: ExperimentConfig) -> float:
    import torch

    model, tok = load_model_and_tokenizer(cfg, "cpu", torch.device("cpu"))
    texts = load_prompt_texts(cfg.dataset)
    counts = [len(ids) for ids in tok(texts)["input_ids"]]
    prompts = select_prompts(texts, counts, cfg.num_prompts, cfg.max_input_tokens, "bundled")
    kwargs = generation_kwargs(cfg, tok.pad_token_id)
    encoded = [tok(b, return_tensors="pt", padding=True, truncation=True,
                   max_length=cfg.max_input_tokens) for b in batches(prompts, cfg.batch_size)]
    with torch.no_grad():
        model.generate(**encoded[0], **kwargs)  # warm-up, as the harness does
        out_tokens, start = 0, time.perf_counter()
        for enc in encoded:
            out = model.generate(**enc, **kwargs)
            out_tokens += int((out[:, enc["input_ids"].shape[1]:] != tok.pad_token_id).sum())
    return out_tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/tiny-llama")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = ExperimentConfig(model=args.model, device="cpu", num_processes=1, num_prompts=64,
                           batch_size=8, max_input_tokens=64, max_output_tokens=128,
                           min_output_tokens=128, warmup_iterations=1,
                           energy_meter="codecarbon", idle_baseline_s=0, count_flops=False,
                           save_outputs=False)
    results = Path(tempfile.mkdtemp(prefix="jb-overhead-"))
    harness, bare, fixed = [], [], []
    for i in range(args.repeats):
        bare.append(bare_tokens_per_s(cfg))
        start = time.perf_counter()
        sections = run_experiment(cfg, Identity(f"{i + 1:04d}"), results)
        total_s = time.perf_counter() - start
        harness.append(sections["inference"]["throughput_output_tokens_per_s"])
        fixed.append(total_s - sections["inference"]["window_s"])
    h, b = statistics.median(harness), statistics.median(bare)
    print(f"bare generate loop:   {b:8.0f} output tokens/s (median of {args.repeats})")
    print(f"joulebench window:    {h:8.0f} output tokens/s")
    print(f"ratio harness / bare: {h / b:.3f} (bar >= 0.98)")
    print(f"fixed cost per experiment (launch, load, warm-up, meter, files): "
          f"{statistics.median(fixed):.1f} s")


if __name__ == "__main__":
    main()
