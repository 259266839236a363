"""Fixed cost of a 2-node experiment vs a 1-node one on the 2-node dev cluster.

    slurm/dev-cluster/up --nodes 2        # as root, once
    python benchmarks/multinode_launch.py --rounds 3

Builds a throwaway checkout with the tiny demo model and, round by round (the order of the
two alternating), submits one key of a tiny workload (4 prompts x 8 tokens, one process
per node) with nodes: 1 and with nodes: 2, each alone on the cluster, and waits for it.
From each result: the workers' wall time (launch_wall_s: launch, rendezvous, load,
generate), the launch part (workers_launch_s: for 1 node the pool's launch until every
worker connected; for 2 nodes the wall time less the slowest rank's own phases), and the
task's elapsed time in sacct (what the allocation costs, submitit's start included).
Prints figures and ratios, nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONF = Path(os.environ.get("JB_SLURM_2N_STATE", "/tmp/joulebench-slurm-2n")) / "etc/slurm.conf"
SUITE = """models: [tiny-demo]
overrides: {num_processes: 1, nodes: %d, num_prompts: 4, batch_size: 2, max_output_tokens: 8,
            min_output_tokens: 8, warmup_iterations: 0, energy_meter: codecarbon,
            idle_baseline_s: 0, max_input_tokens: 64, count_flops: false}
configs:
  one: {}
"""


def jb(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLURM_CONF": str(CONF), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "joulebench", *args],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def elapsed_s(job: str) -> float | None:
    env = {**os.environ, "SLURM_CONF": str(CONF)}
    for _ in range(60):  # sacct learns of the end a moment after the key is done
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-j", job, "-o", "State,ElapsedRaw"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        ).stdout.split()
        if out and out[-1].startswith("COMPLETED|"):
            return float(out[-1].split("|")[1])
        time.sleep(1)
    return None


def run_one(work: Path, name: str, nodes: int, timeout_s: float) -> dict[str, float]:
    (work / "configs" / "suites" / f"{name}.yaml").write_text(SUITE % nodes)
    sub = jb(work, "submit-suite", name, "--partition", "gpu", "--time", "00:20:00")
    if sub.returncode != 0:
        sys.exit(f"submit-suite {name} failed: {sub.stderr.strip()}")
    sys.path.insert(0, str(REPO / "src"))
    from joulebench.tracker import ProgressTracker

    tracker = ProgressTracker(work / "persistent_progress_trackers")
    start = time.perf_counter()
    while True:
        (record,) = [r for r in tracker.read().keys.values() if r.suite == name]
        if record.state == "done":
            break
        if time.perf_counter() - start > timeout_s:
            sys.exit(f"{name}: not done after {timeout_s:.0f} s")
        time.sleep(1)
    setup_file = next(
        (work / "results" / "raw_results" / record.experiment_id).glob("*_1_experiment_setup.json")
    )
    timing = json.loads(setup_file.read_text())["timing"]
    return {
        "workers_wall_s": timing["launch_wall_s"],
        "launch_s": timing["workers_launch_s"],
        "sacct_elapsed_s": elapsed_s(str(record.job_id)) or float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=600)
    args = parser.parse_args()
    if not CONF.exists():
        sys.exit(f"no 2-node cluster ({CONF}): run slurm/dev-cluster/up --nodes 2 as root")
    with tempfile.TemporaryDirectory(prefix="jb-bench-multinode-") as tmp:
        work = Path(tmp)
        subprocess.run(["cp", "-r", str(REPO / "configs"), str(work / "configs")], check=True)
        made = jb(work, "make-demo-model", "models/tiny-llama")
        if made.returncode != 0:
            sys.exit(f"make-demo-model failed: {made.stderr.strip()}")
        figures: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for r in range(args.rounds):
            for nodes in (1, 2) if r % 2 == 0 else (2, 1):
                got = run_one(work, f"r{r}n{nodes}", nodes, args.timeout_s)
                figures[nodes].append(got)
                print(
                    f"round {r + 1} nodes={nodes}: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in got.items())
                )
    print(f"\nmedians over {args.rounds} rounds (tiny model, 1 process per node, CPU):")
    for field in ("workers_wall_s", "launch_s", "sacct_elapsed_s"):
        one = statistics.median(f[field] for f in figures[1])
        two = statistics.median(f[field] for f in figures[2])
        ratio = two / one if one else float("nan")
        print(f"  {field:16s} 1 node {one:6.2f} s   2 nodes {two:6.2f} s   2/1 = {ratio:.2f}x")


if __name__ == "__main__":
    main()
