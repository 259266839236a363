"""The `joulebench` group and the `submit-suite` / `resume-failed` programs. No torch on
the --help path: commands import the library inside their bodies.
"""

from __future__ import annotations

import click

from joulebench.cli.base import HELP_OPTIONS, OneLineGroup
from joulebench.cli.log import configure_logging


@click.group(cls=OneLineGroup, context_settings=HELP_OPTIONS)
@click.version_option(package_name="joulebench")
def cli() -> None:
    """Run LLM-inference energy-efficiency experiment suites, locally or on Slurm.

    \b
    Example:
      joulebench make-demo-model models/tiny-llama
      joulebench submit-suite demo --cycles 2 --executor local
      joulebench status
    """
    configure_logging()


def register(group: click.Group) -> None:
    from joulebench.cli import commands
    from joulebench.cli.tracker_cmd import tracker

    for command in [*commands.ALL, tracker]:
        group.add_command(command)


register(cli)


def main() -> None:
    cli(prog_name="joulebench")


def submit_suite_main() -> None:
    from joulebench.cli.commands import submit_suite

    configure_logging()
    submit_suite(prog_name="submit-suite")


def resume_failed_main() -> None:
    from joulebench.cli.commands import resume_failed

    configure_logging()
    resume_failed(prog_name="resume-failed")
