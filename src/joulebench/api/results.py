"""Reading what ran: one experiment's files, the report, every result as a DataFrame."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joulebench.api.common import check_suite_name
from joulebench.errors import ConfigError
from joulebench.paths import Paths
from joulebench.results.layout import raw_dir, read_experiment, result_csvs
from joulebench.suite import resolve_suite_path
from joulebench.suite.spec import split_key
from joulebench.tracker import (
    RUNNING,
    ProgressTracker,
    TrackerState,
    format_id,
)
from joulebench.tracker.layout import archives_of

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def show_experiment(experiment_id: str, paths: Paths = Paths()) -> dict[str, Any]:
    """One experiment's setup, metrics and energy, read from its result files."""
    experiment_id = _result_id(experiment_id, paths.results_dir)
    try:
        return read_experiment(paths.results_dir, experiment_id)
    except ConfigError:
        running = _running(experiment_id, paths.tracker_dir)
        if running is None:
            raise
        return {"running": running}


def _running(experiment_id: str, tracker_dir: Path) -> dict[str, Any] | None:
    """What the tracker knows of an experiment that has no result files yet because it is
    running (its key, attempt and, with --max-parallel, its device set)."""
    if not tracker_dir.is_dir():
        return None
    for rec in ProgressTracker(tracker_dir).read().keys.values():
        if rec.experiment_id == experiment_id and rec.state == RUNNING:
            return {
                "experiment_id": experiment_id,
                "key": rec.key,
                "state": rec.state,
                "attempt": rec.attempts,
                "device_set": rec.device_set,
                "host": rec.host,
                "pid": rec.pid,
                "since": rec.updated_at,
            }
    return None


def _result_id(given: str, results_dir: Path) -> str:
    """The experiment ID as its folder is named: '1' means '0001'.

    pandas and spreadsheets read the CSV's "0001" as the number 1, so users paste that
    back; a folder named exactly as given still wins (IDs from an older padding).
    """
    if not (given.isascii() and given.isdigit()):
        raise ConfigError(
            f"experiment ID '{given}' is not a number like 0042; "
            "see `joulebench status` or the CSV for IDs"
        )
    padded = format_id(int(given))
    if padded != given and raw_dir(results_dir, given).is_dir():
        return given
    return padded


def report_suite(suite: str, out_dir: Path | None = None, paths: Paths = Paths()) -> Any:
    """`joulebench report`: statistics across cycles, plots and an HTML page for a suite.

    Pools only each key's current run (the experiment ID the tracker holds for it now), so
    runs archived by ``--fresh`` are listed apart, never mixed in; tabulates and plots the
    fields the suite's YAML varies (the CSV's own columns when the YAML is gone).
    """
    from joulebench.results.report import write_report

    check_suite_name(suite)
    csvs = result_csvs(paths.results_dir)
    if not csvs:
        raise ConfigError(
            f"{paths.results_dir}: no *_results.csv yet; run the suite first "
            "(submit-suite), or point --results-dir at its results"
        )
    return write_report(
        csvs,
        suite,
        out_dir or Path("reports") / suite,
        results_dir=paths.results_dir,
        variables=report_variables(suite, paths),
        current_ids=current_experiment_ids(suite, paths.tracker_dir),
    )


def current_experiment_ids(
    suite: str, tracker_dir: Path, state: TrackerState | None = None
) -> dict[str, str] | None:
    """key -> the experiment ID the tracker holds for it now; None when the tracker knows
    nothing of the suite, live or archived (a results folder copied on its own, or a
    tracker folder started afresh), where every result counts as current. ``state``: a
    tracker read the caller already made (the dashboard asks for many suites at once)."""
    state = state if state is not None else ProgressTracker(tracker_dir).read()
    current = {
        key: rec.experiment_id
        for key, rec in state.keys.items()
        if rec.experiment_id and _suite_of(key) == suite
    }
    if not current and not archives_of(tracker_dir, suite):
        return None
    return current


def _suite_of(key: str) -> str | None:
    try:
        return split_key(key)[1]
    except ValueError:
        return None


def report_variables(suite: str, paths: Paths = Paths()) -> Any:
    """The fields the suite's YAML varies, with each config's resolved value; None (the
    report then reads them off the CSV) when the YAML is gone or no longer loads."""
    from joulebench.results.variables import suite_variables
    from joulebench.suite import expand_suite, load_suite

    try:
        definition = load_suite(suite, paths.configs_dir)
        specs = expand_suite(definition, 1)
    except ConfigError as exc:
        log.warning("report %s: varied fields taken from the results CSV (%s)", suite, exc)
        return None
    resolved = {(s.config.model, s.config_name): s.config.model_dump(mode="json") for s in specs}
    return suite_variables(definition.controlled, definition.grid, definition.configs, resolved)


def load_results(suite: str | None = None, paths: Paths = Paths()) -> pd.DataFrame:
    """Every row of every results/*_results.csv (or one suite's) as a typed DataFrame.

    IDs and names are text ("0001" stays "0001"), cycle and attempt integers, true/false
    columns booleans, times UTC timestamps, every measurement a float, and quality_flags
    text ("" when none). No results yet gives an empty frame with every column.
    """
    from joulebench.results.frame import results_frame

    if suite is not None:
        check_suite_name(suite)
    frame = results_frame(result_csvs(paths.results_dir), suite)
    if suite is not None and frame.empty and suite != "single":
        resolve_suite_path(suite, paths.configs_dir)  # a typo must not read as "no results"
    return frame
