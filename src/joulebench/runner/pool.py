"""Launched workers that run several experiments in sequence (parent side).

One ``accelerate launch`` costs seconds of imports, so consecutive experiments of one
:class:`PoolShape` (process count, device and parallelism) run in the same workers, whatever their
model, precision or quantisation; a worker keeps its loaded model for the next task that
asks for the same one (``model.ModelCache``). The parent hands each worker a task file
over a Unix socket and blocks (``select`` on the sockets and a pidfd, never polling) until
every worker reports the experiment done. A failing experiment ends its workers; the next
experiment launches fresh ones, so one failure never takes others with it.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.config.parallelism import DATA, Parallelism, launched_processes
from joulebench.runner.device_sets import CPU, DeviceSet
from joulebench.runner.launch import (
    accelerate_command,
    forwarding_stop_signals,
    start_workers,
    stop_group,
    worker_env,
)
from joulebench.runner.multinode import NodeSpread


@dataclass(frozen=True)
class PoolShape:
    """What must match for an experiment to run in already-launched workers.

    Only the process group: a worker loads whatever model, precision and quantisation a
    task asks for (``model.ModelCache`` keeps the last one), so a precision or model
    sweep pays the launch once (torch and CUDA start-up: 8-11 s a launch on an H100).
    ``num_processes`` is the processes launched (one for pipeline, which spreads one
    process over the GPUs). Parallelism is part of the shape: a worker that loaded a
    tensor-parallel model must not be handed a data-parallel task, and vice versa.
    """

    num_processes: int
    device: str
    parallelism: Parallelism = DATA
    nodes: int = 1  # above 1 never pooled: each experiment launches on every node

    @classmethod
    def of(cls, config: ExperimentConfig, device: str) -> PoolShape:
        launched = launched_processes(config.parallelism, config.num_processes)
        return cls(launched, device, config.parallelism, config.nodes)


class WorkersExited(Exception):
    """The workers' process group ended before the experiment did."""

    def __init__(self, returncode: int) -> None:
        super().__init__(f"workers exited with {returncode}")
        self.returncode = returncode


SOCKET_DIR_PREFIX = "jb-pool-"


def _socket_base() -> str:
    # AF_UNIX paths are limited to 107 bytes; a long $TMPDIR falls back to /tmp.
    base = tempfile.gettempdir()
    return base if len(base) < 60 else "/tmp"


def _socket_dir() -> str:
    """A private folder for this process's worker sockets, named after its PID so a later
    run can tell that a SIGKILLed owner left it behind."""
    base = _socket_base()
    remove_stale_socket_dirs(base)
    return tempfile.mkdtemp(prefix=f"{SOCKET_DIR_PREFIX}{os.getpid()}-", dir=base)


def _owner_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_socket_dirs(base: str) -> list[Path]:
    """Delete this user's socket folders whose owning process is gone (a SIGKILL skips
    the cleanup in ``WorkerPool.close``); others' folders and live owners' stay."""
    removed = []
    for folder in Path(base).glob(f"{SOCKET_DIR_PREFIX}*"):
        owner = folder.name.removeprefix(SOCKET_DIR_PREFIX).split("-", 1)[0]
        try:
            if (
                not owner.isdigit()
                or folder.lstat().st_uid != os.getuid()
                or not folder.is_dir()
                or folder.is_symlink()
            ):
                continue
            if _owner_gone(int(owner)):
                shutil.rmtree(folder)
                removed.append(folder)
        except OSError:
            continue  # raced with its owner's own cleanup, or not ours to read
    return removed


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (not its children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerPool:
    """``num_processes`` workers of one shape, started once, given tasks one at a time."""

    def __init__(
        self, shape: PoolShape, log_path: Path, device_set: DeviceSet | None = None
    ) -> None:
        self.shape, self.log_path = shape, log_path
        self.experiments_run = 0
        # CPU of the launcher process itself: its start-up, and what watching costs after.
        self.launcher_cpu_s = self.launcher_startup_cpu_s = 0.0
        self._dir = _socket_dir()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(os.path.join(self._dir, "s"))
        self._listener.listen(shape.num_processes)
        cmd = accelerate_command(
            shape.num_processes,
            shape.device,
            ["--serve", self._listener.getsockname(), shape.device],
        )
        env = worker_env(shape.num_processes, shape.device)
        cores = None
        if device_set is not None:  # one of several experiments running at once
            env.update(device_set.env(shape.num_processes))
            cores = device_set.cores() if device_set.kind == CPU else None
        self._proc = start_workers(cmd, env, log_path, cores)
        self._pidfd = os.pidfd_open(self._proc.pid)
        self._conns: dict[int, socket.socket] = {}
        self._buffers: dict[int, bytes] = {}

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def wait_ready(self) -> None:
        """Block until every worker has connected (imports done); WorkersExited if not."""
        with forwarding_stop_signals(self._proc):
            while len(self._conns) < self.shape.num_processes:
                self._next_message(accepting=True)
        self.launcher_startup_cpu_s = process_cpu_s(self._proc.pid)

    @property
    def launcher_pid(self) -> int:
        return self._proc.pid

    def run(self, task_path: Path) -> None:
        """Run one experiment's task in every worker; raise WorkersExited if they die."""
        with forwarding_stop_signals(self._proc):
            line = json.dumps({"task": str(task_path.resolve())}).encode() + b"\n"
            for conn in self._conns.values():
                conn.sendall(line)
            pending = set(self._conns)
            while pending:
                rank, message = self._next_message()
                if message.get("done") is not None:
                    pending.discard(rank)
        self.experiments_run += 1

    def _next_message(self, accepting: bool = False) -> tuple[int, dict[str, Any]]:
        with selectors.DefaultSelector() as sel:
            sel.register(self._pidfd, selectors.EVENT_READ, "exit")
            if accepting:
                sel.register(self._listener, selectors.EVENT_READ, "accept")
            for rank, conn in self._conns.items():
                sel.register(conn, selectors.EVENT_READ, rank)
            while True:
                for rank in self._conns:  # a line already buffered needs no wait
                    if b"\n" in self._buffers[rank]:
                        return rank, self._pop_line(rank)
                for key, _ in sel.select():  # blocks in the kernel: no CPU while waiting
                    if key.data == "exit":
                        raise WorkersExited(self._proc.wait())
                    if key.data == "accept":
                        return self._accept(), {}
                    chunk = self._conns[key.data].recv(65536)
                    if not chunk:  # a worker died; the group follows
                        raise WorkersExited(self._wait_exit())
                    self._buffers[key.data] += chunk

    def _accept(self) -> int:
        conn, _ = self._listener.accept()
        hello = b""
        while not hello.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                raise WorkersExited(self._wait_exit())
            hello += chunk
        rank = int(json.loads(hello)["rank"])
        self._conns[rank], self._buffers[rank] = conn, b""
        return rank

    def _pop_line(self, rank: int) -> dict[str, Any]:
        line, _, rest = self._buffers[rank].partition(b"\n")
        self._buffers[rank] = rest
        return json.loads(line)

    def _wait_exit(self, timeout_s: float = 60.0) -> int:
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_group(self._proc)
            return self._proc.wait()

    def kill(self) -> None:
        """TERM the whole worker group at once (then KILL what lingers)."""
        stop_group(self._proc)

    def close(self) -> None:
        """Ask the workers to exit, then make sure the whole group is gone."""
        self.launcher_cpu_s = process_cpu_s(self._proc.pid)
        for conn in self._conns.values():
            try:
                conn.sendall(b'{"stop": true}\n')
            except OSError:
                pass  # already gone
            conn.close()
        if self._proc.poll() is None:
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        stop_group(self._proc)
        os.close(self._pidfd)
        self._listener.close()
        for name in os.listdir(self._dir):
            os.unlink(os.path.join(self._dir, name))
        os.rmdir(self._dir)


class WorkerPools:
    """At most one live pool per job: kept while experiments share its shape.

    ``reuse=False`` launches fresh workers for every experiment (the behaviour before
    pools, kept for measuring the fixed cost and for runs that want a cold start).
    """

    def __init__(
        self,
        reuse: bool = True,
        device_set: DeviceSet | None = None,
        spread: NodeSpread | None = None,
    ) -> None:
        self.reuse = reuse
        self.device_set = device_set  # the devices its workers are given (--max-parallel)
        # How to run a command on every node of this job (the scheduler's), for
        # experiments with nodes > 1; None where there is only this machine.
        self.spread = spread
        self.launches = 0
        self.launcher_cpu_s = self.launcher_watch_cpu_s = 0.0
        self._pool: WorkerPool | None = None
        self._launching: WorkerPool | None = None
        self._guard = threading.Lock()
        self.stopped = False

    def get(self, shape: PoolShape, log_path: Path) -> tuple[WorkerPool, float]:
        """A live pool of this shape, and the seconds spent launching it (0 if reused)."""
        pool = self._pool
        if (
            pool is not None
            and pool.alive
            and pool.shape == shape
            and (self.reuse or pool.experiments_run == 0)
        ):
            return pool, 0.0
        self.close()
        start = time.perf_counter()
        with self._guard:
            if self.stopped:  # stop() came first: launch nothing
                raise WorkersExited(-signal.SIGINT)
            pool = self._launching = WorkerPool(shape, log_path, self.device_set)
        self.launches += 1
        try:
            pool.wait_ready()
        except BaseException:
            pool.close()
            raise
        finally:
            self._launching = None
        self._pool = pool
        return pool, time.perf_counter() - start

    def stop(self) -> None:
        """From another thread: stop the workers now (the one running an experiment
        then sees them exit, as after a kill) and launch no more."""
        with self._guard:
            self.stopped = True
            pools = [p for p in (self._pool, self._launching) if p is not None]
        for pool in pools:
            pool.kill()

    def discard(self) -> None:
        """Drop the current pool (after a failure its workers are gone or suspect)."""
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()
            self.launcher_cpu_s += pool.launcher_cpu_s
            self.launcher_watch_cpu_s += max(0.0, pool.launcher_cpu_s - pool.launcher_startup_cpu_s)

    def __enter__(self) -> WorkerPools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
