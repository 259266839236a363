"""The commands. Each body: build arguments, call joulebench.api, print the outcome."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from joulebench.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    OneLineCommand,
    handle_errors,
    make_paths,
    path_options,
)
from joulebench.cli.options import EXECUTOR, MAX_PARALLEL, build_slurm_options, slurm_options
from joulebench.cli.results_cmd import report, show
from joulebench.cli.serve_cmd import serve
from joulebench.schedulers.executors import SLURM
from joulebench.tracker.state import CONFIG_ERROR, FAILURE_CAUSES
from joulebench.wording import plural

CAUSES = list(FAILURE_CAUSES)  # the README's failure-cause table; tests hold all three equal


@click.command("submit-suite", cls=OneLineCommand)
@click.argument("suite")
@click.option(
    "--cycles",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Repeat every config this many times (for confidence intervals).",
)
@EXECUTOR
@MAX_PARALLEL
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the expansion (and the sbatch scripts); run and write nothing.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Archive this suite's earlier progress and start over (default: resume).",
)
@slurm_options
@path_options
@handle_errors
def submit_suite(
    suite: str,
    cycles: int,
    executor: str,
    max_parallel: int,
    dry_run: bool,
    fresh: bool,
    configs_dir: Path,
    tracker_dir: Path,
    results_dir: Path,
    **slurm: Any,
) -> None:
    """Expand SUITE (configs/suites/SUITE.yaml or a .yaml path) and run what is not done.

    \b
    Example:
      submit-suite demo --cycles 2 --executor local
      submit-suite demo --executor local --max-parallel 2
      submit-suite controlled --cycles 5 --partition gpu --dry-run
      submit-suite controlled --cycles 5 --partition gpu --time 04:00:00
    """
    from joulebench import api
    from joulebench.cli.progress import SuiteProgress

    paths = make_paths(configs_dir, tracker_dir, results_dir)
    opts = build_slurm_options(slurm)
    if dry_run:
        # Every check of the real submission, so a dry run that passes is one that would.
        checked = api.check_suite(
            suite,
            cycles,
            executor=executor,
            paths=paths,
            slurm_options=opts,
            max_parallel=max_parallel,
        )
        print_notes(checked.notes)
        print_expansion(checked.specs)
        if checked.executor == SLURM:
            print_scripts(api.plan_slurm(checked.specs, opts), paths)
        click.echo("dry run: every check passed; nothing was run, submitted or written")
        return
    with SuiteProgress() as progress:
        summary = api.submit_suite(
            suite,
            cycles,
            executor=executor,
            fresh=fresh,
            paths=paths,
            slurm_options=opts,
            on_plan=progress.plan,
            on_start=progress.start,
            on_outcome=progress.outcome,
            max_parallel=max_parallel,
        )
    if summary.executor == SLURM:
        report_submission(summary)
        return
    finish(summary.outcomes, tracker_dir, summary.suite)


def print_notes(notes: list[str]) -> None:
    for note in notes:
        click.echo(note, err=True)


def print_scripts(plans: list[Any], paths: Any) -> None:
    from joulebench.schedulers.slurm import sbatch_script
    from joulebench.schedulers.slurm_nodes import launch_line

    for number, plan in enumerate(plans, 1):
        device, processes, nodes = plan.shape
        where = f", {plural(nodes, 'node')}" if nodes > 1 else ""
        click.echo(
            f"--- sbatch {number}/{len(plans)}: {plural(len(plan.tasks), 'task')} "
            f"({device}, {plural(processes, 'process', 'processes')}{where})"
        )
        click.echo(sbatch_script(plan, paths.logs_dir / "submitit"))
        if nodes > 1:
            line = launch_line(nodes, processes, device)
            click.echo(f"# node 0 of each task then runs, per key:\n{line}")


def report_submission(summary: Any) -> None:
    arrays = sorted({job.split("_")[0] for job in summary.submitted.values()})
    tasks = len(set(summary.submitted.values()))
    what = (
        plural(tasks, "task")
        if tasks == len(summary.submitted)
        else f"{plural(len(summary.submitted), 'key')} as {plural(tasks, 'task')}"
    )
    click.echo(
        f"submitted {what} in {len(arrays)} sbatch call"
        f"{'s' if len(arrays) != 1 else ''} (jobs {', '.join(arrays) or '-'}); watch "
        f"with: joulebench status {summary.suite} --watch"
    )


def print_expansion(specs: list[Any]) -> None:
    seed = specs[0].order_seed if specs else None
    order = (
        f"each cycle in a random order (order_seed {seed})" if seed is not None else "file order"
    )
    click.echo(f"{plural(len(specs), 'experiment')}, {order}:")
    for spec in specs:
        cfg, sc = spec.config, spec.config.scenario
        load = (
            f"serving {sc.arrival} rate={sc.request_rate}/s concurrency={sc.max_concurrency} "
            f"requests={sc.num_requests}"
            if sc.serving
            else f"batch={cfg.batch_size}"
        )
        click.echo(
            f"  {spec.key}  hash={spec.config_hash}  device={cfg.device} "
            f"processes={cfg.num_processes} parallelism={cfg.parallelism} "
            f"world_size={cfg.world_size} {load} "
            f"precision={cfg.precision} decoder={cfg.decoder.mode}"
        )


def finish(outcomes: list[Any], tracker_dir: Path, suite: str, rerun: str | None = None) -> None:
    """Print the closing lines and exit; ``rerun`` is the command that runs a fixed config
    again (default: submit-suite SUITE)."""
    failed = [o for o in outcomes if o.status == "failed"]
    done = sum(o.status == "done" for o in outcomes)
    click.echo(f"{done} run, {len(failed)} failed; progress in {tracker_dir}/")
    for outcome in failed:
        click.echo(f"  failed [{outcome.cause}] {outcome.key}: {outcome.message}", err=True)
    # A refused config fails the same way on every rerun: only a fix helps, so it gets
    # no resume hint; the other causes (a crash, a signal, OOM) may pass when rerun.
    refused = [o for o in failed if o.cause == CONFIG_ERROR]
    retryable = len(failed) - len(refused)
    if refused:
        click.echo(
            f"Fix the config named above, then rerun: {rerun or f'submit-suite {suite}'}", err=True
        )
    if retryable:
        click.echo(
            f"Rerun {'it' if retryable == 1 else 'them'} with: resume-failed {suite}", err=True
        )
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@click.command("status", cls=OneLineCommand)
@click.argument("suite", required=False)
@click.option("--watch", is_flag=True, help="Refresh until interrupted (Ctrl-C).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds between refreshes with --watch (backs off when nothing changes).",
)
@click.option("--no-sacct", is_flag=True, help="Use the tracker alone; do not call sacct.")
@path_options
@handle_errors
def status(
    suite: str | None,
    watch: bool,
    interval: float,
    no_sacct: bool,
    configs_dir: Path,
    tracker_dir: Path,
    results_dir: Path,
) -> None:
    """Per suite and cycle: done, running, queued, requeued, pending, stale, failed by cause.

    Keys submitted to Slurm are checked with one batched sacct call per refresh.

    \b
    Example:
      joulebench status
      joulebench status demo --watch
    """
    from joulebench import api
    from joulebench.cli.progress import print_status, watch_status

    paths = make_paths(configs_dir, tracker_dir, results_dir)

    def refresh() -> Any:
        return api.status_report(suite, paths, use_sacct=not no_sacct)

    if watch:
        watch_status(refresh, interval, tracker_dir)
    else:
        print_status(refresh(), tracker_dir)


@click.command("resume-failed", cls=OneLineCommand)
@click.argument("suite")
@click.option(
    "--cause",
    "causes",
    multiple=True,
    type=click.Choice(CAUSES),
    help="Only keys whose last attempt failed for this cause (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="List the keys; run nothing.")
@EXECUTOR
@MAX_PARALLEL
@slurm_options
@path_options
@handle_errors
def resume_failed(
    suite: str,
    causes: tuple[str, ...],
    dry_run: bool,
    executor: str,
    max_parallel: int,
    configs_dir: Path,
    tracker_dir: Path,
    results_dir: Path,
    **slurm: Any,
) -> None:
    """Rerun the keys of SUITE that failed, were preempted or cancelled, or went stale.

    Keys keep their experiment IDs and resume from their checkpointed batches. Keys that
    are queued or running right now are never resubmitted.

    \b
    Example:
      resume-failed demo --dry-run
      resume-failed controlled --cause preempted --cause node_fail --partition gpu
    """
    from joulebench import api
    from joulebench.cli.progress import SuiteProgress

    paths = make_paths(configs_dir, tracker_dir, results_dir)
    opts = build_slurm_options(slurm)
    wanted = set(causes) or None
    if dry_run:
        summary = api.resume_failed(
            suite,
            causes=wanted,
            dry_run=True,
            executor=executor,
            paths=paths,
            slurm_options=opts,
            max_parallel=max_parallel,
        )
        print_notes(summary.notes)
        click.echo(
            f"{plural(len(summary.to_run), 'key')} would be resumed{':' if summary.to_run else ''}"
        )
        for spec in summary.to_run:
            click.echo(f"  {spec.key}")
        return
    with SuiteProgress() as progress:
        summary = api.resume_failed(
            suite,
            causes=wanted,
            executor=executor,
            paths=paths,
            slurm_options=opts,
            on_start=progress.start,
            on_outcome=progress.outcome,
            on_keys=progress.plan_keys,
            max_parallel=max_parallel,
        )
    print_notes(summary.notes)
    if not summary.to_run:
        click.echo("nothing to resume")
    if summary.executor == SLURM:
        report_submission(summary)
        return
    finish(summary.outcomes, tracker_dir, suite)


@click.command("run", cls=OneLineCommand)
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

    def started(spec: Any) -> None:
        again = " (each run of the same file adds a cycle)" if spec.cycle > 1 else ""
        click.echo(f"running {spec.key}: cycle {spec.cycle} of {config}{again}", err=True)

    outcome = api.run_config(
        config, make_paths(configs_dir, tracker_dir, results_dir), on_start=started
    )
    if outcome.status == "done":
        click.echo(
            f"experiment {outcome.experiment_id} done: results in "
            f"{results_dir}/raw_results/{outcome.experiment_id}/"
        )
    finish([outcome], tracker_dir, "single", rerun=f"joulebench run {config}")


@click.command("make-demo-model", cls=OneLineCommand)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--size",
    type=click.Choice(["tiny", "1b"]),
    default="tiny",
    show_default=True,
    help="tiny: 2 layers, seconds to build; 1b: a 0.97B-parameter Llama (3.7 GB) for GPU runs",
)
@handle_errors
def make_demo_model(directory: Path, size: str) -> None:
    """Build a random Llama and tokenizer offline into DIRECTORY.

    \b
    Example:
      joulebench make-demo-model models/tiny-llama
      joulebench make-demo-model --size 1b models/bench-llama-1b
    """
    from joulebench.runner.demo_model import SIZES, build_demo_model

    if (directory / "config.json").exists():
        click.echo(f"{directory} already holds a model; keeping it")
        return
    build_demo_model(directory, **SIZES[size])
    click.echo(f"{size} demo model written to {directory}")


ALL = [submit_suite, status, resume_failed, run, make_demo_model, show, report, serve]
