"""The commands. Each body: build arguments, call joulebench.api, print the outcome."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from joulebench.cli.main import EXIT_FAILED, EXIT_OK, handle_errors, make_paths, path_options

CAUSES = ["oom", "preempted", "timeout", "node_fail", "cancelled", "code_error", "interrupted"]


@click.command("submit-suite")
@click.argument("suite")
@click.option("--cycles", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repeat every config this many times (for confidence intervals).")
@click.option("--executor", type=click.Choice(["auto", "local"]), default="auto",
              show_default=True, help="auto: Slurm when sbatch is on PATH, else local.")
@click.option("--dry-run", is_flag=True, help="Print the expansion; run and write nothing.")
@click.option("--fresh", is_flag=True,
              help="Archive this suite's earlier progress and start over (default: resume).")
@path_options
@handle_errors
def submit_suite(suite: str, cycles: int, executor: str, dry_run: bool, fresh: bool,
                 configs_dir: Path, tracker_dir: Path, results_dir: Path) -> None:
    """Expand SUITE (configs/suites/SUITE.yaml or a .yaml path) and run what is not done.

    \b
    Example:
      submit-suite demo --cycles 2 --executor local
      submit-suite controlled --cycles 5 --dry-run
    """
    from joulebench import api
    from joulebench.cli.progress import SuiteProgress

    paths = make_paths(configs_dir, tracker_dir, results_dir)
    if dry_run:
        specs = api.expand_suite(suite, cycles, paths)
        print_expansion(specs)
        return
    with SuiteProgress() as progress:
        summary = api.submit_suite(suite, cycles, executor=executor, fresh=fresh, paths=paths,
                                   on_plan=progress.plan, on_start=progress.start,
                                   on_outcome=progress.outcome)
    finish(summary.outcomes, tracker_dir)


def print_expansion(specs: list[Any]) -> None:
    click.echo(f"{len(specs)} experiments:")
    for spec in specs:
        cfg = spec.config
        click.echo(f"  {spec.key}  hash={spec.config_hash}  device={cfg.device} "
                   f"processes={cfg.num_processes} batch={cfg.batch_size} "
                   f"precision={cfg.precision} decoder={cfg.decoder.mode}")
    click.echo("dry run: nothing was run or written")


def finish(outcomes: list[Any], tracker_dir: Path) -> None:
    failed = [o for o in outcomes if o.status == "failed"]
    done = sum(o.status == "done" for o in outcomes)
    click.echo(f"{done} run, {len(failed)} failed; progress in {tracker_dir}/")
    for outcome in failed:
        click.echo(f"  failed [{outcome.cause}] {outcome.key}: {outcome.message}", err=True)
    if failed:
        click.echo("Rerun them with: resume-failed SUITE", err=True)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@click.command("status")
@click.argument("suite", required=False)
@click.option("--watch", is_flag=True, help="Refresh until interrupted (Ctrl-C).")
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds between refreshes with --watch (backs off when nothing changes).")
@path_options
@handle_errors
def status(suite: str | None, watch: bool, interval: float, configs_dir: Path,
           tracker_dir: Path, results_dir: Path) -> None:
    """Per suite and cycle: done, running, pending and failed (by cause) keys.

    \b
    Example:
      joulebench status
      joulebench status demo --watch
    """
    from joulebench import api
    from joulebench.cli.progress import render_status

    paths = make_paths(configs_dir, tracker_dir, results_dir)
    previous, wait = None, interval
    while True:
        rows = api.status_rows(suite, paths)
        render_status(rows, tracker_dir)
        if not watch:
            return
        wait = interval if rows != previous else min(wait * 2, 60.0)
        previous = rows
        time.sleep(wait)


@click.command("resume-failed")
@click.argument("suite")
@click.option("--cause", "causes", multiple=True, type=click.Choice(CAUSES),
              help="Only keys whose last attempt failed for this cause (repeatable).")
@click.option("--dry-run", is_flag=True, help="List the keys; run nothing.")
@path_options
@handle_errors
def resume_failed(suite: str, causes: tuple[str, ...], dry_run: bool, configs_dir: Path,
                  tracker_dir: Path, results_dir: Path) -> None:
    """Rerun the keys of SUITE that failed or were left running by a dead process.

    Keys keep their experiment IDs and resume from their checkpointed batches.

    \b
    Example:
      resume-failed demo --dry-run
      resume-failed controlled --cause oom
    """
    from joulebench import api
    from joulebench.cli.progress import SuiteProgress

    paths = make_paths(configs_dir, tracker_dir, results_dir)
    if dry_run:
        keys, _ = api.resume_failed(suite, causes=set(causes) or None, dry_run=True, paths=paths)
        click.echo(f"{len(keys)} keys would be resumed:")
        for key in keys:
            click.echo(f"  {key}")
        return
    with SuiteProgress() as progress:
        keys, outcomes = api.resume_failed(suite, causes=set(causes) or None, paths=paths,
                                           on_start=progress.start, on_outcome=progress.outcome,
                                           on_keys=progress.plan_keys)
    if not keys:
        click.echo("nothing to resume")
    finish(outcomes, tracker_dir)


@click.command("run")
@click.argument("config", type=click.Path(path_type=Path))
@path_options
@handle_errors
def run(config: Path, configs_dir: Path, tracker_dir: Path, results_dir: Path) -> None:
    """Run one experiment from one config YAML (the original single-experiment entry).

    \b
    Example:
      joulebench run my-experiment.yaml
    """
    from joulebench import api

    outcome = api.run_config(config, make_paths(configs_dir, tracker_dir, results_dir))
    if outcome.status == "done":
        click.echo(f"experiment {outcome.experiment_id} done: results in "
                   f"{results_dir}/raw_results/{outcome.experiment_id}/")
    finish([outcome], tracker_dir)


@click.command("make-demo-model")
@click.argument("directory", type=click.Path(path_type=Path))
@handle_errors
def make_demo_model(directory: Path) -> None:
    """Build a tiny random Llama and tokenizer offline into DIRECTORY.

    \b
    Example:
      joulebench make-demo-model models/tiny-llama
    """
    from joulebench.runner.demo_model import build_demo_model

    if (directory / "config.json").exists():
        click.echo(f"{directory} already holds a model; keeping it")
        return
    build_demo_model(directory)
    click.echo(f"tiny demo model written to {directory}")


ALL = [submit_suite, status, resume_failed, run, make_demo_model]
