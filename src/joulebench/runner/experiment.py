"""One experiment from the outside: write the task, run it in workers, collect results."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from joulebench.config.models import ExperimentConfig
from joulebench.config.parallelism import PIPELINE, launched_processes
from joulebench.errors import ConfigError, RunnerError
from joulebench.fsutil import atomic_write_json, read_json
from joulebench.results.records import RankRecord
from joulebench.runner.model import resolve_device
from joulebench.runner.multinode import NodesExited, run_on_nodes
from joulebench.runner.pool import PoolShape, WorkerPools, WorkersExited
from joulebench.tracker.state import (
    CODE_ERROR,
    CONFIG_ERROR,
    INTERRUPTED,
    NODE_FAIL,
    FailureCause,
)


class ExperimentFailed(RunnerError):
    """The workers failed; ``cause`` is one of the tracker's failure causes."""

    def __init__(self, message: str, cause: FailureCause, user_error: bool = False) -> None:
        super().__init__(message)
        self.cause = cause
        self.user_error = user_error


def cause_of(exc: BaseException) -> FailureCause:
    """The failure cause an exception stands for. A refusal of the experiment as
    configured (ConfigError, or a RunnerError: prompts that do not fit, a model that will
    not load, a checkpoint of another config) fails the same way on every rerun:
    config_error. Anything else, a meter or tracker hiccup included, may pass when run
    again: code_error."""
    if isinstance(exc, ExperimentFailed):
        return exc.cause
    if isinstance(exc, (ConfigError, RunnerError)):
        return CONFIG_ERROR
    return CODE_ERROR


@dataclass(frozen=True)
class RawRun:
    """What the workers wrote, before aggregation."""

    experiment_id: str
    config: ExperimentConfig
    config_hash: str
    device: str
    ranks: list[RankRecord]
    launch_wall_s: float
    work_dir: Path
    workers_launch_s: float = 0.0  # 0 when the experiment ran in already-launched workers


def _clear_previous_outputs(work: Path) -> None:
    # Checkpoints stay (they are the point of a rerun); results of an earlier try go.
    for pattern in ("rank_*.json", "error_rank*.json"):
        for stale in work.glob(pattern):
            stale.unlink()


def _last_line(path: Path) -> str:
    if not path.exists():
        return ""
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else ""


def _failure_from(
    work: Path, returncode: int, log_path: Path, launcher_log: Path
) -> ExperimentFailed:
    errors = sorted(work.glob("error_rank*.json"))
    if errors:
        info = read_json(errors[0])
        return ExperimentFailed(
            f"{info['type']}: {info['message']} (see {log_path})",
            info.get("cause", CODE_ERROR),
            bool(info.get("user_error")),
        )
    if returncode < 0 or returncode in (128 + 9, 128 + 15, 137, 143):
        return ExperimentFailed(
            f"workers were killed (exit {returncode}); see {log_path} and {launcher_log}",
            INTERRUPTED,
        )
    tail = _last_line(log_path) or _last_line(launcher_log)
    return ExperimentFailed(
        f"accelerate exited {returncode}: {tail} (see {log_path} and {launcher_log})", CODE_ERROR
    )


def _check_gpus_visible(num_processes: int) -> None:
    """Refuse before launching: process i would ask for cuda:i and die after its load.

    Counted through NVML, so the job's parent process stays free of torch; torch only
    answers when NVML cannot.
    """
    from joulebench.measure.nvml_devices import visible_gpu_count

    visible = visible_gpu_count()
    if visible is None:
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    env = f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}"
    if visible == 0:
        raise ExperimentFailed(
            f"device: cuda but this node has no CUDA GPU visible ({env}); "
            "ask Slurm for GPUs (--gpus-per-node) or use device: auto",
            CONFIG_ERROR,
            True,
        )
    if num_processes > visible:
        raise ExperimentFailed(
            f"num_processes: {num_processes} but this node has {visible} "
            f"CUDA GPU(s) visible ({env}); each process needs its own GPU",
            CONFIG_ERROR,
            True,
        )


def run_workers(
    config: ExperimentConfig,
    experiment_id: str,
    config_hash: str,
    work_dir: Path,
    batch_size: int | None = None,
    baseline_cache_dir: Path | None = None,
    pools: WorkerPools | None = None,
) -> RawRun:
    """Run the experiment's processes; raise ExperimentFailed with a cause on failure.

    With ``pools``, workers launched for an earlier experiment of the same shape run this
    one too; without, fresh workers are launched and stopped again. An experiment over
    several nodes needs pools that know how to reach them (``WorkerPools.spread``).
    """
    device = _refuse_what_cannot_run(config, pools)
    work_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous_outputs(work_dir)
    task_path = work_dir / "task.json"
    atomic_write_json(
        task_path,
        {
            "experiment_id": experiment_id,
            "config_hash": config_hash,
            "config": config.model_dump(mode="json"),
            "batch_size": batch_size or config.batch_size,
            "baseline_cache_dir": str(baseline_cache_dir.resolve()) if baseline_cache_dir else None,
            "work_dir": str(work_dir.resolve()),
        },
    )
    owned = pools is None
    pools = WorkerPools() if pools is None else pools
    launcher_log = work_dir / "launcher.log"
    start = time.perf_counter()
    try:
        launch_s: float | None = None  # measured by a pool; several nodes have none
        if config.nodes > 1 and pools.spread is not None:
            pools.close()  # a single-node pool would sit idle on its GPUs meanwhile
            spread, per_node = pools.spread, config.num_processes
            run_on_nodes(spread, config.nodes, per_node, device, task_path, launcher_log)
        else:
            pool, launch_s = pools.get(PoolShape.of(config, device), launcher_log)
            launcher_log = pool.log_path
            pool.run(task_path)
    except NodesExited as exited:
        if exited.lost_node is not None:
            raise ExperimentFailed(
                f"node {exited.lost_node} failed during the experiment (Slurm: node "
                f"failure); see {launcher_log}",
                NODE_FAIL,
            ) from None
        raise _failure_from(
            work_dir, exited.returncode, work_dir / "workers.log", launcher_log
        ) from None
    except WorkersExited as exited:
        pools.discard()
        raise _failure_from(
            work_dir, exited.returncode, work_dir / "workers.log", launcher_log
        ) from None
    finally:
        if owned:
            pools.close()
    wall_s = time.perf_counter() - start
    rank_files = sorted(work_dir.glob("rank_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    expected = config.nodes * launched_processes(config.parallelism, config.num_processes)
    if len(rank_files) != expected:
        pools.discard()
        raise _failure_from(work_dir, 0, work_dir / "workers.log", launcher_log)
    ranks = [json.loads(p.read_text(encoding="utf-8")) for p in rank_files]
    if launch_s is None:
        launch_s = launch_overhead_s(wall_s, ranks)
    return RawRun(experiment_id, config, config_hash, device, ranks, wall_s, work_dir, launch_s)


def _refuse_what_cannot_run(config: ExperimentConfig, pools: WorkerPools | None) -> str:
    """The device to run on, after refusing (before anything is written) what cannot run
    here: several nodes without a scheduler, quantisation off CUDA, too few GPUs."""
    if config.nodes > 1 and (pools is None or pools.spread is None):
        raise ExperimentFailed(
            f"nodes: {config.nodes} needs Slurm (one launcher per node); run it with "
            "submit-suite on a Slurm cluster, or set nodes: 1",
            CONFIG_ERROR,
            True,
        )
    device = resolve_device(config.device)
    if config.quantization != "none" and device != "cuda":
        raise ExperimentFailed(
            f"quantization: {config.quantization} needs a CUDA GPU but this "
            "run is on cpu; set quantization: none",
            CONFIG_ERROR,
            True,
        )
    if device != "cuda" and config.parallelism == PIPELINE:
        raise ExperimentFailed(
            f"parallelism: pipeline splits the model over GPUs but this run is on {device}; "
            "use parallelism: tensor or data on CPU, or run on a GPU node",
            CONFIG_ERROR,
            True,
        )
    if device == "cuda":  # every mode uses num_processes GPUs (pipeline: in one process)
        _check_gpus_visible(config.num_processes)
    return device


def launch_overhead_s(wall_s: float, ranks: list[RankRecord]) -> float:
    """A fresh launch's fixed cost where no pool timed it (several nodes): the wall time
    less the slowest rank's own phases and window (imports, rendezvous, start-up)."""
    busy = max(sum(r["phases_s"].values()) + r["window_s"] for r in ranks)
    return max(0.0, wall_s - busy)
