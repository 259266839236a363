"""Harness overhead: joulebench's timed section vs a bare `model.generate` loop.

    python benchmarks/harness_overhead.py                 # tiny model, 1 and 2 processes
    python benchmarks/harness_overhead.py --large         # also a ~1B Llama (slow: ~15 min)
    python benchmarks/harness_overhead.py --processes 2 --repeats 5 --job-size 4
    python benchmarks/harness_overhead.py --device cuda --processes 1 --same-processes 8
    python benchmarks/harness_overhead.py --sweep float32 bfloat16 --job-size 4

Same model, prompts, batch size, output length and process count (CPU by default; with
--device cuda, float16 on the GPUs with the NVML meter and GPU-sized batches). Bare runs (their
own `accelerate launch`, benchmarks/bare_generate.py) and harness experiments (in the
job's reused workers) alternate; medians of each are compared (issue 6's bar: >= 0.98).
Then a job of N experiments runs twice, with worker reuse and without, through the real
job code (claim, files, CSV row): wall time, fixed cost per experiment broken down, and
the CPU the parent and the accelerate launcher spend while the workers run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from joulebench.config.models import ExperimentConfig
from joulebench.paths import Paths
from joulebench.results import Identity
from joulebench.runner.launch import accelerate_command, worker_env
from joulebench.runner.pool import WorkerPools, process_cpu_s
from joulebench.schedulers.job import run_experiment, run_tasks
from joulebench.suite.spec import ExperimentSpec

BARE = Path(__file__).resolve().with_name("bare_generate.py")
AB = Path(__file__).resolve().with_name("window_ab.py")
PHASES = ("load", "prompts", "baseline", "warmup", "meter_start", "meter_stop")


def ensure_model(path: Path, large: bool) -> Path:
    if not (path / "config.json").exists():
        from joulebench.runner.demo_model import SIZES, build_demo_model

        print(f"building {path} (random weights)...", flush=True)
        build_demo_model(path, **SIZES["1b" if large else "tiny"])
    return path


def bare_tokens_per_s(cfg: ExperimentConfig, scratch: Path) -> float:
    """One bare run in its own processes: total output tokens / the slowest window."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    (out / "cfg.json").write_text(cfg.model_dump_json())
    launch = accelerate_command(cfg.num_processes, cfg.device, [])[:-2]  # drop "-m worker"
    cmd = [*launch, str(BARE), str(out / "cfg.json"), str(out)]
    subprocess.run(
        cmd,
        env=worker_env(cfg.num_processes, cfg.device),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ranks = [json.loads(p.read_text()) for p in out.glob("bare_rank*.json")]
    return sum(r["output_tokens"] for r in ranks) / max(r["window_s"] for r in ranks)


def same_processes(cfg: ExperimentConfig, pairs: int, scratch: Path) -> dict[str, Any]:
    """Harness and bare windows alternating (A/B/B/A) in one set of worker processes."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    (out / "cfg.json").write_text(cfg.model_dump_json())
    launch = accelerate_command(cfg.num_processes, cfg.device, [])[:-2]
    subprocess.run(
        [*launch, str(AB), str(out / "cfg.json"), str(out), str(pairs)],
        env=worker_env(cfg.num_processes, cfg.device),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("ab_rank*.json"))]
    rates: dict[str, list[float]] = {"harness": [], "bare": []}
    for runs in zip(*ranks, strict=True):  # the n-th window of every process
        tokens = sum(r["output_tokens"] for r in runs)
        rates[runs[0]["side"]].append(tokens / max(r["window_s"] for r in runs))
    h, b = rates["harness"], rates["bare"]
    ratios = sorted(x / y for x, y in zip(h, b, strict=True))
    return {
        "harness": statistics.median(h),
        "bare": statistics.median(b),
        "ratio": statistics.median(h) / statistics.median(b),
        "pair_ratio": statistics.median(ratios),
        "pair_ratios": ratios,
        "mean_ratio": sum(h) / sum(b),
        "mean_ratio_ci": bootstrap_ci(h, b),
    }


def bootstrap_ci(h: list[float], b: list[float], draws: int = 4000) -> tuple[float, float]:
    """95% interval of the ratio of means, resampling whole pairs (seeded: reproducible)."""
    import random

    rng, n = random.Random(0), len(h)
    stats = []
    for _ in range(draws):
        picks = [rng.randrange(n) for _ in range(n)]
        stats.append(sum(h[i] for i in picks) / sum(b[i] for i in picks))
    stats.sort()
    return stats[int(0.025 * draws)], stats[int(0.975 * draws) - 1]


def report_same_processes(label: str, r: dict[str, Any]) -> None:
    n = len(r["pair_ratios"])
    quart = (r["pair_ratios"][n // 4], r["pair_ratios"][(3 * n) // 4])
    print(f"\n== {label}: harness and bare alternating in the same processes, {n} pairs")
    print(f"bare generate loop:   {r['bare']:8.1f} tok/s (median)")
    print(f"joulebench window:    {r['harness']:8.1f} tok/s (median)")
    low, high = r["mean_ratio_ci"]
    print(
        f"ratio harness / bare: {r['mean_ratio']:.3f} of means (95% interval {low:.3f}-"
        f"{high:.3f}; bar >= 0.98), {r['ratio']:.3f} of medians, {r['pair_ratio']:.3f} "
        f"median of pairs (quartiles {quart[0]:.3f}-{quart[1]:.3f})"
    )


def throughput(cfg: ExperimentConfig, repeats: int, scratch: Path) -> dict[str, Any]:
    """Bare and harness alternately; the harness runs in one job's reused workers."""
    bare, harness, parent_cpu, launcher_cpu, wall = [], [], [], [], []
    results = Path(tempfile.mkdtemp(dir=scratch))
    with WorkerPools() as pools:
        for i in range(repeats):
            bare.append(bare_tokens_per_s(cfg, scratch))
            if i == 0:  # launch the harness's workers outside the timed comparison
                run_experiment(cfg, Identity("0000"), results, pools=pools)
            pool, _ = pools.get(_shape(cfg), results / "launcher.log")
            cpu0, launcher0, t0 = (
                time.process_time(),
                process_cpu_s(pool.launcher_pid),
                time.perf_counter(),
            )
            sections = run_experiment(cfg, Identity(f"{i + 1:04d}"), results, pools=pools)
            wall.append(time.perf_counter() - t0)
            parent_cpu.append(time.process_time() - cpu0)
            launcher_cpu.append(process_cpu_s(pool.launcher_pid) - launcher0)
            harness.append(sections["inference"]["throughput_output_tokens_per_s"])
    b, h = statistics.median(bare), statistics.median(harness)
    pairs = statistics.median(x / y for x, y in zip(harness, bare, strict=True))
    return {
        "bare": b,
        "harness": h,
        "ratio": h / b,
        "pair_ratio": pairs,
        "bare_all": bare,
        "harness_all": harness,
        "parent_cpu_s": statistics.median(parent_cpu),
        "launcher_cpu_s": statistics.median(launcher_cpu),
        "experiment_wall_s": statistics.median(wall),
    }


def _shape(cfg: ExperimentConfig) -> Any:
    from joulebench.runner.pool import PoolShape

    return PoolShape.of(cfg, cfg.device)


def job(cfg: ExperimentConfig, size: int, reuse: bool, scratch: Path) -> dict[str, Any]:
    """A job of ``size`` experiments of one shape through the real job code."""
    root = Path(tempfile.mkdtemp(dir=scratch))
    paths = Paths(tracker_dir=root / "trk", results_dir=root / "results")
    sweep = SWEEP or [cfg.precision]  # --sweep: a precision sweep, one shape change a key
    specs = [
        ExperimentSpec(
            suite="bench",
            config_name=f"c{i}",
            cycle=1,
            config=cfg.model_copy(update={"precision": sweep[i % len(sweep)]}),
        )
        for i in range(size)
    ]
    starts: list[float] = []
    ends: list[float] = []
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with WorkerPools(reuse=reuse) as pools:
        outcomes = run_tasks(
            specs,
            paths,
            on_outcome=lambda o: ends.append(time.perf_counter()),
            on_start=lambda s: starts.append(time.perf_counter()),
            pools=pools,
        )
    total_s = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    assert all(o.status == "done" for o in outcomes), outcomes
    per_exp = [e - s for s, e in zip(starts, ends, strict=True)]
    setups, windows = [], []
    for o in outcomes:
        folder = paths.results_dir / "raw_results" / str(o.experiment_id)
        setups.append(
            json.loads((folder / f"{o.experiment_id}_1_experiment_setup.json").read_text())[
                "timing"
            ]
        )
        windows.append(
            json.loads((folder / f"{o.experiment_id}_4_inference_metrics.json").read_text())[
                "window_s"
            ]
        )
    breakdown = {"launch": [t["workers_launch_s"] for t in setups]}
    for phase in PHASES:
        breakdown[phase] = [t["phases_s_max"].get(phase, 0.0) for t in setups]
    breakdown["parent: files, CSV, tracker"] = [
        w - t["launch_wall_s"] for w, t in zip(per_exp, setups, strict=True)
    ]
    cpu_s = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return {
        "total_s": total_s,
        "per_experiment_s": per_exp,
        "windows_s": windows,
        "fixed_s": [p - w for p, w in zip(per_exp, windows, strict=True)],
        "breakdown": breakdown,
        "launches": pools.launches,
        "parent_cpu_s": cpu_s,
        "launcher_watch_cpu_s": pools.launcher_watch_cpu_s,
    }


def report_throughput(label: str, r: dict[str, Any]) -> None:
    print(f"\n== {label}: window throughput (output tokens/s), medians")
    print(f"bare generate loop:   {r['bare']:8.1f}   runs {_rounded(r['bare_all'])}")
    print(f"joulebench window:    {r['harness']:8.1f}   runs {_rounded(r['harness_all'])}")
    print(
        f"ratio harness / bare: {r['ratio']:.3f} of medians, {r['pair_ratio']:.3f} median of "
        "back-to-back pairs (bar >= 0.98)"
    )
    print(
        f"per reused experiment: wall {r['experiment_wall_s']:.2f} s, parent CPU "
        f"{r['parent_cpu_s']:.3f} s, accelerate launcher CPU {r['launcher_cpu_s']:.3f} s"
    )


def _rounded(values: list[float]) -> list[int]:
    return [round(v) for v in values]


def report_jobs(label: str, size: int, cold: dict[str, Any], warm: dict[str, Any]) -> None:
    print(f"\n== {label}: a job of {size} experiments")
    for name, r in (("fresh workers each", cold), ("reused workers", warm)):
        fixed = r["fixed_s"]
        print(
            f"{name:19s} total {r['total_s']:6.1f} s  launches {r['launches']}  "
            f"per experiment {[round(x, 1) for x in r['per_experiment_s']]} s  "
            f"fixed cost mean {statistics.mean(fixed):.2f} s "
            f"(first {fixed[0]:.2f}, later median {statistics.median(fixed[1:] or fixed):.2f})"
            f"  parent CPU {r['parent_cpu_s']:.2f} s, launcher CPU after start-up "
            f"{r['launcher_watch_cpu_s']:.2f} s"
        )
    print(f"wall time with reuse / without: {warm['total_s'] / cold['total_s']:.2f}")
    print("fixed cost per experiment, broken down (s; first experiment / median of later):")
    for phase in cold["breakdown"]:
        c, w = cold["breakdown"][phase], warm["breakdown"][phase]
        print(
            f"  {phase:28s} fresh {c[0]:6.2f} / {statistics.median(c[1:] or c):6.2f}"
            f"   reused {w[0]:6.2f} / {statistics.median(w[1:] or w):6.2f}"
        )


PROMPTS = {"tiny": 64}  # --prompts: longer windows shrink any fixed per-window cost
EXTRA: dict[str, Any] = {}  # --no-token-timing: how much the per-step clock costs
SWEEP: list[str] = []  # --sweep: job experiments alternate these precisions
# --device cuda: the GPU path, in fp16 with the NVML meter; a GPU needs bigger batches
# than a CPU before the window measures the model rather than the kernel launches.
DEVICE = {"device": "cpu", "precision": "float32", "energy_meter": "codecarbon"}
CUDA = {"device": "cuda", "precision": "float16", "energy_meter": "nvml"}


def config(model: Path, processes: int, large: bool, baseline_s: float) -> ExperimentConfig:
    if DEVICE["device"] == "cuda":
        size = {"num_prompts": 128, "batch_size": 32 if large else 16, "max_output_tokens": 128}
    else:
        size = (
            {"num_prompts": 16, "batch_size": 4, "max_output_tokens": 16}
            if large
            else {"num_prompts": PROMPTS["tiny"], "batch_size": 8, "max_output_tokens": 128}
        )
    return ExperimentConfig(
        model=str(model),
        num_processes=processes,
        max_input_tokens=64,
        min_output_tokens=size["max_output_tokens"],
        warmup_iterations=1,
        idle_baseline_s=baseline_s,
        count_flops=False,
        save_outputs=False,
        **DEVICE,
        **size,
        **EXTRA,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/tiny-llama"))
    parser.add_argument(
        "--large",
        action="store_true",
        help="also run a ~1B-parameter Llama (models/bench-llama-1b)",
    )
    parser.add_argument("--large-model", type=Path, default=Path("models/bench-llama-1b"))
    parser.add_argument("--large-only", action="store_true", help="skip the tiny model")
    parser.add_argument(
        "--no-token-timing",
        action="store_true",
        help="run the harness without its per-step TTFT/ITL clock",
    )
    parser.add_argument(
        "--prompts", type=int, default=64, help="prompts per tiny-model experiment (default 64)"
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: float16 on the GPU(s), NVML meter (default cpu)",
    )
    parser.add_argument(
        "--precision",
        choices=["float32", "float16", "bfloat16"],
        help="override the device's default precision",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--job-size", type=int, default=4)
    parser.add_argument(
        "--sweep",
        nargs="+",
        metavar="PRECISION",
        choices=["float32", "float16", "bfloat16"],
        help="the job's experiments cycle through these precisions",
    )
    parser.add_argument(
        "--same-processes",
        type=int,
        default=0,
        metavar="PAIRS",
        help="only alternate harness and bare windows in one set of "
        "processes, PAIRS times (the low-noise comparison)",
    )
    args = parser.parse_args()
    PROMPTS["tiny"] = args.prompts
    if args.no_token_timing:
        EXTRA["token_timing"] = False
    if args.device == "cuda":
        DEVICE.update(CUDA)
    if args.precision:
        DEVICE["precision"] = args.precision
    SWEEP.extend(args.sweep or [])
    models = [] if args.large_only else [(ensure_model(args.model, False), False)]
    if args.large or args.large_only:
        models.append((ensure_model(args.large_model, True), True))
    scratch = Path(tempfile.mkdtemp(prefix="jb-overhead-"))
    for model, large in models:
        for processes in args.processes:
            label = f"{model.name}, {processes} process{'es' if processes > 1 else ''}"
            if args.same_processes:
                report_same_processes(
                    label,
                    same_processes(
                        config(model, processes, large, 0), args.same_processes, scratch
                    ),
                )
                continue
            if not SWEEP:  # a sweep is about the job's fixed cost, not window throughput
                report_throughput(
                    label, throughput(config(model, processes, large, 0), args.repeats, scratch)
                )
            cfg = config(model, processes, large, 2.0)  # each job measures one idle baseline
            cold = job(cfg, args.job_size, False, scratch)
            warm = job(cfg, args.job_size, True, scratch)
            if SWEEP:
                label += f", precisions {' / '.join(SWEEP)} in turn"
            report_jobs(label, args.job_size, cold, warm)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
