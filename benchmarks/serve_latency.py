"""`joulebench serve` under load: latency of /api/suites and the server's CPU.

    python benchmarks/serve_latency.py [--keys 10000 100000] [--clients 1 50] [--seconds 10]

A synthetic tracker (10 suites x 5 cycles, 1,000 keys done, 5 failed with oom) is
served by a real `joulebench serve` process (uvicorn, --no-sacct). Clients are asyncio
keep-alive HTTP/1.1 connections in this process, each requesting /api/suites back to back
(a closed loop: the harshest polling there is). Each setting runs twice: with the tracker
still, and with a job completing a key every second (every change makes the server read
the tracker again, once, for all clients); then 50 clients poll every 2 s, as the page
does, for the server's CPU in ordinary use. Prints per
setting: requests, p50/p95/max latency in ms, requests/s, and the server's CPU as a share
of one core (utime+stime from /proc over the wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from joulebench.tracker import ProgressTracker  # noqa: E402

SUITES, CYCLES = 10, 5
WRITTEN = itertools.count()


def synthetic(n: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"jb-serve-{n}-"))
    tracker = ProgressTracker(root / "persistent_progress_trackers")
    per = n // (SUITES * CYCLES)
    for s in range(SUITES):
        keys = [(f"m::suite{s}::c{i}::{c}", "h") for c in range(1, CYCLES + 1) for i in range(per)]
        tracker.register(f"suite{s}", keys)
    done = [f"m::suite{s}::c{i}::1" for s in range(SUITES) for i in range(min(per, 100))]
    for key in done[: n // 10]:
        claim = tracker.claim(key, "h")
        tracker.complete(key, claim.experiment_id or "")
    for key in [f"m::suite0::c{i}::2" for i in range(5)]:
        tracker.claim(key, "h")
        tracker.fail(key, "oom", "CUDA out of memory")
    tracker.sync()
    (root / "results").mkdir()
    (root / "configs").mkdir()
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def client(port: int, until: float, latencies: list[float], poll_s: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if poll_s:  # tabs opened at different moments: not 50 requests in one burst
        await asyncio.sleep(random.uniform(0, poll_s))
    request = f"GET /api/suites HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    while time.perf_counter() < until:
        start = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        latencies.append((time.perf_counter() - start) * 1000)
        if poll_s:
            await asyncio.sleep(poll_s)
    writer.close()


async def load(port: int, clients: int, seconds: float, poll_s: float = 0.0) -> list[float]:
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(client(port, until, latencies, poll_s) for _ in range(clients)))
    return latencies


def writer_thread(root: Path, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        tracker = ProgressTracker(root / "persistent_progress_trackers")
        while not stop.wait(1.0):
            # A key not done before (across runs): a done key's claim writes nothing.
            key = f"m::suite9::c{next(WRITTEN)}::5"
            claim = tracker.claim(key, "h")
            assert claim.status == "new", claim
            tracker.complete(key, claim.experiment_id or "")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def measure(root: Path, clients: int, seconds: float, writing: bool, poll_s: float = 0.0) -> str:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "joulebench",
            "serve",
            "--no-token",
            "--no-sacct",
            "--port",
            str(port),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                asyncio.run(load(port, 1, 0.01))  # also computes the first snapshot
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        stop = threading.Event()
        thread = writer_thread(root, stop) if writing else None
        cpu0, wall0 = cpu_s(server.pid), time.perf_counter()
        latencies = asyncio.run(load(port, clients, seconds, poll_s))
        wall = time.perf_counter() - wall0
        cpu = (cpu_s(server.pid) - cpu0) / wall
        stop.set()
        if thread is not None:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    q = statistics.quantiles(latencies, n=100)
    return (
        f"{len(latencies):7d} req  p50 {q[49]:7.1f} ms  p95 {q[94]:7.1f} ms  "
        f"max {max(latencies):7.1f} ms  {len(latencies) / wall:7.0f} req/s  "
        f"server CPU {100 * cpu:4.0f}% of a core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for n in args.keys:
        start = time.perf_counter()
        root = synthetic(n)
        print(f"{n} keys (tracker built in {time.perf_counter() - start:.1f} s)", flush=True)
        for clients in args.clients:
            for writing in (False, True):
                what = "a key done every 1 s" if writing else "tracker still"
                print(
                    f"  {clients:3d} clients, {what:22s} "
                    f"{measure(root, clients, args.seconds, writing)}",
                    flush=True,
                )
        # What the page does: 50 open tabs, each polling every 2 s, while jobs finish.
        print(
            "   50 tabs polling every 2 s, key done every 1 s "
            f"{measure(root, 50, max(args.seconds, 10.0), True, poll_s=2.0)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
