"""`joulebench tracker check|repair`: find and mend a damaged progress tracker."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from joulebench.cli.base import (
    EXIT_OK,
    EXIT_USER,
    OneLineCommand,
    OneLineGroup,
    handle_errors,
)
from joulebench.wording import plural

TRACKER_DIR = click.option(
    "--tracker-dir",
    type=click.Path(path_type=Path),
    default=Path("persistent_progress_trackers"),
    show_default=True,
    help="Progress tracker folder.",
)


@click.group("tracker", cls=OneLineGroup)
def tracker() -> None:
    """Check or repair the progress tracker folder."""


@tracker.command("check", cls=OneLineCommand)
@TRACKER_DIR
@handle_errors
def check(tracker_dir: Path) -> None:
    """Report damaged tracker files (reads only; exit 2 when something is wrong)."""
    from joulebench.tracker.repair import check as check_folder

    problems = check_folder(tracker_dir)
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        click.echo(f"run `joulebench tracker repair --tracker-dir {tracker_dir}` to rebuild")
        sys.exit(EXIT_USER)
    click.echo(f"{tracker_dir}: healthy")
    sys.exit(EXIT_OK)


@tracker.command("repair", cls=OneLineCommand)
@TRACKER_DIR
@click.option(
    "--results-dir",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Results folder whose experiment IDs the counter must stay above.",
)
@handle_errors
def repair(tracker_dir: Path, results_dir: Path) -> None:
    """Rebuild the state from the snapshot, backups, seed files and journal.

    Damaged files are copied to damaged/<time>/ first; nothing is deleted.
    """
    from joulebench.tracker.repair import repair as repair_folder

    report = repair_folder(tracker_dir, results_dir)
    for problem in report.problems:
        click.echo(f"found: {problem}")
    click.echo(f"rebuilt from: {', '.join(report.sources) or 'nothing (empty tracker)'}")
    click.echo(
        f"{plural(report.keys, 'key')}, {report.done} done, "
        f"next ID {report.last_id + 1:04d}; "
        f"damaged files kept in {report.moved_to}"
    )
