"""How the library's log records show on the command line.

The library only logs (``logging.getLogger(__name__)``); this decides that a warning
reaches the user as one ``warning: ...`` line on stderr, beside the command's own
output, and that debug and info records stay silent.
"""

from __future__ import annotations

import logging

import click


class _OneLineHandler(logging.Handler):
    """``warning: <message>``, written to the stderr of the moment (click's test runner
    swaps it), with no logger name, time or traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            first = (record.getMessage().splitlines() or [""])[0]
            click.echo(f"{record.levelname.lower()}: {first}", err=True)
        except Exception:
            self.handleError(record)


def configure_logging(level: int = logging.WARNING) -> None:
    """Show the library's records at ``level`` and above; safe to call more than once."""
    library = logging.getLogger("joulebench")
    if not any(isinstance(h, _OneLineHandler) for h in library.handlers):
        library.addHandler(_OneLineHandler(level))
