"""Entry points of a multi-node experiment, run on every node (see runner/multinode.py).

``python -m joulebench.runner.node_launch launch NODES PER_NODE DEVICE HOST PORT RANK_ENV TASK``
execs this node's ``accelerate launch`` (machine rank read from the environment variable
RANK_ENV, which the scheduler sets per node); accelerate then starts PER_NODE copies of
``python -m joulebench.runner.node_launch work TASK DEVICE``, which run the task file once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from joulebench.runner.launch import die_with_parent, worker_env
from joulebench.runner.multinode import LAUNCH, WORK, node_accelerate_command

USAGE = (
    "usage: python -m joulebench.runner.node_launch "
    "launch NODES PER_NODE DEVICE HOST PORT RANK_ENV TASK | work TASK DEVICE"
)


def launch(args: list[str]) -> int:
    nodes, per_node, device, host, port, rank_env, task = args
    rank_text = os.environ.get(rank_env, "")
    if not rank_text.isdigit():
        print(f"node_launch: {rank_env} is not set to a node number", file=sys.stderr)
        return 2
    cmd = node_accelerate_command(
        int(nodes), int(per_node), int(rank_text), host, int(port), device, task
    )
    os.execvpe(cmd[0], cmd, worker_env(int(per_node), device))
    return 0  # not reached


def work(args: list[str]) -> int:
    from accelerate import Accelerator

    from joulebench.runner.worker import ModelCache, run_one

    task, device = args
    die_with_parent()
    acc = Accelerator(cpu=device == "cpu")
    run_one(Path(task), acc, device, ModelCache())
    acc.wait_for_everyone()  # no node leaves while another still writes its record
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 8 and args[0] == LAUNCH:
        return launch(args[1:])
    if len(args) == 3 and args[0] == WORK:
        return work(args[1:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
