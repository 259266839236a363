"""One exception hierarchy for the whole package.

Every message is a single line that names what is wrong (file, field) and how to fix
it: the CLI prints ``Error: <message>`` and exits 2 for these, so a user never sees a
traceback for a mistake of theirs.
"""

from __future__ import annotations


class JoulebenchError(Exception):
    """Base; str(e) is a one-line message naming what and how to fix."""


class ConfigError(JoulebenchError):
    """A suite, model list or experiment config is invalid."""


class TrackerError(JoulebenchError):
    """The progress tracker cannot be read or updated."""


class RunnerError(JoulebenchError):
    """One experiment could not run (bad model path, refused setting, worker crash)."""


class MeasureError(JoulebenchError):
    """An energy meter or sensor is unavailable or misbehaved."""


class SchedulerError(JoulebenchError):
    """Submitting or monitoring jobs failed."""
