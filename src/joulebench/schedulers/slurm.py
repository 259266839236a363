"""The Slurm backend: array submission through submitit, sacct queries, MaxArraySize.

Every Slurm command goes through one injectable ``CommandRunner`` so the logic above
it can be driven by a real cluster (the dev cluster in tests) or by literals.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joulebench.errors import SchedulerError
from joulebench.schedulers.sacct import (
    SQUEUE_COMMAND,
    SacctJob,
    parse_json,
    parse_parsable2,
    parse_squeue,
    sacct_command,
)
from joulebench.schedulers.slurm_options import SlurmOptions, executor_parameters
from joulebench.schedulers.slurm_task import SuiteTask, spec_payload
from joulebench.suite.spec import ExperimentSpec

CommandRunner = Callable[[list[str], float], subprocess.CompletedProcess]
DEFAULT_MAX_ARRAY_SIZE = 1001


def run_command(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)


def parse_max_array_size(scontrol_config: str) -> int:
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", scontrol_config, re.MULTILINE)
    return int(match[1]) if match else DEFAULT_MAX_ARRAY_SIZE


def max_array_size(runner: CommandRunner = run_command) -> int:
    """Array indices must stay below MaxArraySize, so a chunk holds at most that many."""
    try:
        done = runner(["scontrol", "show", "config"], 30)
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY_SIZE
    return parse_max_array_size(done.stdout) if done.returncode == 0 else DEFAULT_MAX_ARRAY_SIZE


@dataclass(frozen=True)
class ArrayPlan:
    """One sbatch call: keys sharing a resource shape, at most MaxArraySize array tasks,
    each task running ``keys_per_task`` of them in turn."""

    shape: tuple[str, int, int]  # device, processes per node, nodes
    specs: list[ExperimentSpec]
    parameters: dict[str, Any]
    keys_per_task: int = 1

    @property
    def tasks(self) -> list[list[ExperimentSpec]]:
        k = self.keys_per_task
        return [self.specs[i : i + k] for i in range(0, len(self.specs), k)]


def plan_arrays(
    specs: list[ExperimentSpec], opts: SlurmOptions, max_size: int, job_name: str
) -> list[ArrayPlan]:
    groups: dict[tuple[str, int, int], list[ExperimentSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.resource_shape, []).append(spec)
    per_task = opts.keys_per_task or 1
    per_array = max_size * per_task
    plans = []
    for shape, members in groups.items():
        params = executor_parameters(
            opts, device=shape[0], num_processes=shape[1], job_name=job_name, nodes=shape[2]
        )
        for start in range(0, len(members), per_array):
            plans.append(ArrayPlan(shape, members[start : start + per_array], params, per_task))
    return plans


def _executor(folder: Path, parameters: dict[str, Any]) -> Any:
    import submitit

    # max_num_timeout bounds how often a task may be requeued after a time limit.
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=10)
    executor.update_parameters(**parameters)
    return executor


def sbatch_script(plan: ArrayPlan, log_folder: Path) -> str:
    """The exact script submitit would submit for this array (used by --dry-run)."""
    from submitit.slurm.slurm import _make_sbatch_string

    executor = _executor(log_folder, plan.parameters)
    params = dict(executor.parameters)
    if len(plan.tasks) > 1:
        params["map_count"] = len(plan.tasks)
    return _make_sbatch_string(command=executor._submitit_command_str, folder=log_folder, **params)


def submit_array(plan: ArrayPlan, task: SuiteTask, log_folder: Path) -> dict[str, str]:
    """One sbatch call; returns key -> Slurm job ID ("ARRAY_TASK" or a plain ID)."""
    executor = _executor(log_folder, plan.parameters)
    # One key per task stays a plain payload, as jobs submitted before keys_per_task got.
    payloads = [
        spec_payload(t[0]) if len(t) == 1 else [spec_payload(s) for s in t] for t in plan.tasks
    ]
    try:
        jobs = executor.map_array(task, payloads)
    except Exception as exc:  # submitit raises FailedJobError/FailedSubmissionError/OSError
        first = str(exc).strip().splitlines()
        raise SchedulerError(
            f"sbatch refused the array ({first[-1] if first else exc}); "
            "check --partition/--account/--qos and `sinfo`"
        ) from None
    return {
        spec.key: str(job.job_id)
        for keys, job in zip(plan.tasks, jobs, strict=True)
        for spec in keys
    }


def _last_line(stderr: str) -> str:
    """Slurm clients log a chain of errors; the last one says why (one line for users)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    # "sacct: error: ..." / "slurm_load_jobs error: ...": the command is named already.
    last = re.sub(r"^[\w ]+: error: |^\w+ error: ", "", lines[-1]) if lines else ""
    return (last or "no error message")[:90]


@dataclass(frozen=True)
class SacctResult:
    jobs: dict[str, SacctJob] | None
    problem: str | None = None  # why jobs is None: sacct missing, slow or unreadable


def query_sacct(
    job_ids: list[str], starttime: str, runner: CommandRunner = run_command, timeout_s: float = 20.0
) -> SacctResult:
    """One batched sacct call (JSON where supported, else --parsable2)."""
    if not job_ids:
        return SacctResult({})
    for use_json in (True, False):
        cmd = sacct_command(job_ids, starttime, use_json)
        try:
            done = runner(cmd, timeout_s)
        except FileNotFoundError:
            return SacctResult(None, "sacct not found on PATH")
        except subprocess.TimeoutExpired:
            return SacctResult(None, f"sacct did not answer within {timeout_s:.0f} s")
        if done.returncode != 0:
            if use_json:
                continue  # older Slurm without --json, or no openapi plugin
            return SacctResult(None, f"sacct failed: {_last_line(done.stderr)}")
        try:
            return SacctResult(
                parse_json(done.stdout) if use_json else parse_parsable2(done.stdout)
            )
        except SchedulerError as exc:
            if not use_json:
                return SacctResult(None, str(exc))
    return SacctResult(None, "sacct gave no usable output")


def query_squeue(runner: CommandRunner = run_command, timeout_s: float = 20.0) -> SacctResult:
    """This user's live jobs from slurmctld (``jobs`` holds only live ones)."""
    try:
        done = runner(SQUEUE_COMMAND, timeout_s)
    except FileNotFoundError:
        return SacctResult(None, "squeue not found on PATH")
    except subprocess.TimeoutExpired:
        return SacctResult(None, f"squeue did not answer within {timeout_s:.0f} s")
    if done.returncode != 0:
        return SacctResult(None, f"squeue failed: {_last_line(done.stderr)}")
    try:
        return SacctResult(parse_squeue(done.stdout))
    except SchedulerError as exc:
        return SacctResult(None, str(exc))
