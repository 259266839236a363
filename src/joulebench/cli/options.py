"""Option bundles shared by submit-suite and resume-failed: the executor and the sbatch
resource flags (with a --profile of site defaults)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from joulebench.schedulers.executors import EXECUTOR_CHOICES

EXECUTOR = click.option(
    "--executor",
    type=click.Choice(EXECUTOR_CHOICES),
    default="auto",
    show_default=True,
    help="auto: Slurm when sbatch is on PATH, else local.",
)


MAX_PARALLEL = click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local executor: run up to N experiments at once, each on its own devices "
    "(GPUs sized by num_processes, or an equal share of the CPU cores).",
)


def slurm_options(func: Any) -> Any:
    """The sbatch resource flags; a --profile YAML gives site defaults, flags win."""
    flags = [
        click.option("--partition", help="Slurm partition (sbatch --partition)."),
        click.option("--time", help="Time limit per task, e.g. 02:00:00 (default 01:00:00)."),
        click.option(
            "--gpus-per-node",
            type=click.IntRange(min=1),
            help="GPUs per task (default: num_processes on CUDA configs).",
        ),
        click.option(
            "--cpus-per-task",
            type=click.IntRange(min=1),
            help="CPUs per task (default: num_processes).",
        ),
        click.option("--mem", help="Memory per node, e.g. 32G (sbatch --mem)."),
        click.option("--account", help="Slurm account to charge (sbatch --account)."),
        click.option("--qos", help="Quality of service (sbatch --qos)."),
        click.option("--constraint", help="Node features, e.g. a100 (sbatch --constraint)."),
        click.option(
            "--array-parallelism",
            type=click.IntRange(min=1),
            help="Max tasks of one array running at once (sbatch --array=...%K).",
        ),
        click.option(
            "--keys-per-task",
            type=click.IntRange(min=1),
            help="Keys one array task runs in turn (default 1); consecutive keys of "
            "one model and precision reuse its loaded workers. Size --time for "
            "all of them.",
        ),
        click.option(
            "--exclusive",
            is_flag=True,
            default=None,
            help="Whole nodes per task (sbatch --exclusive): host energy (RAPL, "
            "codecarbon CPU/RAM) is then yours alone; costs the node's idle cores.",
        ),
        click.option(
            "--profile",
            type=click.Path(path_type=Path),
            help="Site defaults: a YAML mapping with the keys above.",
        ),
    ]
    for flag in reversed(flags):
        func = flag(func)
    return func


def build_slurm_options(kwargs: dict[str, Any]) -> Any:
    from joulebench.schedulers.slurm_options import (
        CLI_SOURCE,
        PROFILE_KEYS,
        load_profile,
        options_from_mapping,
    )

    cli_values = {k: kwargs.pop(k) for k in PROFILE_KEYS}
    profile = load_profile(kwargs.pop("profile"))
    return options_from_mapping(
        {k: v for k, v in cli_values.items() if v is not None}, CLI_SOURCE
    ).merged_over(profile)
