"""One experiment over several nodes (leader side): one launcher per node, one rendezvous.

The array task on the job's first node leads: it picks the rendezvous (the first host and
a free port) and starts, through the scheduler's ``NodeSpread``, one
``python -m joulebench.runner.node_launch launch ...`` on every node; each execs
``accelerate launch --num_machines N --machine_rank R`` and its workers run the task file
once (no worker reuse across keys: the pool's socket is local to one node). Every process
writes its ``rank_{r}.json`` into the work folder, which all nodes share; local rank 0 of
each node meters its own node, inside the same global barriers (``worker.py``).

The scheduler owns how a command reaches every node (srun on Slurm); this module only
builds the commands (pure) and watches the one process that stands for all nodes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from joulebench.runner.launch import forwarding_stop_signals, start_workers, worker_env

NODE_LAUNCH_MODULE = "joulebench.runner.node_launch"
LAUNCH, WORK = "launch", "work"  # node_launch's two roles


@dataclass(frozen=True)
class Rendezvous:
    """Where the processes of all nodes meet: the first host of the job and a free port."""

    hosts: tuple[str, ...]
    port: int

    @property
    def main_host(self) -> str:
        return self.hosts[0]


class NodeSpread(Protocol):
    """How the scheduler runs one command once on each node of the current job;
    ``rank_env`` names the variable that holds the node's number (0 first) there."""

    rank_env: str

    def rendezvous(self, nodes: int) -> Rendezvous: ...

    def command(self, nodes: int, per_node: list[str]) -> list[str]: ...

    def lost_node(self, output: str) -> str | None:
        """The node the scheduler reported lost in the command's output, if any."""
        ...


class NodesExited(Exception):
    """The launchers of the nodes ended with a non-zero status; ``lost_node`` names a
    node the scheduler reported failed (the allocation is broken: no retry in it helps)."""

    def __init__(self, returncode: int, lost_node: str | None = None) -> None:
        super().__init__(f"node launchers exited with {returncode}")
        self.returncode = returncode
        self.lost_node = lost_node


def node_launch_args(
    nodes: int,
    per_node: int,
    device: str,
    rendezvous: Rendezvous,
    task_path: Path,
    rank_env: str,
    python: str = sys.executable,
) -> list[str]:
    """What runs once on every node: reads its machine rank from ``rank_env`` there."""
    return [
        python,
        "-m",
        NODE_LAUNCH_MODULE,
        LAUNCH,
        str(nodes),
        str(per_node),
        device,
        rendezvous.main_host,
        str(rendezvous.port),
        rank_env,
        str(task_path.resolve()),
    ]


def node_accelerate_command(
    nodes: int,
    per_node: int,
    machine_rank: int,
    main_host: str,
    port: int,
    device: str,
    task_path: str,
    python: str = sys.executable,
) -> list[str]:
    """``accelerate launch`` for this node's share of an N-node experiment.

    ``--num_processes`` is the world size (all nodes); ``--multi_gpu`` on CPU too, with
    ``Accelerator(cpu=True)`` in the worker (gloo), as for several processes on one node.
    """
    return [
        python,
        "-m",
        "accelerate.commands.launch",
        "--num_machines",
        str(nodes),
        "--machine_rank",
        str(machine_rank),
        "--main_process_ip",
        main_host,
        "--main_process_port",
        str(port),
        "--num_processes",
        str(nodes * per_node),
        "--multi_gpu",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--monitor_interval",
        "1",
        "-m",
        NODE_LAUNCH_MODULE,
        WORK,
        task_path,
        device,
    ]


def _tail(path: Path, size: int = 65536) -> str:
    """The end of the launcher log, where srun reports why the step ended."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class NodesRun:
    """What the leader saw of a multi-node run."""

    rendezvous: Rendezvous
    wall_s: float


def run_on_nodes(
    spread: NodeSpread,
    nodes: int,
    per_node: int,
    device: str,
    task_path: Path,
    log_path: Path,
) -> NodesRun:
    """Start every node's launcher and wait; NodesExited when any of them failed. A stop
    signal (preemption) stops them all first, as for one node's workers."""
    rendezvous = spread.rendezvous(nodes)
    per_node_cmd = node_launch_args(nodes, per_node, device, rendezvous, task_path, spread.rank_env)
    cmd = spread.command(nodes, per_node_cmd)
    start = time.perf_counter()
    proc = start_workers(cmd, worker_env(per_node, device), log_path)
    with forwarding_stop_signals(proc):
        returncode = proc.wait()
    if returncode != 0:
        raise NodesExited(returncode, spread.lost_node(_tail(log_path)))
    return NodesRun(rendezvous, time.perf_counter() - start)
