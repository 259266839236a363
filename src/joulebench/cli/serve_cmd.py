"""`joulebench serve`: the read-only dashboard (the web stack is imported only here, when
the command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from joulebench.cli.base import (
    OneLineCommand,
    handle_errors,
    make_paths,
    path_options,
)


@click.command("serve", cls=OneLineCommand)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs the token.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--token",
    envvar="JOULEBENCH_TOKEN",
    help="Access token: letters, digits, '_' and '-', 8 or more (default: a new "
    "random one per start). JOULEBENCH_TOKEN=T in the environment keeps it "
    "out of `ps`.",
)
@click.option(
    "--no-token",
    is_flag=True,
    help="No token (loopback only): anyone on this machine can read the results.",
)
@click.option("--no-sacct", is_flag=True, help="Use the tracker alone; do not call sacct.")
@path_options
@handle_errors
def serve(
    host: str,
    port: int,
    token: str | None,
    no_token: bool,
    no_sacct: bool,
    configs_dir: Path,
    tracker_dir: Path,
    results_dir: Path,
) -> None:
    """Live dashboard, JSON API and Prometheus /metrics for the tracker and results.

    Read-only. Prints one URL to open (with its token) and runs until Ctrl-C. From a
    laptop: ssh -L 8765:127.0.0.1:8765 login-node, then open the URL.

    \b
    Example:
      joulebench serve
      joulebench serve --port 9000 --results-dir /scratch/me/results
    """
    from joulebench.errors import ConfigError
    from joulebench.serve.server import ServeOptions, check_bind, new_token, url

    from_env = click.get_current_context().get_parameter_source("token")
    if no_token and from_env == click.core.ParameterSource.ENVIRONMENT:
        token = None  # the flag typed now wins over a token exported for other runs
    if no_token and token:
        raise ConfigError("--token and --no-token: give one of them")
    chosen = None if no_token else (token or new_token())
    paths = make_paths(configs_dir, tracker_dir, results_dir)
    paths.check(write=False)
    check_bind(host, port, chosen)
    options = ServeOptions(host, port, chosen, use_sacct=not no_sacct)
    if chosen is None:
        click.echo(
            "Warning: --no-token: every user of this machine can read these results", err=True
        )
    click.echo(f"joulebench dashboard (read-only), Ctrl-C to stop:\n  {url(options)}")
    from joulebench.serve.server import serve as run_server

    run_server(paths, options)
    click.echo("dashboard stopped", err=True)
