"""The executors, named once: where a key runs, and how ``auto`` chooses."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Literal, get_args

from joulebench.errors import ConfigError

if TYPE_CHECKING:  # a leaf module: the CLI imports it for its choices at start-up
    from joulebench.tracker import KeyRecord

Executor = Literal["local", "slurm"]
ExecutorChoice = Literal["auto", "local", "slurm"]
LOCAL: Executor = "local"
SLURM: Executor = "slurm"
AUTO: ExecutorChoice = "auto"
EXECUTORS: tuple[Executor, ...] = get_args(Executor)
EXECUTOR_CHOICES: tuple[ExecutorChoice, ...] = get_args(ExecutorChoice)


def sbatch_on_path() -> bool:
    return shutil.which("sbatch") is not None


def choose_executor(requested: str) -> tuple[Executor, str | None]:
    """Resolve 'auto'; the note is the one line a user sees about the choice and why."""
    if requested not in EXECUTOR_CHOICES:
        raise ConfigError(f"--executor: '{requested}' is not one of {', '.join(EXECUTOR_CHOICES)}")
    if requested == SLURM and not sbatch_on_path():
        raise ConfigError(
            "--executor slurm: sbatch is not on PATH; run on a Slurm login node "
            "or use --executor local"
        )
    if requested == LOCAL:
        return LOCAL, None
    if requested == SLURM:
        return SLURM, None
    if sbatch_on_path():
        return SLURM, (
            "executor: slurm (--executor auto found sbatch on PATH; "
            "--executor local runs here instead)"
        )
    return LOCAL, "executor: local (--executor auto found no sbatch on PATH)"


def ran_on(job_id: str | None) -> Executor:
    """Which executor a tracker record's job ID came from."""
    from joulebench.tracker.state import is_slurm_job  # kept out of the CLI's start-up

    return SLURM if is_slurm_job(job_id) else LOCAL


def last_executor(records: list[KeyRecord]) -> Executor | None:
    """The executor the most recent attempt among ``records`` ran on, if any ran."""
    tried = [r for r in records if r.job_id]
    if not tried:
        return None
    return ran_on(max(tried, key=lambda r: r.updated_at or "").job_id)


def resume_executor(
    requested: str, suite: str, records: list[KeyRecord]
) -> tuple[Executor, str | None]:
    """``auto`` for a rerun means where the suite last ran, so a laptop suite is not sent to
    a cluster (or the reverse) just because sbatch happens to be on PATH."""
    if requested != AUTO:
        return choose_executor(requested)
    last = last_executor(records)
    if last is None:
        return choose_executor(AUTO)
    if last == SLURM and not sbatch_on_path():
        raise ConfigError(
            f"suite '{suite}' last ran on Slurm but sbatch is not on PATH here; run "
            "resume-failed on the login node, or pass --executor local to rerun here"
        )
    other = LOCAL if last == SLURM else SLURM
    return last, f"executor: {last} (where '{suite}' last ran; --executor {other} to change)"
