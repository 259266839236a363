from __future__ import annotations

import os

import pytest

from joulebench.runner.launch import accelerate_command, worker_env


def test_two_cpu_processes_use_multi_gpu_flag_not_cpu_flag() -> None:
    # `--cpu --num_processes 2` silently runs one process (verified on these machines).
    cmd = accelerate_command(2, "cpu", ["--serve", "s", "cpu"], python="py")
    assert "--multi_gpu" in cmd and "--cpu" not in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--main_process_port") + 1] == "0"  # shared nodes: pick a free port
    assert cmd[-5:] == ["-m", "joulebench.runner.worker", "--serve", "s", "cpu"]
    # torch's elastic agent would poll its workers 10x a second beside them.
    assert cmd[cmd.index("--monitor_interval") + 1] == "1"


def test_single_cpu_process_uses_cpu_flag_and_gpu_never_names_gpu_ids() -> None:
    assert "--cpu" in accelerate_command(1, "cpu", ["t"])
    gpu = accelerate_command(4, "cuda", ["t"])
    assert "--gpu_ids" not in gpu and "--cpu" not in gpu and "--multi_gpu" in gpu


def test_environment_keeps_the_gpus_slurm_assigned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    env = worker_env(2, "cuda")
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_cpu_processes_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert worker_env(2, "cpu", cpu_count=8)["OMP_NUM_THREADS"] == "4"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_env(2, "cpu", cpu_count=8)["OMP_NUM_THREADS"] == "3"  # the user's wins


def test_cpu_threads_follow_the_slurm_allocation_not_the_whole_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_ON_NODE", raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert worker_env(1, "cpu")["OMP_NUM_THREADS"] == "1"
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert worker_env(1, "cpu")["OMP_NUM_THREADS"] == str(len(os.sched_getaffinity(0)))
