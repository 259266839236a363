"""Multi-node pure parts: who leads, the srun step, sinfo's partition sizes, the refusal.

The literals are real output of the dev clusters (`up --nodes 2` and the single-node one),
captured on 2026-12-02 with Slurm 22.05.8.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.errors import ConfigError, SchedulerError
from joulebench.schedulers.slurm import plan_arrays, sbatch_script
from joulebench.schedulers.slurm_nodes import (
    SINFO_NODES_COMMAND,
    SlurmNodeSpread,
    check_partition_nodes,
    is_follower,
    launch_line,
    node_rank,
    parse_hostnames,
    parse_lost_node,
    parse_partition_nodes,
    partition_nodes_problem,
    srun_nodes_command,
)
from joulebench.schedulers.slurm_options import SlurmOptions
from joulebench.suite import SuiteDefinition, expand_suite

SINFO_TWO_NODES = "jbn1 urgent\njbn1 gpu*\njbn2 urgent\njbn2 gpu*\n"
SINFO_ONE_NODE = "vm gpu*\nvm urgent\n"


def done(stdout: str, returncode: int = 0) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], returncode, stdout, "")


def test_partition_sizes_and_default_from_sinfo() -> None:
    assert parse_partition_nodes(SINFO_TWO_NODES) == ({"urgent": 2, "gpu": 2}, "gpu")
    assert parse_partition_nodes(SINFO_ONE_NODE) == ({"gpu": 1, "urgent": 1}, "gpu")
    assert parse_partition_nodes("") == ({}, None)


def test_nodes_above_the_partition_are_refused_naming_the_fix() -> None:
    counts, default = parse_partition_nodes(SINFO_TWO_NODES)
    assert partition_nodes_problem(2, None, counts, default) is None
    assert partition_nodes_problem(2, "urgent", counts, default) is None
    problem = partition_nodes_problem(3, None, counts, default)
    assert problem is not None
    assert "nodes: 3" in problem and "'gpu' has 2 node(s)" in problem
    assert "lower nodes to at most 2" in problem
    # An unknown partition is sbatch's to refuse, with its own words.
    assert partition_nodes_problem(3, "nosuch", counts, default) is None


def test_check_partition_nodes_runs_sinfo_only_for_wide_experiments() -> None:
    calls: list[list[str]] = []

    def runner(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        calls.append(cmd)
        return done(SINFO_ONE_NODE)

    check_partition_nodes(1, "gpu", "s.yaml", runner)
    assert calls == []
    with pytest.raises(ConfigError, match=r"^s\.yaml: nodes: 2 but partition 'gpu' has 1"):
        check_partition_nodes(2, "gpu", "s.yaml", runner)
    assert calls == [SINFO_NODES_COMMAND]
    # No answering sinfo: nothing to compare with, sbatch decides.
    check_partition_nodes(2, "gpu", "s.yaml", lambda cmd, t: done("", 1))


def test_the_first_node_leads_and_the_others_follow() -> None:
    assert node_rank({}) == 0 and not is_follower({})
    assert node_rank({"SLURM_NODEID": "0"}) == 0 and not is_follower({"SLURM_NODEID": "0"})
    assert node_rank({"SLURM_NODEID": "1"}) == 1 and is_follower({"SLURM_NODEID": "1"})


def test_srun_step_spans_every_node_once_beside_the_tasks_own_step() -> None:
    cmd = srun_nodes_command(2, ["python", "-m", "x"])
    assert cmd[:1] == ["srun"] and cmd[-3:] == ["python", "-m", "x"]
    assert {"--overlap", "--mem=0", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1"} <= set(cmd)
    assert "--kill-on-bad-exit=1" in cmd


def test_rendezvous_is_the_first_host_of_the_job() -> None:
    seen: list[list[str]] = []

    def runner(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        seen.append(cmd)
        return done("jbn1\njbn2\n")

    spread = SlurmNodeSpread({"SLURM_JOB_NODELIST": "jbn[1-2]"}, runner)
    rdzv = spread.rendezvous(2)
    assert seen == [["scontrol", "show", "hostnames", "jbn[1-2]"]]
    assert rdzv.hosts == ("jbn1", "jbn2") and rdzv.main_host == "jbn1"
    assert 0 < rdzv.port < 65536
    assert parse_hostnames("jbn1\n\njbn2\n") == ["jbn1", "jbn2"]
    with pytest.raises(SchedulerError, match="has 2 node"):
        spread.rendezvous(3)


# What srun printed when `fault --nodes 2 crash-node jbn2` hit a 2-node step (2026-12-02).
SRUN_NODE_FAILURE = """srun: error: Node failure on jbn2
srun: Job step aborted: Waiting up to 7 seconds for job step to finish.
slurmstepd-jbn1: error: *** STEP 2.1 ON jbn1 CANCELLED AT 2026-12-02T18:11:01 DUE TO NODE \
FAILURE, SEE SLURMCTLD LOG FOR DETAILS ***
srun: error: jbn1: task 0: Exited with exit code 143
"""


def test_a_lost_node_is_read_from_srun() -> None:
    assert parse_lost_node(SRUN_NODE_FAILURE) == "jbn2"
    assert parse_lost_node("srun: error: jbn1: task 0: Exited with exit code 1\n") is None


def test_dry_run_launch_line_names_the_step_and_each_nodes_accelerate() -> None:
    srun, note, accelerate = launch_line(2, 1, "cpu").splitlines()
    assert srun.startswith("srun --overlap --mem=0 --nodes=2")
    assert srun.endswith("launch 2 1 cpu FIRST_HOST PORT SLURM_NODEID WORK/task.json")
    assert "scontrol show hostnames $SLURM_JOB_NODELIST" in note
    assert "--machine_rank $SLURM_NODEID --main_process_ip FIRST_HOST" in accelerate
    assert "--main_process_port PORT --num_processes 2" in accelerate


def _suite(nodes: list[int], device: str = "cpu") -> SuiteDefinition:
    return SuiteDefinition(
        name="s",
        source="s.yaml",
        base={"model": "m", "device": device, "num_processes": 2},
        models={"m": {"model": "org/m"}},
        controlled={"nodes": nodes},
    )


def test_tasks_of_different_node_counts_go_to_different_arrays() -> None:
    plans = plan_arrays(expand_suite(_suite([1, 2]), 2), SlurmOptions(), 1001, "jb")
    assert sorted(p.shape for p in plans) == [("cpu", 2, 1), ("cpu", 2, 2)]
    by_nodes = {p.shape[2]: p.parameters["nodes"] for p in plans}
    assert by_nodes == {1: 1, 2: 2}


def test_nodes_one_keeps_the_config_hash_of_configs_from_before_the_field() -> None:
    import hashlib
    import json

    from joulebench.config.models import HASH_OMITTED_AT

    cfg = ExperimentConfig(model="m")
    before = cfg.model_dump(mode="json")
    for name in HASH_OMITTED_AT:  # nodes and the other fields added since, at defaults
        before.pop(name)
    old = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert cfg.config_hash() == old
    assert ExperimentConfig(model="m", nodes=2).config_hash() != old


def test_sbatch_script_for_a_two_node_cuda_array_matches_the_recorded_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like sbatch_cuda_array.txt: --nodes=2 and the GPUs of one node's processes."""
    monkeypatch.chdir(tmp_path)
    opts = SlurmOptions(partition="gpu", time="04:00:00", array_parallelism=2)
    (plan,) = plan_arrays(expand_suite(_suite([2], "cuda"), 3), opts, 1001, "jb-s")
    recorded = (Path(__file__).parent / "data" / "sbatch_cuda_2node_array.txt").read_text()
    expected = recorded.replace("{python}", sys.executable).replace("{cwd}", str(tmp_path))
    assert sbatch_script(plan, Path("logs/submitit")) == expected
