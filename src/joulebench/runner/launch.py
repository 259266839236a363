"""Start worker processes through ``accelerate launch``; stop them cleanly on signals.

The command is built by a pure function (tested on its own). The environment passes
through untouched: inside Slurm, the GPUs Slurm assigned (CUDA_VISIBLE_DEVICES) win.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from joulebench.tracker.state import INTERRUPTED, PREEMPTED


def accelerate_command(
    num_processes: int,
    device: str,
    worker_args: list[str],
    python: str = sys.executable,
    monitor_interval_s: float = 1.0,
) -> list[str]:
    """``accelerate launch`` for N processes on one node.

    ``--cpu --num_processes 2`` silently runs one process, so several CPU processes go
    through ``--multi_gpu`` and the worker asks for ``Accelerator(cpu=True)`` (gloo).
    Port 0 lets array tasks that share a node each get a free rendezvous port. torch's
    elastic agent polls its workers every ``monitor_interval`` (0.1 s by default); once
    a second costs less CPU beside the workers and still notices a failure promptly.
    """
    cmd = [
        python,
        "-m",
        "accelerate.commands.launch",
        "--num_machines",
        "1",
        "--num_processes",
        str(num_processes),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
    ]
    if num_processes > 1:
        cmd += ["--multi_gpu", "--monitor_interval", f"{monitor_interval_s:g}"]
    elif device == "cpu":
        cmd.append("--cpu")
    return [*cmd, "-m", "joulebench.runner.worker", *worker_args]


def worker_env(num_processes: int, device: str, cpu_count: int | None = None) -> dict[str, str]:
    """The parent's environment, plus a fair CPU-thread share per CPU process."""
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("CODECARBON_LOG_LEVEL", "error")
    if device == "cpu" and "OMP_NUM_THREADS" not in env:
        cores = cpu_count or allotted_cpus(env)
        env["OMP_NUM_THREADS"] = str(max(1, cores // num_processes))
    return env


def allotted_cpus(env: dict[str, str]) -> int:
    """CPUs this task may use: Slurm's allocation when set, else the affinity mask.

    Without task/affinity or cgroup binding the mask is the whole node, so two 1-CPU
    tasks on one node would each start a thread per core and slow each other ~8x.
    """
    for name in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"):
        value = env.get(name, "")
        if value.isdigit() and int(value) > 0:
            return min(int(value), len(os.sched_getaffinity(0)))
    return len(os.sched_getaffinity(0))


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (PR_SET_PDEATHSIG).

    A job killed with SIGKILL (OOM killer, ``scancel -s KILL``) cannot forward anything;
    without this its workers would run on as orphans holding the GPUs.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the signal forwarding below still covers clean stops


_received: list[int] = []


def last_stop_signal() -> int | None:
    """The last stop signal the launcher saw (USR2 = preemption/time limit), if any."""
    return _received[-1] if _received else None


def note_stop_signal(signum: int) -> None:
    """Record a stop signal that reached this process outside an experiment's workers."""
    _received.append(signum)


def stop_cause() -> str:
    """Why this process is being stopped, by what happened rather than the last signal.

    A USR2 at any point means Slurm warned of a preemption or the time limit: submitit's
    own ``scontrol requeue`` then makes Slurm TERM the job tens of ms later, and that TERM
    must not rename the preemption. A TERM or INT alone says only that a signal came.
    """
    return PREEMPTED if signal.SIGUSR2 in _received else INTERRUPTED


def start_workers(
    cmd: list[str], env: dict[str, str], log_path: Path, cores: set[int] | None = None
) -> subprocess.Popen[bytes]:
    """Start the launcher in its own process group, dying with this process; ``cores``
    pins it (and so every worker it starts) to those CPUs."""
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def prepare() -> None:
        die_with_parent()
        if cores:
            os.sched_setaffinity(0, cores)

    with log_path.open("ab") as log:
        return subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=prepare,
        )


@contextmanager
def forwarding_stop_signals(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """While workers run an experiment, a stop signal stops them first, then acts as before.

    On SIGUSR2 (Slurm's warning before preemption or the time limit) the workers are
    stopped - their finished batches are already checkpointed - and then submitit's own
    handler runs, which checkpoints the task and requeues it. Any other exception out of
    the block stops the workers too, so no orphan holds a GPU.
    """
    stops = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
    previous = {s: signal.getsignal(s) for s in stops} if _main_thread() else {}
    handling: list[int] = []

    def on_stop(signum: int, frame: FrameType | None) -> None:
        _received.append(signum)
        if handling:
            # A second signal while the first stops the workers or requeues (submitit's
            # `scontrol requeue` itself brings a TERM): raising here would abort that
            # requeue half-way, so it is only noted and acted on below.
            handling.append(signum)
            return
        handling.append(signum)
        stop_group(proc)
        # A USR2 seen at all wins: the task must be checkpointed and requeued.
        acting = signal.SIGUSR2 if signal.SIGUSR2 in handling else signum
        handler = previous.get(acting)
        if callable(handler):
            handler(acting, frame)  # submitit: checkpoint + requeue + exit
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    for sig in previous:
        signal.signal(sig, on_stop)
    try:
        yield
    except BaseException:
        stop_group(proc)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """TERM the worker group, then KILL what is left, so no orphan holds a GPU."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
