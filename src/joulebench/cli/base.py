"""What every command shares: one-line usage errors, -h, the error-to-exit-code wrapper
and the folder options. Kept apart from main.py (which registers the commands), so any
command module imports cold without an import circle.

Exit codes: 0 done, 1 some experiments failed, 2 user error, 3 internal error,
130 interrupted (Ctrl-C), 141 output pipe closed.
"""

from __future__ import annotations

import errno
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 128 + SIGINT, 128 + SIGPIPE, as a shell shows


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# Storage trouble the user can fix (full disk, quota, read-only mount, permissions):
# one line and exit 2, not an "internal error, please report it".
_FULL = {errno.ENOSPC, errno.EDQUOT}
_NO_WRITE = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_message(exc: OSError) -> str | None:
    """The one-line message for an OSError a user can fix, else None."""
    where = exc.filename or "a file"
    if exc.errno in _FULL:
        folder = Path(exc.filename).parent if exc.filename else Path(".")
        return (
            f"{where}: {exc.strerror}; free space (df -h {folder}) or raise your quota, "
            "then rerun the same command: saved progress and finished results are kept"
        )
    if exc.errno in _NO_WRITE:
        return (
            f"{where}: {exc.strerror}; make it writable, or pass another --results-dir "
            "or --tracker-dir"
        )
    return None


class _OneLineUsageError(click.UsageError):
    """Click's usage errors print three lines; ours say the problem and the help in one."""

    def show(self, file: Any = None) -> None:
        hint = f"; see '{self.ctx.command_path} --help'" if self.ctx else ""
        click.echo(f"Error: {self.format_message().rstrip('.')}{hint}", err=True, file=file)


def _one_line(error: click.UsageError) -> _OneLineUsageError:
    out = _OneLineUsageError(error.format_message(), error.ctx)
    out.exit_code = error.exit_code
    return out


class _OneLineUsage(click.Command):
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None


HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


class OneLineCommand(_OneLineUsage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # -h as well as --help, also when a command runs as its own program (submit-suite).
        kwargs["context_settings"] = {**HELP_OPTIONS, **(kwargs.get("context_settings") or {})}
        super().__init__(*args, **kwargs)


class OneLineGroup(_OneLineUsage, click.Group):
    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc) from None


def handle_errors(func: F) -> F:
    """Library errors become one line and exit 2; anything else is a bug (exit 3)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from joulebench.errors import JoulebenchError

        try:
            return func(*args, **kwargs)
        except JoulebenchError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_USER)
        except KeyboardInterrupt:
            click.echo(
                "Interrupted: finished batches are checkpointed; rerun the same command to resume.",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`... | head -1`): stop quietly, as Unix tools do.
            _silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:
            message = storage_message(exc) if isinstance(exc, OSError) else None
            if message is not None:
                click.echo(f"Error: {message}", err=True)
                sys.exit(EXIT_USER)
            log = Path("logs") / "joulebench-internal-error.log"
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(traceback.format_exc(), encoding="utf-8")
                where = f"traceback in {log}"
            except OSError:
                where = "traceback not saved"
            first = (str(exc).splitlines() or [""])[0]
            click.echo(
                f"Internal error: {type(exc).__name__}: {first} ({where}); please report it",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def path_options(func: F) -> F:
    for decorator in reversed(
        [
            click.option(
                "--configs-dir",
                type=click.Path(path_type=Path),
                default=Path("configs"),
                show_default=True,
                help="Folder holding base.yaml, models.yaml, suites/.",
            ),
            click.option(
                "--tracker-dir",
                type=click.Path(path_type=Path),
                default=Path("persistent_progress_trackers"),
                show_default=True,
                help="Progress tracker folder.",
            ),
            click.option(
                "--results-dir",
                type=click.Path(path_type=Path),
                default=Path("results"),
                show_default=True,
                help="Where raw_results/ and the CSV go.",
            ),
        ]
    ):
        func = decorator(func)
    return func


def make_paths(configs_dir: Path, tracker_dir: Path, results_dir: Path) -> Any:
    from joulebench.paths import Paths

    return Paths(configs_dir, tracker_dir, results_dir)
