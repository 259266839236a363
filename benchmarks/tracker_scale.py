"""Tracker cost at scale, as ratios measured in one run (the machine is noisy).

    python benchmarks/tracker_scale.py

1. claim+complete latency with 1k, 10k and 100k keys already tracked;
2. the seed's approach (read, update and rewrite the whole progress JSON) at 10k keys;
3. concurrent claims/s with 8 processes on one tracker;
4. peak RSS of reading a 100k-key tracker (what `status` does).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from joulebench.tracker import ProgressTracker


def populated(n: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"jb-trk-{n}-"))
    tracker = ProgressTracker(folder)
    tracker.register("s", [(f"m::s::c{i}::1", "h") for i in range(n)])
    tracker.sync()
    return folder


def claim_complete_ms(folder: Path, rounds: int = 200) -> float:
    tracker = ProgressTracker(folder)
    tracker.read()  # warm the cache, as a long-running job has it
    samples = []
    for i in range(rounds):
        key = f"m::s::c{i}::1"
        start = time.perf_counter()
        claim = tracker.claim(key, "h")
        tracker.complete(key, claim.experiment_id or "")
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def seed_rewrite_ms(n: int, rounds: int = 50) -> float:
    """Seed 000: load the whole JSON, set one key, dump it back (no lock, no fsync)."""
    path = Path(tempfile.mkdtemp()) / "configs_run_progress.json"
    path.write_text(json.dumps({f"m::s::c{i}::1": None for i in range(n)}, indent=2))
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        progress = json.loads(path.read_text())
        progress[f"m::s::c{i}::1"] = f"{i:04d}"
        path.write_text(json.dumps(progress, indent=2))
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _claimer(folder: str, worker: int, n: int) -> None:
    tracker = ProgressTracker(Path(folder))
    for i in range(n):
        tracker.claim(f"m::s::w{worker}_{i}::1", "h")


def concurrent_claims_per_s(processes: int = 8, each: int = 200) -> float:
    folder = tempfile.mkdtemp(prefix="jb-trk-conc-")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_claimer, args=(folder, w, each)) for w in range(processes)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return processes * each / (time.perf_counter() - start)


def main() -> None:
    latency = {n: claim_complete_ms(populated(n)) for n in (1_000, 10_000, 100_000)}
    seed_10k = seed_rewrite_ms(10_000)
    rate = concurrent_claims_per_s()
    big = populated(100_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    ProgressTracker(big).read()
    read_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for n, ms in latency.items():
        print(f"claim+complete, {n:>7} keys: {ms:7.2f} ms (median of 200)")
    print(f"ratio 100k / 1k:              {latency[100_000] / latency[1_000]:.2f}x (bar <= 1.5)")
    print(f"seed rewrite-whole-JSON, 10k: {seed_10k:7.2f} ms -> joulebench is "
          f"{seed_10k / latency[10_000]:.1f}x faster (bar >= 20x)")
    print(f"8 processes claiming:         {rate:7.0f} claims/s (bar >= 500)")
    print(f"read a 100k-key tracker:      {read_s:7.2f} s, peak RSS {peak_mb:.0f} MB "
          f"(was {before / 1024:.0f} MB before; bar < 200)")


if __name__ == "__main__":
    main()
