"""Shared-node detection from captured Slurm environments, and the share (pure)."""

from __future__ import annotations

from joulebench.measure.host_share import (
    CONCURRENT_EXPERIMENTS,
    CPU_ALLOCATION_SHARE,
    CPU_TIME_SHARE,
    SLURM_PARTIAL_NODE,
    WHOLE_NODE,
    host_share,
    node_sharing,
    slurm_cpus,
    split_host_gpu,
)

# Environments as Slurm sets them (the variables and formats of sbatch(1), "OUTPUT
# ENVIRONMENT VARIABLES"): a 1-CPU array task on a 2-CPU node like the dev cluster's, an
# --exclusive job on a 64-core node, and a 2-node job. Written by hand from that page,
# not yet recorded from a live job.
ARRAY_TASK_ONE_CPU = {
    "SLURM_JOB_ID": "812",
    "SLURM_ARRAY_JOB_ID": "811",
    "SLURM_ARRAY_TASK_ID": "1",
    "SLURM_CPUS_ON_NODE": "1",
    "SLURM_JOB_CPUS_PER_NODE": "1",
    "SLURM_CPUS_PER_TASK": "1",
    "SLURM_NNODES": "1",
}
EXCLUSIVE_JOB = {
    "SLURM_JOB_ID": "4410337",
    "SLURM_CPUS_ON_NODE": "64",
    "SLURM_JOB_CPUS_PER_NODE": "64",
    "SLURM_CPUS_PER_TASK": "8",
    "SLURM_NNODES": "1",
}
TWO_NODES_NO_CPUS_ON_NODE = {"SLURM_JOB_ID": "77", "SLURM_JOB_CPUS_PER_NODE": "16(x2)"}
LAPTOP = {"HOME": "/home/me", "PATH": "/usr/bin"}


def test_slurm_cpus_reads_the_allocation_on_this_node() -> None:
    assert slurm_cpus(ARRAY_TASK_ONE_CPU) == 1
    assert slurm_cpus(EXCLUSIVE_JOB) == 64
    assert slurm_cpus(TWO_NODES_NO_CPUS_ON_NODE) == 16
    assert slurm_cpus(LAPTOP) is None


def test_an_allocation_smaller_than_the_node_shares_it() -> None:
    sharing = node_sharing(ARRAY_TASK_ONE_CPU, node_cpus=2)
    assert sharing["shared"] and sharing["reasons"] == [SLURM_PARTIAL_NODE]
    assert (sharing["job_cpus"], sharing["node_cpus"]) == (1, 2)
    assert host_share(sharing, None) == (0.5, CPU_ALLOCATION_SHARE)


def test_an_exclusive_job_and_a_laptop_run_have_the_node_alone() -> None:
    for env, cpus in ((EXCLUSIVE_JOB, 64), (LAPTOP, 8)):
        sharing = node_sharing(env, node_cpus=cpus)
        assert not sharing["shared"] and sharing["reasons"] == []
        assert host_share(sharing, None) == (1.0, WHOLE_NODE)


def test_our_concurrent_experiments_share_the_node_and_are_named() -> None:
    sharing = node_sharing(LAPTOP, 2, ["0003", "0002", "0003"], "cpu:1")
    assert sharing["reasons"] == [CONCURRENT_EXPERIMENTS]
    assert sharing["concurrent_experiment_ids"] == ["0002", "0003"]
    assert host_share(sharing, None) == (0.5, CPU_ALLOCATION_SHARE)  # 1 of 2 cores
    load = {"own_cpu_s": 3.0, "node_busy_cpu_s": 8.0}
    assert host_share(sharing, load) == (0.375, CPU_TIME_SHARE)  # measured wins


def test_host_and_gpu_parts_split_by_label() -> None:
    nvml = {"gpu:GPU-1": 100.0, "gpu:GPU-2": 50.0}
    codecarbon = {"cpu": 30.0, "ram": 5.0, "gpu": 60.0}
    rapl = {"package-0": 40.0, "dram": 4.0}
    assert split_host_gpu(nvml) == (0.0, 150.0)
    assert split_host_gpu(codecarbon) == (35.0, 60.0)
    assert split_host_gpu(rapl) == (44.0, 0.0)
