"""Serving mode's engine and harness cost (issue 16). Prints figures and ratios.

    python benchmarks/serving_engine.py [--model DIR] [--device cpu|cuda] [--requests N]
        [--tokens T] [--concurrency C] [--pairs P] [--cb-requests N] [--no-cb]

1. transformers' continuous batching (``generate_batch``: ``init_continuous_batching``
   with paged attention, ``attn_implementation="paged|eager"``) against joulebench's
   ``dynamic_step_batcher`` on the same requests, all arriving at t=0: requests/s.
2. The harness against a bare loop, A/B/B/A in one process on one loaded model: the
   harness is ``ServeLoop`` (arrival checks, per-step records, a meter read after every
   step where the meter has a counter); the bare loop drives the same ``DynamicBatcher``
   with nothing else: admit up to the cap, prefill, decode, drop. Ratio of medians.
3. The cost of one per-step meter read (``probe``) for every meter that starts here, and
   that cost against the median decode step.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from joulebench.runner.serving import DynamicBatcher, Sampling, ServeLoop
from joulebench.runner.serving_run import step_energy_reader


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def load(model_dir: str, device: str, paged: bool = False) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"attn_implementation": "paged|eager"} if paged else {}
    dtype = torch.float16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, **kwargs).eval()
    return model.to(device), AutoTokenizer.from_pretrained(model_dir)


def prompts(tok: Any, n: int) -> list[list[int]]:
    from joulebench.config.models import DatasetConfig
    from joulebench.runner.prompts import load_prompt_texts

    texts = load_prompt_texts(DatasetConfig())
    return [
        tok(texts[i % len(texts)], truncation=True, max_length=64)["input_ids"] for i in range(n)
    ]


def bare_loop(engine: DynamicBatcher, ids: list[list[int]], cap: int, device: str) -> None:
    waiting = list(range(len(ids)))
    while waiting or engine.rows:
        room = cap - len(engine.rows)
        if waiting and room > 0:
            admit, waiting = waiting[:room], waiting[room:]
            tokens = engine.prefill(admit, [ids[i] for i in admit])
            tokens = [-1] * (len(engine.rows) - len(tokens)) + tokens
        else:
            tokens = engine.decode()
        _sync(device)
        engine.drop(engine.finished_rows(tokens))


def harness_loop(
    engine: DynamicBatcher, ids: list[list[int]], cap: int, device: str, read: Any
) -> ServeLoop:
    loop = ServeLoop(
        engine,
        ids,
        [0.0] * len(ids),
        cap,
        on_step=read or (lambda: None),
        sync=lambda: _sync(device),
    )
    loop.run()
    return loop


def engine_vs_cb(args: argparse.Namespace, model: Any, tok: Any, how: Sampling) -> None:
    ids = prompts(tok, args.cb_requests)
    engine_s = []
    for _ in range(2):
        start = time.perf_counter()
        bare_loop(
            DynamicBatcher(model, tok.pad_token_id or 0, how), ids, args.concurrency, args.device
        )
        engine_s.append(time.perf_counter() - start)
    print(
        f"dynamic_step_batcher: {args.cb_requests} requests x {args.tokens} tokens in "
        f"{min(engine_s):.2f} s ({args.cb_requests / min(engine_s):.1f} requests/s)"
    )
    if args.no_cb:
        return
    from transformers import GenerationConfig

    paged, _ = load(args.model, args.device, paged=True)
    config = GenerationConfig(
        max_new_tokens=args.tokens,
        min_new_tokens=args.tokens,
        do_sample=False,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    start = time.perf_counter()
    out = paged.generate_batch(inputs=ids, generation_config=config, warmup=False)
    cb_s = time.perf_counter() - start
    print(
        f"transformers continuous batching: {len(out)} requests in {cb_s:.2f} s "
        f"({len(out) / cb_s:.1f} requests/s); dynamic_step_batcher is "
        f"{cb_s / min(engine_s):.0f}x faster here"
    )


def meter_reads(device: str) -> dict[str, float]:
    """Seconds per probe() of each meter that starts here."""
    from joulebench.measure.factory import make_meter

    out = {}
    for name in ("nvml", "rapl", "codecarbon"):
        meter = make_meter(name, device=device)
        try:
            meter.start()
        except Exception as exc:  # not on this machine
            print(f"meter {name}: not available here ({type(exc).__name__})")
            continue
        try:
            meter.probe()
            n = 200
            start = time.perf_counter()
            for _ in range(n):
                meter.probe()
            out[name] = (time.perf_counter() - start) / n
        finally:
            meter.stop()
    return out


def harness_vs_bare(args: argparse.Namespace, model: Any, tok: Any, how: Sampling) -> None:
    from joulebench.measure.factory import make_meter

    ids = prompts(tok, args.requests)
    meter = make_meter(args.energy_meter, device=args.device)
    meter.start()
    read = step_energy_reader(meter)
    if read is None and hasattr(meter, "probe"):
        # An estimate meter is never read per step in a real run; probe it anyway so the
        # harness side pays for a read after every step, as on a counter meter.
        def read() -> None:
            meter.probe()

    sides: dict[str, list[float]] = {"harness": [], "bare": []}
    steps_s: list[float] = []
    try:
        for i in range(args.pairs):
            for side in ("harness", "bare") if i % 2 == 0 else ("bare", "harness"):
                engine = DynamicBatcher(model, tok.pad_token_id or 0, how)
                start = time.perf_counter()
                if side == "bare":
                    bare_loop(engine, ids, args.concurrency, args.device)
                else:
                    loop = harness_loop(engine, ids, args.concurrency, args.device, read)
                    steps_s += [
                        s["end_s"] - s["start_s"] for s in loop.steps if s["kind"] == "decode"
                    ]
                sides[side].append(args.requests / (time.perf_counter() - start))
    finally:
        meter.stop()
    h, b = statistics.median(sides["harness"]), statistics.median(sides["bare"])
    print(
        f"harness (meter {meter.name} read after every step): {h:.1f} requests/s; "
        f"bare loop: {b:.1f} requests/s; harness/bare {h / b:.3f} (medians of {args.pairs})"
    )
    step = statistics.median(steps_s)
    print(f"median decode step {step * 1e3:.3f} ms")
    for name, seconds in meter_reads(args.device).items():
        print(
            f"meter {name}: probe() {seconds * 1e6:.1f} us per read = "
            f"{seconds / step:.1%} of a median decode step"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: a tiny model built here)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--energy-meter", default="auto")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--cb-requests", type=int, default=16)
    parser.add_argument("--no-cb", action="store_true", help="skip continuous batching")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's default); 1 keeps a shared VM's noise out: "
        "two spinning OpenMP threads on a loaded 2-core VM made steps up to 50x slower",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(
        f"device {args.device}, torch threads {args.threads or 'default'}, "
        f"{args.requests} requests x {args.tokens} tokens, concurrency {args.concurrency}"
    )
    if args.model is None:
        from joulebench.runner.demo_model import build_demo_model

        args.model = str(build_demo_model(Path(tempfile.mkdtemp()) / "tiny-llama"))
    model, tok = load(args.model, args.device)
    how = Sampling(max_new_tokens=args.tokens, min_new_tokens=args.tokens)
    harness_loop(
        DynamicBatcher(model, tok.pad_token_id or 0, how), prompts(tok, 4), 4, args.device, None
    )
    engine_vs_cb(args, model, tok, how)
    harness_vs_bare(args, model, tok, how)


if __name__ == "__main__":
    main()
