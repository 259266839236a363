"""The commands that read what ran: `show` and `report`."""

from __future__ import annotations

from pathlib import Path

import click

from joulebench.cli.base import (
    OneLineCommand,
    handle_errors,
    make_paths,
    path_options,
)
from joulebench.wording import plural


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

    render_experiment(
        api.show_experiment(experiment_id, make_paths(configs_dir, tracker_dir, results_dir))
    )


@click.command("report", cls=OneLineCommand)
@click.argument("suite")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Output folder (default: reports/SUITE).",
)
@path_options
@handle_errors
def report(
    suite: str, out_dir: Path | None, configs_dir: Path, tracker_dir: Path, results_dir: Path
) -> None:
    """Mean, std and 95% CI per config across cycles, plots, and one HTML page.

    Tabulates and plots every field the suite varies. Pools only each key's current run
    (runs archived by --fresh are listed apart). Results whose quality flags exclude them
    (the runs `status` counts as flagged) are left out of the statistics and listed apart;
    configs whose cycles disagree several-fold are flagged unstable_across_cycles.

    \b
    Example:
      joulebench report demo
      joulebench report controlled --out paper/figures
    """
    from joulebench import api

    files = api.report_suite(suite, out_dir, make_paths(configs_dir, tracker_dir, results_dir))
    flagged = sum(len(s.flagged) for s in files.summaries)
    unstable = sum(bool(s.config_flags) for s in files.summaries)
    varied = ", ".join(v.path for v in files.variables) or "none"
    click.echo(
        f"{plural(len(files.summaries), 'config')} summarised "
        f"({plural(flagged, 'flagged result')} kept apart, "
        f"{plural(files.archived_runs, 'archived run')} not pooled, "
        f"{plural(unstable, 'config')} unstable across cycles); varied: {varied}; "
        f"{plural(len(files.plots), 'plot')} (PNG + SVG)"
    )
    for path in (files.summary_csv, files.runs_csv, files.summary_md, files.html):
        click.echo(f"  {path}")
    if files.timelines:
        click.echo(
            f"  {files.timelines[0].parent}/ ({plural(len(files.timelines), 'power timeline')})"
        )
