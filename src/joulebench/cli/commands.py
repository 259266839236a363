"""The commands. Each body: build arguments, call joulebench.api, print the outcome."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from joulebench.cli.main import (
    EXIT_FAILED,
    EXIT_OK,
    OneLineCommand,
    handle_errors,
    make_paths,
    path_options,
)
from joulebench.tracker.state import FAILURE_CAUSES

CAUSES = list(FAILURE_CAUSES)  # the README's failure-cause table; tests hold all three equal
EXECUTOR = click.option("--executor", type=click.Choice(["auto", "local", "slurm"]),
                        default="auto", show_default=True,
                        help="auto: Slurm when sbatch is on PATH, else local.")


def slurm_options(func: Any) -> Any:
    """The sbatch resource flags; a --profile YAML gives site defaults, flags win."""
    flags = [
        click.option("--partition", help="Slurm partition (sbatch --partition)."),
        click.option("--time", help="Time limit per task, e.g. 02:00:00 (default 01:00:00)."),
        click.option("--gpus-per-node", type=click.IntRange(min=1),
                     help="GPUs per task (default: num_processes on CUDA configs)."),
        click.option("--cpus-per-task", type=click.IntRange(min=1),
                     help="CPUs per task (default: num_processes)."),
        click.option("--mem", help="Memory per node, e.g. 32G (sbatch --mem)."),
        click.option("--account", help="Slurm account to charge (sbatch --account)."),
        click.option("--qos", help="Quality of service (sbatch --qos)."),
        click.option("--constraint", help="Node features, e.g. a100 (sbatch --constraint)."),
        click.option("--array-parallelism", type=click.IntRange(min=1),
                     help="Max tasks of one array running at once (sbatch --array=...%K)."),
        click.option("--keys-per-task", type=click.IntRange(min=1),
                     help="Keys one array task runs in turn (default 1); consecutive keys of "
                          "one model and precision reuse its loaded workers. Size --time for "
                          "all of them."),
        click.option("--profile", type=click.Path(path_type=Path),
                     help="Site defaults: a YAML mapping with the keys above."),
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
    return options_from_mapping({k: v for k, v in cli_values.items() if v is not None},
                                CLI_SOURCE).merged_over(profile)


@click.command("submit-suite", cls=OneLineCommand)
@click.argument("suite")
@click.option("--cycles", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repeat every config this many times (for confidence intervals).")
@EXECUTOR
@click.option("--dry-run", is_flag=True,
              help="Print the expansion (and the sbatch scripts); run and write nothing.")
@click.option("--fresh", is_flag=True,
              help="Archive this suite's earlier progress and start over (default: resume).")
@slurm_options
@path_options
@handle_errors
def submit_suite(suite: str, cycles: int, executor: str, dry_run: bool, fresh: bool,
                 configs_dir: Path, tracker_dir: Path, results_dir: Path, **slurm: Any) -> None:
    """Expand SUITE (configs/suites/SUITE.yaml or a .yaml path) and run what is not done.

    \b
    Example:
      submit-suite demo --cycles 2 --executor local
      submit-suite controlled --cycles 5 --partition gpu --dry-run
      submit-suite controlled --cycles 5 --partition gpu --time 04:00:00
    """
    from joulebench import api
    from joulebench.cli.progress import SuiteProgress

    paths = make_paths(configs_dir, tracker_dir, results_dir)
    opts = build_slurm_options(slurm)
    if dry_run:
        specs = api.expand_suite(suite, cycles, paths)
        name, note = api.choose_executor(executor)
        api.check_submission(specs, name, paths, opts)  # refuse what the real run would
        for line in filter(None, (note, api.ignored_slurm_flags(name, opts))):
            click.echo(line, err=True)
        print_expansion(specs)
        if name == "slurm":
            print_scripts(api.plan_slurm(specs, opts), paths)
        click.echo("dry run: nothing was run, submitted or written")
        return
    with SuiteProgress() as progress:
        summary = api.submit_suite(suite, cycles, executor=executor, fresh=fresh, paths=paths,
                                   slurm_options=opts, on_plan=progress.plan,
                                   on_start=progress.start, on_outcome=progress.outcome)
    if summary.executor == "slurm":
        report_submission(summary)
        return
    finish(summary.outcomes, tracker_dir)


def print_scripts(plans: list[Any], paths: Any) -> None:
    from joulebench.schedulers.slurm import sbatch_script

    for number, plan in enumerate(plans, 1):
        device, processes = plan.shape
        click.echo(f"--- sbatch {number}/{len(plans)}: {len(plan.tasks)} tasks "
                   f"({device}, {processes} processes)")
        click.echo(sbatch_script(plan, paths.logs_dir / "submitit"))


def report_submission(summary: Any) -> None:
    arrays = sorted({job.split("_")[0] for job in summary.submitted.values()})
    tasks = len(set(summary.submitted.values()))
    what = f"{tasks} tasks" if tasks == len(summary.submitted) else \
        f"{len(summary.submitted)} keys as {tasks} tasks"
    click.echo(f"submitted {what} in {len(arrays)} sbatch call"
               f"{'s' if len(arrays) != 1 else ''} (jobs {', '.join(arrays) or '-'}); watch "
               f"with: joulebench status {summary.suite} --watch")


def print_expansion(specs: list[Any]) -> None:
    seed = specs[0].order_seed if specs else None
    order = f"each cycle in a random order (order_seed {seed})" if seed is not None \
        else "file order"
    click.echo(f"{len(specs)} experiments, {order}:")
    for spec in specs:
        cfg = spec.config
        click.echo(f"  {spec.key}  hash={spec.config_hash}  device={cfg.device} "
                   f"processes={cfg.num_processes} batch={cfg.batch_size} "
                   f"precision={cfg.precision} decoder={cfg.decoder.mode}")


def finish(outcomes: list[Any], tracker_dir: Path) -> None:
    failed = [o for o in outcomes if o.status == "failed"]
    done = sum(o.status == "done" for o in outcomes)
    click.echo(f"{done} run, {len(failed)} failed; progress in {tracker_dir}/")
    for outcome in failed:
        click.echo(f"  failed [{outcome.cause}] {outcome.key}: {outcome.message}", err=True)
    if failed:
        click.echo("Rerun them with: resume-failed SUITE", err=True)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@click.command("status", cls=OneLineCommand)
@click.argument("suite", required=False)
@click.option("--watch", is_flag=True, help="Refresh until interrupted (Ctrl-C).")
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds between refreshes with --watch (backs off when nothing changes).")
@click.option("--no-sacct", is_flag=True, help="Use the tracker alone; do not call sacct.")
@path_options
@handle_errors
def status(suite: str | None, watch: bool, interval: float, no_sacct: bool, configs_dir: Path,
           tracker_dir: Path, results_dir: Path) -> None:
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
@click.option("--cause", "causes", multiple=True, type=click.Choice(CAUSES),
              help="Only keys whose last attempt failed for this cause (repeatable).")
@click.option("--dry-run", is_flag=True, help="List the keys; run nothing.")
@EXECUTOR
@slurm_options
@path_options
@handle_errors
def resume_failed(suite: str, causes: tuple[str, ...], dry_run: bool, executor: str,
                  configs_dir: Path, tracker_dir: Path, results_dir: Path, **slurm: Any) -> None:
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
        summary = api.resume_failed(suite, causes=wanted, dry_run=True, executor=executor,
                                    paths=paths, slurm_options=opts)
        for note in summary.notes:
            click.echo(note, err=True)
        click.echo(f"{len(summary.to_run)} keys would be resumed:")
        for spec in summary.to_run:
            click.echo(f"  {spec.key}")
        return
    with SuiteProgress() as progress:
        summary = api.resume_failed(suite, causes=wanted, executor=executor, paths=paths,
                                    slurm_options=opts, on_start=progress.start,
                                    on_outcome=progress.outcome, on_keys=progress.plan_keys)
    for note in summary.notes:
        click.echo(note, err=True)
    if not summary.to_run:
        click.echo("nothing to resume")
    if summary.executor == "slurm":
        report_submission(summary)
        return
    finish(summary.outcomes, tracker_dir)


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

    outcome = api.run_config(config, make_paths(configs_dir, tracker_dir, results_dir))
    if outcome.status == "done":
        click.echo(f"experiment {outcome.experiment_id} done: results in "
                   f"{results_dir}/raw_results/{outcome.experiment_id}/")
    finish([outcome], tracker_dir)


@click.command("make-demo-model", cls=OneLineCommand)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--size", type=click.Choice(["tiny", "1b"]), default="tiny", show_default=True,
              help="tiny: 2 layers, seconds to build; 1b: a 0.97B-parameter Llama "
                   "(3.7 GB) for GPU runs")
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


@click.command("show", cls=OneLineCommand)
@click.argument("experiment_id")
@path_options
@handle_errors
def show(experiment_id: str, configs_dir: Path, tracker_dir: Path, results_dir: Path) -> None:
    """Print one experiment's key figures and provenance.

    \b
    Example:
      joulebench show 0042
    """
    from joulebench import api
    from joulebench.cli.progress import render_experiment

    render_experiment(api.show_experiment(experiment_id,
                                          make_paths(configs_dir, tracker_dir, results_dir)))


@click.command("report", cls=OneLineCommand)
@click.argument("suite")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Output folder (default: reports/SUITE).")
@path_options
@handle_errors
def report(suite: str, out_dir: Path | None, configs_dir: Path, tracker_dir: Path,
           results_dir: Path) -> None:
    """Mean, std and 95% CI per config across cycles, plots, and one HTML page.

    Results with quality flags are left out of the statistics and listed apart.

    \b
    Example:
      joulebench report demo
      joulebench report controlled --out paper/figures
    """
    from joulebench import api

    files = api.report_suite(suite, out_dir, make_paths(configs_dir, tracker_dir, results_dir))
    flagged = sum(len(s.flagged) for s in files.summaries)
    click.echo(f"{len(files.summaries)} configs summarised ({flagged} flagged results kept "
               f"apart); {len(files.plots)} plots")
    for path in (files.summary_csv, files.summary_md, files.html):
        click.echo(f"  {path}")


ALL = [submit_suite, status, resume_failed, run, make_demo_model, show, report]
