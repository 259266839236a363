"""--max-parallel: suite wall time side by side vs one at a time, and the scheduler's cost.

    python benchmarks/parallel_local.py                  # 6 keys, --max-parallel 1 vs 2
    python benchmarks/parallel_local.py --keys 8 --parallel 4 --rounds 2

Part 1 runs the same suite of 1-process experiments (tiny model on CPU, codecarbon) in a
fresh checkout each time through ``api.submit_suite`` with the local executor, at
``--max-parallel 1`` and at ``--max-parallel N``, alternating, ``--rounds`` times; it
prints each wall time and the ratio of the medians. Everything is real: accelerate
workers, claims, files, CSV rows.

Part 2 times what the parent adds per experiment when it schedules side by side: taking
and giving back a device set, handing the key to a slot thread and getting its outcome
back, and the overlap bookkeeping (with a tracker read, as when a neighbour is still
running), over many keys with a no-op in place of the experiment itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from joulebench import api
from joulebench.paths import Paths
from joulebench.runner.device_sets import CPU, DevicePool
from joulebench.schedulers.parallel import Overlaps
from joulebench.tracker import ProgressTracker

REPO = Path(__file__).resolve().parents[1]

SUITE = """
models: [tiny-demo]
shuffle: false
overrides:
  num_prompts: {prompts}
  max_input_tokens: 32
  max_output_tokens: 32
  min_output_tokens: 32
  num_processes: 1
  warmup_iterations: 1
  energy_meter: codecarbon
  idle_baseline_s: 0.5
controlled:
  batch_size: {batches}
"""


def checkout(root: Path, model: Path, keys: int, prompts: int) -> int:
    """A fresh experiments folder in ``root``; returns the cycles that give ``keys`` keys."""
    shutil.copytree(REPO / "configs", root / "configs")
    (root / "models").mkdir()
    (root / "models" / "tiny-llama").symlink_to(model)
    text = SUITE.format(prompts=prompts, batches=[2, 4])  # two configs x keys/2 cycles
    cycles = max(1, keys // 2)
    (root / "configs" / "suites" / "bench.yaml").write_text(text)
    return cycles


def suite_wall_s(model: Path, scratch: Path, keys: int, prompts: int, parallel: int) -> float:
    root = Path(tempfile.mkdtemp(dir=scratch))
    cycles = checkout(root, model, keys, prompts)
    paths = Paths(
        configs_dir=root / "configs",
        tracker_dir=root / "persistent_progress_trackers",
        results_dir=root / "results",
    )
    cwd = Path.cwd()
    os.chdir(root)
    try:
        start = time.perf_counter()
        summary = api.submit_suite(
            "bench", cycles, executor="local", paths=paths, max_parallel=parallel
        )
        wall_s = time.perf_counter() - start
    finally:
        os.chdir(cwd)
    failed = [o for o in summary.outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"a key failed: {failed[0]}")
    return wall_s


def scheduling_overhead_us(keys: int, parallel: int, scratch: Path) -> float:
    """Parent-side cost per key of dispatching side by side, the experiment a no-op."""
    tracker = ProgressTracker(Path(tempfile.mkdtemp(dir=scratch)))
    tracker.register("s", [(f"k{i}", "h") for i in range(keys)])
    for i in range(keys):  # every key claimed, as running experiments are
        tracker.claim(f"k{i}", "h", suite="s")
    overlaps = Overlaps(tracker)
    devices = DevicePool(CPU, [str(i) for i in range(parallel)])

    def run(key: str) -> str:
        overlaps.begin(key)
        overlaps.concurrent_ids(key, key)
        overlaps.end(key)
        return key

    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        pending, running = [f"k{i}" for i in range(keys)], {}
        while pending or running:
            while pending:
                taken = devices.take(1)
                if taken is None:
                    break
                key = pending.pop(0)
                running[pool.submit(run, key)] = taken
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                devices.give_back(running.pop(future))
                future.result()
    return (time.perf_counter() - start) / keys * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=6)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    from joulebench.runner.demo_model import build_demo_model

    scratch = Path(tempfile.mkdtemp(prefix="jb-bench-parallel-"))
    try:
        model = build_demo_model(scratch / "tiny-llama")
        walls: dict[int, list[float]] = {1: [], args.parallel: []}
        for round_no in range(args.rounds):
            for parallel in (1, args.parallel):
                wall = suite_wall_s(model, scratch, args.keys, args.prompts, parallel)
                walls[parallel].append(wall)
                print(
                    f"round {round_no + 1}: {args.keys} keys, --max-parallel {parallel}: "
                    f"{wall:.1f} s",
                    flush=True,
                )
        one, many = statistics.median(walls[1]), statistics.median(walls[args.parallel])
        print(
            f"suite wall time, median: --max-parallel 1 {one:.1f} s, "
            f"--max-parallel {args.parallel} {many:.1f} s; ratio 1/{args.parallel} = "
            f"{one / many:.2f}x on {os.cpu_count()} cores"
        )
        for keys in (100, 1000):
            cost = scheduling_overhead_us(keys, args.parallel, scratch)
            print(f"scheduling overhead: {cost:.0f} us per experiment ({keys} keys)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
