"""Experiments over several Slurm nodes: the leader, the srun line, the partition's size.

An array task of an N-node experiment asks for ``--nodes N --ntasks-per-node 1``, so
submitit's srun starts one copy of the task on each node. Node 0 (``SLURM_NODEID``) leads:
it claims the key, starts every node's launcher with one ``srun --overlap`` step
(``runner/multinode.py``), aggregates and records. The copies on the other nodes return at
once: their node's workers are started by the leader's step, and submitit only
checkpoints and requeues from global rank 0 anyway. Pure builders and parsers here; the
commands run through one injectable runner.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from joulebench.errors import ConfigError, SchedulerError
from joulebench.runner.multinode import Rendezvous

CommandRunner = Callable[[list[str], float], subprocess.CompletedProcess]
NODE_RANK_ENV = "SLURM_NODEID"  # 0 on the job's first node, set by Slurm per task


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)


def node_rank(env: Mapping[str, str]) -> int:
    """This task's node number in its job (0 outside Slurm or on the first node)."""
    value = env.get(NODE_RANK_ENV, "")
    return int(value) if value.isdigit() else 0


def is_follower(env: Mapping[str, str]) -> bool:
    """A copy of a multi-node task on a node other than the first: it leaves the work
    to the leader."""
    return node_rank(env) > 0


def srun_nodes_command(nodes: int, per_node: list[str]) -> list[str]:
    """One copy of ``per_node`` on each of the job's nodes, as a second job step.

    ``--overlap``: submitit's own step (the tasks themselves) holds the allocation's CPUs
    and GPUs while this one runs; ``--mem=0`` gives the step each node's whole allocation
    (else its memory is counted twice and Slurm refuses the step). ``--kill-on-bad-exit``:
    one node failing ends the others, which would wait in a collective for ever.
    """
    return [
        "srun",
        "--overlap",
        "--mem=0",
        f"--nodes={nodes}",
        f"--ntasks={nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        "--export=ALL",
        *per_node,
    ]


def parse_hostnames(text: str) -> list[str]:
    """``scontrol show hostnames`` output: one host a line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_partition_nodes(text: str) -> tuple[dict[str, int], str | None]:
    """``sinfo -h -N -o '%N %P'`` (one line per node and partition): partition -> its
    number of nodes, and the default partition (Slurm marks it with ``*``)."""
    members: dict[str, set[str]] = {}
    default = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        node, partition = parts
        if partition.endswith("*"):
            partition = partition[:-1]
            default = partition
        members.setdefault(partition, set()).add(node)
    return {p: len(n) for p, n in members.items()}, default


SINFO_NODES_COMMAND = ["sinfo", "-h", "-N", "-o", "%N %P"]


def partition_nodes_problem(
    nodes: int, partition: str | None, counts: dict[str, int], default: str | None
) -> str | None:
    """Why ``nodes`` cannot run on the partition, or None when it can (pure)."""
    name = partition or default
    if name is None or name not in counts:
        return None  # sbatch names an unknown partition itself
    if nodes > counts[name]:
        return (
            f"nodes: {nodes} but partition '{name}' has {counts[name]} node(s) (sinfo); "
            f"lower nodes to at most {counts[name]} or pick a larger partition with --partition"
        )
    return None


def check_partition_nodes(
    nodes: int, partition: str | None, source: str, runner: CommandRunner = _run
) -> None:
    """Refuse an experiment wider than its partition before anything is submitted.
    Without an answering sinfo nothing is checked (sbatch will refuse it instead)."""
    if nodes <= 1:
        return
    try:
        done = runner(SINFO_NODES_COMMAND, 30)
    except (OSError, subprocess.TimeoutExpired):
        return
    if done.returncode != 0:
        return
    counts, default = parse_partition_nodes(done.stdout)
    problem = partition_nodes_problem(nodes, partition, counts, default)
    if problem:
        raise ConfigError(f"{source}: {problem}")


def free_port() -> int:
    """A TCP port free on this node now, for the rendezvous (the leader's node)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SlurmNodeSpread:
    """``runner.multinode.NodeSpread`` inside a Slurm job: srun, the job's node list."""

    env: Mapping[str, str]
    runner: CommandRunner = field(default=_run)
    rank_env: str = NODE_RANK_ENV

    def rendezvous(self, nodes: int) -> Rendezvous:
        nodelist = self.env.get("SLURM_JOB_NODELIST", "")
        done = self.runner(["scontrol", "show", "hostnames", nodelist], 30)
        hosts = parse_hostnames(done.stdout) if done.returncode == 0 else []
        if len(hosts) < nodes:
            raise SchedulerError(
                f"this job has {len(hosts)} node(s) ({nodelist or 'SLURM_JOB_NODELIST unset'}) "
                f"but the experiment asks for nodes: {nodes}"
            )
        return Rendezvous(tuple(hosts[:nodes]), free_port())

    def command(self, nodes: int, per_node: list[str]) -> list[str]:
        return srun_nodes_command(nodes, per_node)

    def lost_node(self, output: str) -> str | None:
        return parse_lost_node(output)


def parse_lost_node(srun_output: str) -> str | None:
    """The node srun says failed under a step ("srun: error: Node failure on jbn2"), or
    None: Slurm lost that node, so the job ends NODE_FAIL whatever the task does."""
    match = re.search(r"^srun: error: Node failure on (\S+)", srun_output, re.MULTILINE)
    return match[1] if match else None


def launch_line(nodes: int, per_node: int, device: str) -> str:
    """The step the leader runs and what it execs on each node, as --dry-run shows them
    (FIRST_HOST, PORT and WORK are the job's)."""
    import shlex
    from pathlib import Path

    from joulebench.runner.multinode import node_accelerate_command, node_launch_args

    task = "WORK/task.json"
    placeholder = Rendezvous(("FIRST_HOST",), 0)
    args = node_launch_args(
        nodes, per_node, device, placeholder, Path("TASK.json"), NODE_RANK_ENV, python="python"
    )
    srun = shlex.join(srun_nodes_command(nodes, args))
    srun = srun.replace("FIRST_HOST 0", "FIRST_HOST PORT").replace(
        str(Path("TASK.json").resolve()), task
    )
    accelerate = shlex.join(
        node_accelerate_command(nodes, per_node, 0, "FIRST_HOST", 0, device, task, "python")
    )
    accelerate = accelerate.replace("--machine_rank 0", f"--machine_rank ${NODE_RANK_ENV}")
    accelerate = accelerate.replace("--main_process_port 0", "--main_process_port PORT")
    return (
        f"{srun}\n# which execs on each node (FIRST_HOST: the first of `scontrol show "
        f"hostnames $SLURM_JOB_NODELIST`; PORT: a free one there):\n{accelerate}"
    )
