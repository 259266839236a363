"""Submission and status cost for a large suite on a real Slurm (e.g. the dev cluster).

    python benchmarks/slurm_submit.py --keys 2000

Builds a throwaway checkout with a grid suite of --keys keys on the tiny demo model,
times `submit-suite` (one process, as a user runs it) and `joulebench status`, counts
the sbatch calls, then cancels every job it submitted. Prints figures, nothing else.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--partition", default="gpu")
    args = parser.parse_args()
    configs = max(1, args.keys // 10)
    work = Path(tempfile.mkdtemp(prefix="jb-bench-submit-"))
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
    (work / "configs" / "suites" / "big.yaml").write_text(
        "models: [tiny-demo]\noverrides: {num_processes: 1}\n"
        f"grid:\n  seed: {list(range(configs))}\n"
    )
    jb = [sys.executable, "-m", "joulebench"]
    py_start, _ = timed([sys.executable, "-c", "import joulebench.cli.main"], work)
    submit_s, sub = timed(
        [
            *jb,
            "submit-suite",
            "big",
            "--cycles",
            "10",
            "--partition",
            args.partition,
            "--time",
            "00:20:00",
            "--array-parallelism",
            "1",
        ],
        work,
    )
    if sub.returncode != 0:
        sys.exit(f"submit-suite failed: {sub.stderr.strip()}")
    match = re.search(r"submitted (\d+) tasks in (\d+) sbatch call", sub.stdout)
    tasks, calls = (int(match[1]), int(match[2])) if match else (0, 0)
    status_s, status = timed([*jb, "status", "big"], work)
    jobs = re.findall(r"\(jobs ([\d, ]+)\)", sub.stdout)
    subprocess.run(
        ["scancel", *jobs[0].replace(" ", "").split(",")]
        if jobs
        else ["scancel", "--name", "jb-big"],
        check=False,
    )
    max_array = int(
        re.search(
            r"MaxArraySize\s*=\s*(\d+)",
            subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout,
        )[1]
    )
    print(f"keys submitted:          {tasks}")
    print(
        f"sbatch calls:            {calls} (bar: ceil({tasks}/{max_array}) = "
        f"{math.ceil(tasks / max_array)})"
    )
    print(
        f"submit-suite wall:       {submit_s:.2f} s (python + CLI import alone: {py_start:.2f} s)"
    )
    print(f"status wall (1 sacct):   {status_s:.2f} s, exit {status.returncode}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
