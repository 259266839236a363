"""Node time a suite costs on a real Slurm with one key per array task vs N per task.

    python benchmarks/slurm_keys_per_task.py --keys 8 --keys-per-task 4

Builds a throwaway checkout with a suite of --keys keys on the tiny demo model (one
process each), submits it twice (one key per task, then --keys-per-task N), waits for
both, and sums each run's task elapsed time from sacct: the allocation a site bills.
The runs go one after the other, each with the node to itself (--array-parallelism 1),
so the sums compare like with like. Prints figures, nothing else.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = """models: [tiny-demo]
shuffle: false
overrides: {num_processes: 1, num_prompts: 16, batch_size: 4, max_output_tokens: 64,
            min_output_tokens: 64, warmup_iterations: 1, energy_meter: codecarbon}
grid:
  seed: %s
"""


def run_suite(work: Path, name: str, per_task: int, timeout_s: float) -> dict[str, float]:
    jb = [sys.executable, "-m", "joulebench"]
    start = time.perf_counter()
    sub = subprocess.run(
        [
            *jb,
            "submit-suite",
            name,
            "--partition",
            "gpu",
            "--time",
            "00:30:00",
            "--array-parallelism",
            "1",
            "--keys-per-task",
            str(per_task),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    if sub.returncode != 0:
        sys.exit(f"submit-suite failed: {sub.stderr.strip()}")
    sys.path.insert(0, str(REPO / "src"))
    from joulebench.tracker import ProgressTracker

    tracker = ProgressTracker(work / "persistent_progress_trackers")
    while True:
        state = tracker.read()
        keys = [r for r in state.keys.values() if r.suite == name]
        if all(r.state == "done" for r in keys):
            break
        if time.perf_counter() - start > timeout_s:
            sys.exit(f"{name}: not done after {timeout_s:.0f} s")
        time.sleep(2)
    wall_s = time.perf_counter() - start
    jobs = sorted({str(r.job_id) for r in keys})
    elapsed = 0.0
    for _ in range(60):  # sacct learns of the last task's end a moment later
        out = subprocess.run(
            [
                "sacct",
                "-X",
                "--noheader",
                "--parsable2",
                "--format",
                "JobID,State,ElapsedRaw",
                "--jobs",
                ",".join(sorted({j.split("_")[0] for j in jobs})),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines = [ln.split("|") for ln in out.splitlines() if ln.strip()]
        if lines and all(state == "COMPLETED" for _, state, _ in lines):
            elapsed = sum(float(e) for _, _, e in lines)
            break
        time.sleep(1)
    return {"keys": len(keys), "tasks": len(jobs), "node_s": elapsed, "wall_s": wall_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=8)
    parser.add_argument("--keys-per-task", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jb-bench-kpt-"))
    shutil.copytree(REPO / "configs", work / "configs")
    (work / "models").mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "joulebench",
            "make-demo-model",
            str(work / "models" / "tiny-llama"),
        ],
        check=True,
        capture_output=True,
    )
    for name in ("one", "packed"):
        (work / "configs" / "suites" / f"{name}.yaml").write_text(
            SUITE % json.dumps(list(range(args.keys)))
        )
    one = run_suite(work, "one", 1, args.timeout)
    packed = run_suite(work, "packed", args.keys_per_task, args.timeout)
    for label, r in (("1 key per task", one), (f"{args.keys_per_task} keys per task", packed)):
        print(
            f"{label:18s} {r['keys']} keys in {r['tasks']} tasks: node time "
            f"{r['node_s']:.0f} s ({r['node_s'] / r['keys']:.1f} s per key), wall "
            f"{r['wall_s']:.0f} s"
        )
    print(f"node time packed / one per task: {packed['node_s'] / one['node_s']:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
