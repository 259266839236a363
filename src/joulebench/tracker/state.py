"""Tracker state and the pure function that applies one journal event to it.

The journal is the source of truth; this module replays it. Keeping ``apply_event``
pure means the snapshot, the live cache and tests all agree on what an event means.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

# A key's state in the tracker. Every other layer imports these names.
KeyState = Literal["pending", "running", "done", "failed"]
PENDING: KeyState = "pending"
RUNNING: KeyState = "running"
DONE: KeyState = "done"
FAILED: KeyState = "failed"
STATES: tuple[KeyState, ...] = get_args(KeyState)

# Why an attempt failed: the README's "Failure causes" table, `--cause`, the status
# labels and failed_experiments.csv all use exactly these words (a test holds them equal).
FailureCause = Literal[
    "oom",
    "preempted",
    "timeout",
    "node_fail",
    "cancelled",
    "code_error",
    "interrupted",
    "config_error",
]
OOM: FailureCause = "oom"
PREEMPTED: FailureCause = "preempted"
TIMEOUT: FailureCause = "timeout"
NODE_FAIL: FailureCause = "node_fail"
CANCELLED: FailureCause = "cancelled"
CODE_ERROR: FailureCause = "code_error"  # crashed; a rerun may pass
INTERRUPTED: FailureCause = "interrupted"  # a signal nothing else explains
# The experiment is refused as configured (prompts that do not fit, a model that will not
# load, a window too short): a rerun fails the same way until the config changes.
CONFIG_ERROR: FailureCause = "config_error"
FAILURE_CAUSES: tuple[FailureCause, ...] = get_args(FailureCause)


# A key run outside Slurm records "local-PID" as its job ID; any other job ID is Slurm's.
LOCAL_JOB_PREFIX = "local-"


def local_job_id(pid: int) -> str:
    return f"{LOCAL_JOB_PREFIX}{pid}"


def is_slurm_job(job_id: str | None) -> bool:
    return bool(job_id) and not str(job_id).startswith(LOCAL_JOB_PREFIX)


def format_id(number: int) -> str:
    """Zero-padded like the original ("0001"); grows past four digits when needed."""
    return f"{number:04d}"


@dataclass
class KeyRecord:
    key: str
    state: str = PENDING
    suite: str | None = None
    experiment_id: str | None = None
    config_hash: str | None = None
    attempts: int = 0
    job_id: str | None = None
    host: str | None = None
    pid: int | None = None
    device_set: str | None = None  # e.g. "cpu:0" when run with --max-parallel
    cause: str | None = None
    error: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    legacy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class TrackerState:
    generation: int = 0
    last_id: int = 0
    current_cycle: int = 0
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "joulebench-tracker/1",
            "generation": self.generation,
            "last_id": self.last_id,
            "current_cycle": self.current_cycle,
            "suites": self.suites,
            "keys": [rec.to_dict() for rec in self.keys.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackerState:
        keys = [KeyRecord.from_dict(item) for item in data.get("keys", [])]
        return cls(
            generation=int(data["generation"]),
            last_id=int(data["last_id"]),
            current_cycle=int(data.get("current_cycle", 0)),
            keys={rec.key: rec for rec in keys},
            suites=dict(data.get("suites", {})),
        )

    def copy(self) -> TrackerState:
        """An independent copy; records hold only immutable values, so a shallow copy of
        each is enough (deepcopy took seconds at 100k keys)."""
        return TrackerState(
            self.generation,
            self.last_id,
            self.current_cycle,
            {k: copy.copy(r) for k, r in self.keys.items()},
            {k: dict(v) for k, v in self.suites.items()},
        )

    def legacy_progress(self) -> dict[str, str | None]:
        """The seed's configs_run_progress.json view: key -> ID when done, else null."""
        return {k: (r.experiment_id if r.state == DONE else None) for k, r in self.keys.items()}


def _touch(rec: KeyRecord, ts: str) -> None:
    rec.updated_at = ts
    if rec.created_at is None:
        rec.created_at = ts


def apply_event(state: TrackerState, event: dict[str, Any]) -> None:
    """Mutate state by one journal event. Unknown ops are ignored (newer writers)."""
    op, ts = event.get("op"), event.get("ts")
    key = event.get("key")
    rec = state.keys.get(key) if key is not None else None
    if op == "register":
        if rec is None:
            rec = state.keys[key] = KeyRecord(key=key, suite=event.get("suite"))
        if event.get("suite"):
            state.suites.setdefault(event["suite"], {"registered_at": ts})
        if rec.state != DONE:
            rec.config_hash = event.get("config_hash", rec.config_hash)
            rec.suite = event.get("suite", rec.suite)
        _touch(rec, ts)
    elif op == "claim":
        if rec is None:
            rec = state.keys[key] = KeyRecord(key=key, suite=event.get("suite"))
        rec.state, rec.experiment_id = RUNNING, event["experiment_id"]
        rec.attempts = int(event.get("attempt", rec.attempts + 1))
        rec.config_hash = event.get("config_hash", rec.config_hash)
        rec.job_id, rec.host, rec.pid = event.get("job_id"), event.get("host"), event.get("pid")
        rec.device_set = event.get("device_set")
        rec.cause = rec.error = None
        state.last_id = max(state.last_id, int(event["experiment_id"]))
        if event.get("cycle") is not None:
            state.current_cycle = int(event["cycle"])
        _touch(rec, ts)
    elif op == "done" and rec is not None:
        rec.state, rec.experiment_id = DONE, event.get("experiment_id", rec.experiment_id)
        rec.cause = rec.error = None
        _touch(rec, ts)
    elif op == "fail" and rec is not None and rec.state != DONE:
        rec.state, rec.cause, rec.error = FAILED, event.get("cause"), event.get("error")
        _touch(rec, ts)
    elif op == "submitted":
        for k in event.get("keys", []):
            if k in state.keys and state.keys[k].state != DONE:
                state.keys[k].job_id = event.get("job_ids", {}).get(k, event.get("job_id"))
        suite = event.get("suite")
        if suite:
            info = state.suites.setdefault(suite, {})
            info.setdefault("first_submitted_at", ts)
            info["last_submitted_at"] = ts
    elif op == "archive":
        suite = event["suite"]
        for k in [k for k, r in state.keys.items() if r.suite == suite]:
            del state.keys[k]
        state.suites.pop(suite, None)
