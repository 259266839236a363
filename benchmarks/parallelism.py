"""Tensor parallel vs data parallel vs one process: tokens/s and J/token in one run.

    python benchmarks/parallelism.py                    # tiny model, 3 rounds
    python benchmarks/parallelism.py --rounds 5 --prompts 64 --tokens 64
    python benchmarks/parallelism.py --large --rounds 1 --prompts 8 --tokens 16   # 0.97B
    python benchmarks/parallelism.py --threads 1        # one CPU thread per process

Three worker pools stay up side by side (1 process; 2 data-parallel processes; 2 tensor-
parallel processes, gloo on CPU) and the three experiments alternate round by round, so a
noisy moment on the machine hits all three alike (with --large each pool is closed after its
experiment instead, so only one model's processes hold memory at a time). Each figure is
the experiment's own (``results.aggregate``): output tokens of the measured window over the
window, and the node's energy over those tokens (codecarbon on CPU: an estimate,
proportional to the window and the CPU share). Medians over rounds, then ratios against one process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from joulebench.config.models import ExperimentConfig
from joulebench.results import aggregate
from joulebench.runner.experiment import run_workers
from joulebench.runner.pool import WorkerPools

MODES = {"1 process": ("data", 1), "data 2": ("data", 2), "tensor 2": ("tensor", 2)}


def ensure_model(path: Path, large: bool) -> Path:
    if not (path / "config.json").exists():
        from joulebench.runner.demo_model import SIZES, build_demo_model

        print(f"building {path} (random weights)...", flush=True)
        build_demo_model(path, **SIZES["1b" if large else "tiny"])
    return path


def config(model: Path, mode: str, processes: int, args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig(
        model=str(model),
        device="cpu",
        parallelism=mode,  # type: ignore[arg-type]
        num_processes=processes,
        num_prompts=args.prompts,
        batch_size=args.batch,
        max_input_tokens=64,
        max_output_tokens=args.tokens,
        min_output_tokens=args.tokens,
        warmup_iterations=1,
        idle_baseline_s=0,
        count_flops=False,
        save_outputs=False,
        energy_meter="codecarbon",
    )


def one_round(
    name: str, cfg: ExperimentConfig, pools: WorkerPools, scratch: Path, index: int
) -> tuple[float, float]:
    """(output tokens/s, J/output token) of one experiment in its kept-up workers."""
    raw = run_workers(cfg, f"{index:04d}", cfg.config_hash(), scratch / f"{index:04d}", pools=pools)
    inference = aggregate.inference_metrics(raw.ranks)
    compute = aggregate.compute_metrics(raw.ranks, inference)
    energy = aggregate.energy_metrics(raw.ranks, inference, compute)
    tok_s = inference["throughput_output_tokens_per_s"] or 0.0
    j_tok = energy["energy_per_output_token_j"] or float("nan")
    print(
        f"  {name:10s} {tok_s:10.1f} tok/s  {j_tok:.5f} J/token  "
        f"({inference['measured_output_tokens']} tokens in {inference['window_s']:.2f} s)",
        flush=True,
    )
    return tok_s, j_tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="the 0.97B Llama (float32)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument(
        "--threads",
        type=int,
        help="OMP_NUM_THREADS of every worker (default: the cores shared out per process)",
    )
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # worker_env keeps a set value
    name = "bench-llama-1b" if args.large else "tiny-llama"
    model = ensure_model(args.model_dir / name, args.large)
    figures: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    pools = {m: WorkerPools() for m in MODES}
    index = 0
    with tempfile.TemporaryDirectory(prefix="jb-parallelism-") as tmp:
        try:
            for round_no in range(1, args.rounds + 1):
                print(f"round {round_no}/{args.rounds} ({name})", flush=True)
                for mode, (parallelism, processes) in MODES.items():
                    index += 1
                    cfg = config(model, parallelism, processes, args)
                    figures[mode].append(one_round(mode, cfg, pools[mode], Path(tmp), index))
                    if args.large:  # three 1B pools at once would hold ~15 GB of RAM
                        pools[mode].close()
        finally:
            for pool in pools.values():
                pool.close()
    base_tok = statistics.median(t for t, _ in figures["1 process"])
    base_j = statistics.median(j for _, j in figures["1 process"])
    print(f"\nmedians over {args.rounds} round(s), {args.prompts} prompts x {args.tokens} tokens")
    print(f"{'mode':10s} {'tok/s':>10s} {'J/token':>10s} {'tok/s ratio':>12s} {'J/tok ratio':>12s}")
    for mode, runs in figures.items():
        tok = statistics.median(t for t, _ in runs)
        joules = statistics.median(j for _, j in runs)
        print(
            f"{mode:10s} {tok:10.1f} {joules:10.5f} {tok / base_tok:12.3f} {joules / base_j:12.3f}"
        )


if __name__ == "__main__":
    main()
