"""sacct: a pure command builder and pure parsers for its two real output formats.

Parsers are tested on output captured from Slurm 22.05 (tests/schedulers/data/). Array
tasks are reported as ``ARRAYID_TASK``; a requeued job appears once per run with ``-D``
or in ``--json``, and the newest record is the one that counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from joulebench.errors import SchedulerError
from joulebench.tracker.state import (
    CANCELLED,
    CODE_ERROR,
    FAILED,
    NODE_FAIL,
    OOM,
    PREEMPTED,
    TIMEOUT,
    FailureCause,
)

MAX_ARRAY_TASKS = 4_000_001  # the largest MaxArraySize Slurm accepts
PARSABLE_FIELDS = "JobID,JobIDRaw,JobName,State,ExitCode,Start,End,NodeList,Reason"

# Slurm state -> (joulebench category, failure cause). "active" jobs may still finish;
# PREEMPTED, REQUEUED, NODE_FAIL and TIMEOUT are never "done".
# A Slurm job's category: still in Slurm's hands, ended well, or failed with a cause.
JobCategory = Literal["active", "completed", "failed"]
STATE_MAP: dict[str, tuple[JobCategory, FailureCause | None]] = {
    "COMPLETED": ("completed", None),
    "PENDING": ("active", None),
    "RUNNING": ("active", None),
    "REQUEUED": ("active", None),
    "REQUEUE_FED": ("active", None),
    "REQUEUE_HOLD": ("active", None),
    "RESIZING": ("active", None),
    "SUSPENDED": ("active", None),
    "CONFIGURING": ("active", None),
    "COMPLETING": ("active", None),
    "STAGE_OUT": ("active", None),
    "SIGNALING": ("active", None),
    "PREEMPTED": (FAILED, PREEMPTED),
    "TIMEOUT": (FAILED, TIMEOUT),
    "DEADLINE": (FAILED, TIMEOUT),
    "NODE_FAIL": (FAILED, NODE_FAIL),
    "BOOT_FAIL": (FAILED, NODE_FAIL),
    "CANCELLED": (FAILED, CANCELLED),
    "OUT_OF_MEMORY": (FAILED, OOM),
    "FAILED": (FAILED, CODE_ERROR),
    "REVOKED": (FAILED, CANCELLED),
}


@dataclass
class SacctJob:
    """The newest record of one job or array task, plus states of earlier runs."""

    job_id: str  # "123" or "123_4"
    state: str
    exit_code: str = ""
    node: str = ""
    history: list[str] = field(default_factory=list)

    @property
    def category(self) -> str:
        return STATE_MAP.get(self.state, (FAILED, CODE_ERROR))[0]

    @property
    def cause(self) -> str | None:
        return STATE_MAP.get(self.state, (FAILED, CODE_ERROR))[1]


def sacct_command(job_ids: list[str], starttime: str, use_json: bool) -> list[str]:
    """One batched call for every job of a suite; --starttime guards against reused IDs."""
    parents = sorted({j.split("_")[0] for j in job_ids if j.split("_")[0].isdigit()}, key=int)
    cmd = ["sacct", "--starttime", starttime, "--jobs", ",".join(parents)]
    return (
        [*cmd, "--json"] if use_json else [*cmd, "-D", "--parsable2", f"--format={PARSABLE_FIELDS}"]
    )


def _normal_state(raw: Any) -> str:
    if isinstance(raw, list):  # Slurm >= 23.02 returns a list of flags
        raw = raw[0] if raw else "UNKNOWN"
    # "CANCELLED by 0" in parsable output; keep the state word only.
    return str(raw).split()[0].upper() if raw else "UNKNOWN"


def _record(jobs: dict[str, SacctJob], job_id: str, state: str, exit_code: str, node: str) -> None:
    previous = jobs.get(job_id)
    history = [*previous.history, previous.state] if previous else []
    jobs[job_id] = SacctJob(job_id, state, exit_code, node, history)


def _expand_pending_array(job_id: str) -> list[str]:
    """'12_[3-5,7%2]' (tasks not started yet) -> ['12_3', '12_4', '12_5', '12_7']."""
    match = re.fullmatch(r"(\d+)_\[([0-9,\-]+)(?:%\d+)?\]", job_id)
    if not match:
        return [job_id]
    out = []
    for part in match[2].split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last - first > MAX_ARRAY_TASKS:  # Slurm's own MaxArraySize ceiling
            raise ValueError(job_id)
        out += [f"{match[1]}_{i}" for i in range(first, last + 1)]
    return out


def parse_parsable2(text: str) -> dict[str, SacctJob]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("JobID|"):
        raise SchedulerError(f"sacct --parsable2: unexpected output {text[:80]!r}")
    header = lines[0].split("|")
    jobs: dict[str, SacctJob] = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split("|"), strict=False))
        job_id = row.get("JobID", "")
        if not job_id or "." in job_id:  # steps (.batch, .extern, .0) repeat the job
            continue
        try:
            tasks = _expand_pending_array(job_id)
        except ValueError:
            raise SchedulerError(f"sacct --parsable2: unreadable job ID {job_id[:40]!r}") from None
        for one in tasks:
            _record(
                jobs,
                one,
                _normal_state(row.get("State")),
                row.get("ExitCode", ""),
                row.get("NodeList", ""),
            )
    return jobs


def _json_id(job: dict[str, Any]) -> str:
    array = job.get("array") or {}
    task = array.get("task_id")
    if isinstance(task, dict):  # newer Slurm: {"set": true, "number": 4}
        task = task.get("number") if task.get("set") else None
    parent = array.get("job_id")
    return f"{parent}_{task}" if parent and task is not None else str(job["job_id"])


def parse_json(text: str) -> dict[str, SacctJob]:
    try:
        data = json.loads(text)
        records = data["jobs"]
        if not isinstance(records, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise SchedulerError(f"sacct --json: unexpected output {text[:80]!r}") from None

    def when(job: dict[str, Any]) -> tuple[int, int]:
        t = job.get("time") or {}
        return (int(t.get("submission") or 0), int(t.get("start") or 0))

    jobs: dict[str, SacctJob] = {}
    try:
        for job in sorted(records, key=when):  # oldest first, so the newest record wins
            exit_code = job.get("exit_code") or {}
            _record(
                jobs,
                _json_id(job),
                _normal_state((job.get("state") or {}).get("current")),
                str(exit_code.get("status", "")),
                str(job.get("nodes", "")),
            )
    except (AttributeError, KeyError, TypeError, ValueError):
        # A record of another shape (a Slurm version we have not seen, or damage):
        # say so in one line rather than guess at job states.
        raise SchedulerError("sacct --json: a job record has an unexpected shape") from None
    return jobs


# squeue asks slurmctld, not the accounting database: it lists every job that is still
# pending, running or completing, even ones slurmdbd has not recorded yet (slurmctld
# sends it job records asynchronously), and it answers while slurmdbd is down.
SQUEUE_COMMAND = ["squeue", "--me", "--noheader", "--array", "--format=%i|%T"]


def parse_squeue(text: str) -> dict[str, SacctJob]:
    """``squeue --array --format=%i|%T`` -> the live jobs, one per array task."""
    jobs: dict[str, SacctJob] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        job_id, sep, state = line.strip().partition("|")
        if not sep or not re.fullmatch(r"\d+(_\d+)?", job_id):
            raise SchedulerError(f"squeue: unexpected line {line[:80]!r}")
        jobs[job_id] = SacctJob(job_id, _normal_state(state))
    return jobs
