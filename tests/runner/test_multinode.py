"""Multi-node runner parts: each node's accelerate line, the node_launch entry point,
pool shapes, the launch overhead where no pool times it, the refusal without Slurm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.runner.experiment import launch_overhead_s
from joulebench.runner.multinode import Rendezvous, node_accelerate_command, node_launch_args
from joulebench.runner.pool import PoolShape


def test_each_node_launches_accelerate_with_its_machine_rank() -> None:
    rdzv = Rendezvous(("jbn1", "jbn2"), 29611)
    args = node_launch_args(2, 2, "cpu", rdzv, Path("/w/task.json"), "SLURM_NODEID", "py")
    assert args == [
        "py",
        "-m",
        "joulebench.runner.node_launch",
        "launch",
        "2",
        "2",
        "cpu",
        "jbn1",
        "29611",
        "SLURM_NODEID",
        "/w/task.json",
    ]
    cmd = node_accelerate_command(2, 2, 1, "jbn1", 29611, "cpu", "/w/task.json", "py")
    flag = {cmd[i]: cmd[i + 1] for i in range(len(cmd) - 1) if cmd[i].startswith("--")}
    assert flag["--num_machines"] == "2" and flag["--machine_rank"] == "1"
    assert flag["--main_process_ip"] == "jbn1" and flag["--main_process_port"] == "29611"
    assert flag["--num_processes"] == "4"  # the world: every node's processes
    assert "--multi_gpu" in cmd  # also on CPU: several processes need it (gloo)
    assert cmd[-5:] == ["-m", "joulebench.runner.node_launch", "work", "/w/task.json", "cpu"]


LAUNCH_ARGS = ["2", "1", "cpu", "jbn1", "1", "JB_NO_SUCH_VAR", "/nonexistent/task.json"]


def test_node_launch_refuses_a_missing_node_number() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "joulebench.runner.node_launch", "launch", *LAUNCH_ARGS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "JB_NO_SUCH_VAR is not set" in run.stderr


def test_worker_pools_never_mix_node_counts() -> None:
    one = PoolShape.of(ExperimentConfig(model="m", num_processes=2), "cpu")
    two = PoolShape.of(ExperimentConfig(model="m", num_processes=2, nodes=2), "cpu")
    assert one != two and (one.nodes, two.nodes) == (1, 2)


def test_launch_overhead_is_wall_time_less_the_slowest_ranks_own_work() -> None:
    ranks = [
        {"phases_s": {"load": 2.0, "prompts": 0.5}, "window_s": 1.0},
        {"phases_s": {"load": 3.0, "prompts": 0.5}, "window_s": 1.5},
    ]
    assert launch_overhead_s(12.0, ranks) == pytest.approx(7.0)  # type: ignore[arg-type]
    assert launch_overhead_s(1.0, ranks) == 0.0  # type: ignore[arg-type]


def test_nodes_above_one_without_slurm_is_refused_before_the_work_folder(tmp_path: Path) -> None:
    from joulebench.runner.experiment import ExperimentFailed, run_workers

    cfg = ExperimentConfig(model="m", device="cpu", nodes=2)
    with pytest.raises(ExperimentFailed, match="nodes: 2 needs Slurm") as caught:
        run_workers(cfg, "0001", cfg.config_hash(), tmp_path / "work")
    assert caught.value.user_error and caught.value.cause == "config_error"
    assert not (tmp_path / "work").exists()


class ShellSpread:
    """Runs the per-node command once, here, through sh (a scheduler stand-in for the
    leader's watch loop: real processes, no Slurm)."""

    rank_env = "JB_TEST_NODE"

    def __init__(self, script: str) -> None:
        self.script = script

    def rendezvous(self, nodes: int) -> Rendezvous:
        return Rendezvous(("localhost",), 1)

    def command(self, nodes: int, per_node: list[str]) -> list[str]:
        return ["sh", "-c", self.script]

    def lost_node(self, output: str) -> str | None:
        return "n2" if "Node failure on n2" in output else None


def test_a_failed_step_names_the_lost_node_from_its_output(tmp_path: Path) -> None:
    from joulebench.runner.multinode import NodesExited, run_on_nodes

    lost = ShellSpread("echo 'srun: error: Node failure on n2' >&2; exit 143")
    with pytest.raises(NodesExited) as caught:
        run_on_nodes(lost, 2, 1, "cpu", tmp_path / "task.json", tmp_path / "launcher.log")
    assert (caught.value.returncode, caught.value.lost_node) == (143, "n2")
    crashed = ShellSpread("exit 1")
    with pytest.raises(NodesExited) as caught:
        run_on_nodes(crashed, 2, 1, "cpu", tmp_path / "task.json", tmp_path / "other.log")
    assert (caught.value.returncode, caught.value.lost_node) == (1, None)
    fine = ShellSpread("exit 0")
    ran = run_on_nodes(fine, 2, 1, "cpu", tmp_path / "task.json", tmp_path / "ok.log")
    assert ran.rendezvous.main_host == "localhost" and ran.wall_s >= 0
