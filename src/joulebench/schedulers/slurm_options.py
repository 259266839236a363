"""Slurm resource options: CLI flags over a site profile, turned into submitit parameters.

Pure: no Slurm command runs here, so the mapping is tested with literals.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from joulebench.config.loader import load_yaml_mapping
from joulebench.errors import ConfigError

# submitit counts any interruption of a job with timeout_min <= 10 as a timeout (and
# gives up after max_num_timeout of them), so a preempted short job would not requeue.
MIN_REQUEUEABLE_MINUTES = 11
DEFAULT_TIME = "01:00:00"
PROFILE_KEYS = (
    "partition",
    "time",
    "gpus_per_node",
    "cpus_per_task",
    "mem",
    "account",
    "qos",
    "constraint",
    "array_parallelism",
    "keys_per_task",
    "exclusive",
)


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time: str | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: int | None = None
    keys_per_task: int | None = None  # keys one array task runs in turn (not an sbatch flag)
    exclusive: bool | None = None  # sbatch --exclusive: whole nodes, host energy ours alone

    def merged_over(self, base: SlurmOptions) -> SlurmOptions:
        """These options win where set; the rest come from ``base`` (a site profile)."""
        mine = {k: v for k, v in asdict(self).items() if v is not None}
        return replace(base, **mine)


_TIME = re.compile(r"^(?:(?P<d>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$")


def time_to_minutes(text: str, source: str = "--time") -> int:
    """sbatch's formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S -> whole minutes (rounded up)."""
    match = _TIME.match(str(text).strip())
    if not match:
        raise ConfigError(
            f"{source}: '{text}' is not a Slurm time; use e.g. 90, 02:00:00 or 1-00:00:00"
        )
    d, a, b, c = (int(match[g]) if match[g] else None for g in ("d", "a", "b", "c"))
    if d is not None:  # D-H[:M[:S]]
        seconds = d * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = a * 3600 + (b or 0) * 60 + c
    elif b is not None:  # M:S
        seconds = a * 60 + b
    else:  # M
        seconds = a * 60
    return max(1, -(-seconds // 60))


CLI_SOURCE = "command line"


def _where(source: str, key: str) -> str:
    """How a user finds the value: the flag they typed, or the profile file and key."""
    if source == CLI_SOURCE:
        return "--" + key.replace("_", "-")
    return f"{source}: field '{key}'"


def _checked(key: str, value: Any, source: str) -> Any:
    where = _where(source, key)
    if key == "exclusive":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false (got {value!r})")
        return value
    if key in ("gpus_per_node", "cpus_per_task", "array_parallelism", "keys_per_task"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where} must be a positive whole number (got {value!r})")
        return value
    if key == "time":
        if not isinstance(value, str):
            # YAML 1.1 reads an unquoted 2:00:00 as the number 7200 (base 60).
            raise ConfigError(
                f'{where} must be quoted, e.g. time: "02:00:00" (got the number {value!r})'
            )
        if time_to_minutes(value, where) < MIN_REQUEUEABLE_MINUTES:
            raise ConfigError(_short_time(where, value))
        return value
    # One word: a newline would add a line of its own to the sbatch script.
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise ConfigError(f"{where} must be one word with no spaces (got {value!r})")
    syntax = _SYNTAX.get(key)
    if syntax is not None and not syntax[0].fullmatch(value):
        raise ConfigError(f"{where}: '{value}' is not {syntax[1]}")
    return value


# sbatch's own syntax for the free-text options, so a typo fails here in one line rather
# than as an sbatch error after the tracker was written (or, for --mem, as a job that
# Slurm reads as megabytes of something else).
_NAME = r"[A-Za-z0-9_.+-]+"
_SYNTAX: dict[str, tuple[re.Pattern[str], str]] = {
    "mem": (
        re.compile(r"\d+[KMGT]?", re.IGNORECASE),
        "a Slurm memory size; use a whole number with an optional unit K, M, G or T, "
        "e.g. 32G or 64000M (0 asks for all of a node's memory)",
    ),
    "partition": (
        re.compile(rf"{_NAME}(?:,{_NAME})*"),
        "a partition name (or a comma-separated list of them); see `sinfo -s`",
    ),
    "account": (re.compile(_NAME), "an account name; see `sacctmgr show assoc user=$USER`"),
    "qos": (
        re.compile(rf"{_NAME}(?:,{_NAME})*"),
        "a QOS name; see `sacctmgr show qos format=name`",
    ),
    "constraint": (
        re.compile(r"[A-Za-z0-9_.:*&|,\[\]()-]+"),
        "a node-feature expression such as a100 or a100|h100 (letters, digits and "
        "& | , [ ] ( ) * : only)",
    ),
}


def options_from_mapping(data: dict[str, Any], source: str) -> SlurmOptions:
    unknown = sorted(set(data) - set(PROFILE_KEYS), key=str)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{unknown[0]}'; valid keys: {', '.join(PROFILE_KEYS)}"
        )
    return SlurmOptions(
        **{key: _checked(key, value, source) for key, value in data.items() if value is not None}
    )


def load_profile(path: Path | None) -> SlurmOptions:
    """A site profile: a YAML mapping with the same keys as the command-line flags."""
    if path is None:
        return SlurmOptions()
    return options_from_mapping(load_yaml_mapping(path), str(path))


def _short_time(source: str, value: str | None) -> str:
    return (
        f"{source}: {value} is under {MIN_REQUEUEABLE_MINUTES} minutes, so submitit would "
        "treat every preemption as a timeout and not requeue; ask for at least 00:11:00"
    )


def executor_parameters(
    opts: SlurmOptions, *, device: str, num_processes: int, job_name: str, nodes: int = 1
) -> dict[str, Any]:
    """Keyword arguments for submitit's SlurmExecutor.update_parameters for one group.

    With ``nodes`` above 1 submitit's srun starts one copy of the task per node: node 0
    leads (claims, launches every node's workers, records), the others return at once
    (schedulers/slurm_nodes.py).
    """
    minutes = time_to_minutes(opts.time or DEFAULT_TIME)
    if minutes < MIN_REQUEUEABLE_MINUTES:
        raise ConfigError(_short_time("--time", opts.time))
    gpus = (
        opts.gpus_per_node
        if opts.gpus_per_node is not None
        else (num_processes if device == "cuda" else None)
    )
    if device == "cuda" and gpus is not None and gpus < num_processes:
        raise ConfigError(
            f"--gpus-per-node {gpus} is fewer than num_processes={num_processes}: "
            "one process runs per GPU; raise --gpus-per-node"
        )
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": minutes,
        "nodes": nodes,
        "ntasks_per_node": 1,  # one task per key and node; accelerate starts the processes
        "cpus_per_task": opts.cpus_per_task or max(num_processes, 1),
        "signal_delay_s": 120,
        "array_parallelism": opts.array_parallelism or 256,
    }
    optional = {
        "partition": opts.partition,
        "gpus_per_node": gpus,
        "mem": opts.mem,
        "account": opts.account,
        "qos": opts.qos,
        "constraint": opts.constraint,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if opts.exclusive:
        params["exclusive"] = True
    return params
