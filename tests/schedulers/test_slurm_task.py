"""The task's signal watch: a failure is named by what happened, and a USR2 after the
last key ends the task instead of requeueing it. Real signals to a real process; submitit's
handlers are stood in for by ones that record being called (what they do is submitit's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

PROBE = """
import json, signal, sys, time
from joulebench.runner import launch
from joulebench.schedulers.slurm_task import watch_stop_signals

calls = []
signal.signal(signal.SIGUSR2, lambda n, f: calls.append("usr2"))
signal.signal(signal.SIGTERM, lambda n, f: calls.append("term"))
watch_stop_signals(lambda: int(sys.argv[1]))
print("ready", flush=True)
deadline = time.time() + 30
while len(launch._received) < int(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.005)
print(json.dumps({"calls": calls, "cause": launch.stop_cause()}), flush=True)
"""


def signalled(keys_left: int, *signals: signal.Signals, gap_s: float = 0.04) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(keys_left), str(len(signals))],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    for n, sig in enumerate(signals):
        if n:
            time.sleep(gap_s)
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def test_usr2_then_term_40ms_later_is_a_preemption() -> None:
    # submitit's own `scontrol requeue` makes Slurm TERM the job right after the USR2.
    got = signalled(1, signal.SIGUSR2, signal.SIGTERM)
    assert got == {"calls": ["usr2", "term"], "cause": "preempted"}


def test_term_alone_is_only_an_interruption() -> None:
    got = signalled(1, signal.SIGTERM)
    assert got == {"calls": ["term"], "cause": "interrupted"}


@pytest.mark.parametrize("keys_left, calls", [(0, ["term"]), (2, ["usr2", "term"])])
def test_usr2_requeues_only_while_a_key_is_left(keys_left: int, calls: list[str]) -> None:
    got = signalled(keys_left, signal.SIGUSR2, signal.SIGTERM)
    assert got["calls"] == calls  # 0 left: submitit's checkpoint-and-requeue never runs
    assert got["cause"] == "preempted"
