"""CLI wall time and peak memory on big trackers, each command in its own process.

    python benchmarks/cli_speed.py

1. `joulebench --help` wall time (bar <= 0.5 s) and whether torch got imported;
2. `joulebench status --no-sacct` on a 10k-key suite (bar <= 1.5 s) and a 100k-key one;
3. peak RSS (VmHWM) of `status` at 100k keys (bar < 200 MB).
Half the keys are done, a tenth failed, as a suite part-way through looks.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from joulebench.tracker import ProgressTracker  # noqa: E402

PROBE = """
import atexit, re, sys
def report():
    hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]
    print(f"PROBE torch={'torch' in sys.modules} hwm_kb={hwm}", file=sys.stderr)
atexit.register(report)
sys.argv = ['joulebench', *sys.argv[1:]]
from joulebench.cli.main import main
main()
"""


def tracker_with(n: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"jb-cli-{n}-"))
    tracker = ProgressTracker(root / "persistent_progress_trackers", compact_bytes=1 << 40)
    keys = [f"m{i % 4}::big::c{i}::{1 + i % 5}" for i in range(n)]
    tracker.register("big", [(k, "h") for k in keys])
    with tracker.locked() as state:  # bulk events: one append instead of n claims
        events = []
        for i, key in enumerate(keys[: n // 2 + n // 10]):
            events.append(
                {
                    "op": "claim",
                    "key": key,
                    "experiment_id": f"{i + 1:04d}",
                    "attempt": 1,
                    "config_hash": "h",
                    "suite": "big",
                    "job_id": f"{1000 + i}",
                    "host": "node1",
                    "pid": 1,
                }
            )
            events.append(
                {"op": "done", "key": key, "experiment_id": f"{i + 1:04d}"}
                if i < n // 2
                else {"op": "fail", "key": key, "cause": "oom", "error": "CUDA OOM"}
            )
        tracker._append(state, *events)
    tracker.sync()
    return root


def run_cli(args: list[str], cwd: Path) -> tuple[float, bool, float]:
    """Wall seconds, whether torch was imported, peak RSS in MB."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    wall = time.perf_counter() - start
    probe = [line for line in done.stderr.splitlines() if line.startswith("PROBE")]
    if done.returncode != 0 or not probe:
        sys.exit(f"joulebench {' '.join(args)} failed: {done.stderr[-500:]}")
    fields = dict(item.split("=") for item in probe[-1].split()[1:])
    return wall, fields["torch"] == "True", int(fields["hwm_kb"]) / 1024


def median_run(args: list[str], cwd: Path, repeat: int = 5) -> tuple[float, bool, float]:
    runs = [run_cli(args, cwd) for _ in range(repeat)]
    return (statistics.median(r[0] for r in runs), any(r[1] for r in runs), max(r[2] for r in runs))


def main() -> None:
    empty = Path(tempfile.mkdtemp(prefix="jb-cli-empty-"))
    bare_s = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(5))
    help_s, help_torch, help_mb = median_run(["--help"], empty)
    ten_k = tracker_with(10_000)
    status_10k, torch_10k, rss_10k = median_run(["status", "--no-sacct"], ten_k)
    hundred_k = tracker_with(100_000)
    status_100k, torch_100k, rss_100k = median_run(["status", "--no-sacct"], hundred_k, 3)
    print(f"python start alone:           {bare_s:5.2f} s")
    print(
        f"joulebench --help:            {help_s:5.2f} s (bar <= 0.5), torch imported: "
        f"{help_torch}, peak RSS {help_mb:.0f} MB"
    )
    print(
        f"status, 10k keys:             {status_10k:5.2f} s (bar <= 1.5), torch imported: "
        f"{torch_10k}, peak RSS {rss_10k:.0f} MB"
    )
    print(
        f"status, 100k keys:            {status_100k:5.2f} s, torch imported: {torch_100k}, "
        f"peak RSS {rss_100k:.0f} MB (bar < 200)"
    )


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
