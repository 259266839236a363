"""Per-suite summary of the results CSV: statistics per (model, config), tables and plots.

Pure functions over CSV rows (dicts of strings, as ``read_rows`` gives them) plus one
writer, :func:`write_report`. Nothing here imports numpy, torch or matplotlib at module
level; the plots (``joulebench.results.plots``) import matplotlib only when drawn.

Statistics: mean, sample standard deviation (n - 1) and a two-sided 95 % confidence
interval for the mean from Student's t (a table for 1..30 degrees of freedom, a
Cornish-Fisher expansion above; n = 1 gives no interval), clipped at 0 for quantities that
cannot be negative. Which rows are pooled:

* only each key's current run: a row whose experiment ID is not the one the tracker holds
  for its key now (archived by ``--fresh``, or the key is gone) is ``archived``: listed
  apart, never pooled with the new runs;
* rows whose quality flags exclude them (``measure.quality.is_flagged``, the one definition
  ``status`` counts too) are left out and listed apart;
* outliers (energy per output token outside median +- 3 scaled MADs within one config) and
  configs whose cycles disagree several-fold (``unstable_across_cycles``) are only
  flagged, never dropped: which cycle is right cannot be told from the figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from joulebench.errors import JoulebenchError
from joulebench.fsutil import atomic_write_text
from joulebench.measure.quality import excluding_flags
from joulebench.results.csv_store import read_rows
from joulebench.results.cycles import UNSTABLE_FLAG, cycle_disagreement
from joulebench.results.stats import describe, mad_outliers, to_float
from joulebench.results.summary import (
    METRICS,
    NONNEGATIVE,
    OUTLIER_METRIC,
    ConfigSummary,
    PlotData,
)
from joulebench.results.variables import Variable, row_variables

log = logging.getLogger(__name__)


def _joined(rows: Sequence[Mapping[str, str]], column: str) -> str:
    return ", ".join(sorted({(r.get(column) or "").strip() for r in rows} - {""}))


def _estimate(rows: Sequence[Mapping[str, str]]) -> str:
    seen = {(r.get("energy_is_estimate") or "").strip().lower() for r in rows} - {""}
    if not seen:
        return ""
    if seen <= {"true", "1"}:
        return "yes"
    return "no" if seen <= {"false", "0"} else "mixed"


def _summarise_group(
    suite: str,
    model: str,
    config: str,
    rows: list[Mapping[str, str]],
    archived: list[str],
    variables: Sequence[Variable],
) -> ConfigSummary:
    flagged = {
        r["experiment_id"]: excluding_flags(r.get("quality_flags"))
        for r in rows
        if excluding_flags(r.get("quality_flags"))
    }
    used = [r for r in rows if r["experiment_id"] not in flagged]
    metrics = {
        name: describe(
            [v for v in (to_float(r.get(name)) for r in used) if v is not None],
            0.0 if name in NONNEGATIVE else None,
        )
        for name in METRICS
    }
    energy = {r["experiment_id"]: to_float(r.get(OUTLIER_METRIC)) for r in used}
    outliers = mad_outliers({k: v for k, v in energy.items() if v is not None})
    unstable = cycle_disagreement(used)
    return ConfigSummary(
        suite=suite,
        model=model,
        config_name=config,
        variables={v.path: v.text((model, config)) for v in variables},
        experiment_ids=[r["experiment_id"] for r in used],
        flagged=flagged,
        outliers=outliers,
        archived=archived,
        energy_meter=_joined(rows, "energy_meter"),
        energy_method=_joined(rows, "energy_method"),
        energy_is_estimate=_estimate(rows),
        config_flags=[UNSTABLE_FLAG] if unstable else [],
        cycle_notes=unstable,
        metrics=metrics,
    )


def is_current(row: Mapping[str, str], current_ids: Mapping[str, str] | None) -> bool:
    """Whether a row is its key's run now (always, when no tracker is given)."""
    return current_ids is None or current_ids.get(row.get("key") or "") == row.get("experiment_id")


def summarise(
    rows: Iterable[Mapping[str, str]],
    suite: str,
    variables: Sequence[Variable] | None = None,
    current_ids: Mapping[str, str] | None = None,
) -> list[ConfigSummary]:
    """One summary per (model, config_name) of the suite with a current run; models, then
    configs, in the order they first appear in the rows.

    ``variables``: the suite's varied fields (default: what the rows show varying).
    ``current_ids``: key -> the experiment ID the tracker holds for it now; rows of other
    IDs are archived (None: every row is current).
    """
    mine = [r for r in rows if r.get("suite") == suite]
    live = [r for r in mine if is_current(r, current_ids)]
    if variables is None:
        variables = row_variables(live)
    groups: dict[tuple[str, str], list[Mapping[str, str]]] = {}
    old: dict[tuple[str, str], list[str]] = {}
    for row in mine:
        group = (row.get("model") or "", row.get("config_name") or "")
        if is_current(row, current_ids):
            groups.setdefault(group, []).append(row)
        else:
            old.setdefault(group, []).append(row["experiment_id"])
    return [
        _summarise_group(suite, m, c, groups[(m, c)], old.get((m, c), []), variables)
        for m, c in _first_seen_order(live, groups)
    ]


def _first_seen_order(
    rows: Sequence[Mapping[str, str]], groups: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    models: dict[str, int] = {}
    configs: dict[str, int] = {}
    for row in rows:
        models.setdefault(row.get("model") or "", len(models))
        configs.setdefault(row.get("config_name") or "", len(configs))
    return sorted(groups, key=lambda k: (models[k[0]], configs[k[1]]))


# ---------------------------------------------------------------------------- writing


@dataclass
class ReportFiles:
    out_dir: Path
    summary_csv: Path
    runs_csv: Path
    summary_md: Path
    html: Path
    plots: list[PlotData]  # each with its .path (PNG; an SVG beside it) and its series
    summaries: list[ConfigSummary]
    variables: list[Variable]
    archived_runs: int  # rows of the suite not pooled: not their key's current run
    timelines: list[Path] = field(default_factory=list)  # plots/timelines/{id}_power_timeline.png


def run_status(
    row: Mapping[str, str],
    summaries: Sequence[ConfigSummary],
    current_ids: Mapping[str, str] | None,
) -> str:
    """One run's part in the report: used, outlier (used), excluded: flags, or archived."""
    if not is_current(row, current_ids):
        return "archived"
    flags = excluding_flags(row.get("quality_flags"))
    if flags:
        return f"excluded: {flags}"
    outliers = {eid for s in summaries for eid in s.outliers}
    return "outlier (used)" if row["experiment_id"] in outliers else "used"


def load_rows(
    source: str | Path | Iterable[str | Path] | Iterable[Mapping[str, str]],
) -> tuple[list[Mapping[str, str]], Path]:
    """Rows from CSV path(s) or given rows, and the results folder they imply."""
    items = [source] if isinstance(source, str | Path) else list(source)
    if all(isinstance(i, Mapping) for i in items):  # rows (or nothing)
        return list(items), Path("results")
    paths = [Path(p) for p in items]  # type: ignore[arg-type]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise JoulebenchError(
            f"results CSV not found: {', '.join(missing)}; "
            "run the suite first or pass --results-dir"
        )
    return [row for p in paths for row in read_rows(p)], paths[0].parent


def usable_variables(
    variables: Sequence[Variable] | None, rows: Sequence[Mapping[str, str]]
) -> list[Variable]:
    """The suite definition's varied fields, unless the results hold configs it does not
    know (the YAML was edited since): then the CSV's own view, which covers every row."""
    if variables is None:
        return row_variables(rows)
    known = {cid for v in variables for cid in (*v.values, *v.resolved)}
    stray = sorted({(r.get("model") or "", r.get("config_name") or "") for r in rows} - known)
    if variables and stray:
        log.warning(
            "suite definition does not know %d config(s) of the results (e.g. %s): "
            "varied fields taken from the results CSV",
            len(stray),
            " / ".join(stray[0]),
        )
        return row_variables(rows)
    return list(variables)


def _order_seed(rows: Sequence[Mapping[str, str]], given: int | str | None) -> str | None:
    if given is not None:
        return str(given)
    seeds = sorted({(r.get("cycle_order_seed") or "").strip() for r in rows} - {""})
    return ", ".join(seeds) if seeds else None


def write_report(
    source: str | Path | Iterable[str | Path] | Iterable[Mapping[str, str]],
    suite: str,
    out_dir: str | Path,
    *,
    results_dir: str | Path | None = None,
    cycle_order_seed: int | str | None = None,
    variables: Sequence[Variable] | None = None,
    current_ids: Mapping[str, str] | None = None,
) -> ReportFiles:
    """Summary CSV, per-run CSV, Markdown, plots (PNG + SVG) under plots/, one HTML page.

    ``source``: a results CSV path, several, or rows already read. ``results_dir`` (for the
    HTML's links to raw results) defaults to the first CSV's folder, or ``results``.
    ``cycle_order_seed`` defaults to the rows' own ``cycle_order_seed`` column, if any.
    ``variables`` and ``current_ids``: see :func:`summarise`.
    """
    from joulebench.results import plots as plotting

    loaded, default_results = load_rows(source)
    rows = [r for r in loaded if r.get("suite") == suite]
    live = [r for r in rows if is_current(r, current_ids)]
    if not live:
        what = (
            f"no current results for suite '{suite}' ({len(rows)} archived)"
            if rows
            else f"no results for suite '{suite}'"
        )
        raise JoulebenchError(f"{what}; run submit-suite {suite} first")
    out, results = Path(out_dir), Path(results_dir) if results_dir else default_results
    out.mkdir(parents=True, exist_ok=True)
    variables = usable_variables(variables, live)
    summaries = summarise(rows, suite, variables, current_ids)
    plot_data = plotting.build_plot_data(summaries, suite, variables)
    for plot in plot_data:
        plotting.render(plot, out / "plots" / f"{plot.name}.png")
    files = ReportFiles(
        out,
        out / f"{suite}_summary.csv",
        out / f"{suite}_runs.csv",
        out / f"{suite}_summary.md",
        out / f"{suite}_report.html",
        plot_data,
        summaries,
        variables,
        len(rows) - len(live),
    )
    _write_tables(files, suite, rows, current_ids, _order_seed(live, cycle_order_seed), results)
    from joulebench.results.timeline_plot import render_timelines

    files.timelines = render_timelines(
        results, [r["experiment_id"] for r in live], out / "plots" / "timelines"
    )
    return files


def _write_tables(
    files: ReportFiles,
    suite: str,
    rows: Sequence[Mapping[str, str]],
    current_ids: Mapping[str, str] | None,
    seed: str | None,
    results_dir: Path,
) -> None:
    """The two CSVs, the Markdown and the HTML page (plots already drawn)."""
    from joulebench.results import report_pages as pages

    summaries, variables = files.summaries, files.variables
    statuses = [run_status(r, summaries, current_ids) for r in rows]
    atomic_write_text(
        files.summary_csv,
        pages.csv_text(pages.summary_columns(variables), map(pages.summary_record, summaries)),
    )
    atomic_write_text(
        files.runs_csv,
        pages.csv_text(
            pages.RUN_COLUMNS, ({**r, "status": st} for r, st in zip(rows, statuses, strict=True))
        ),
    )
    context = pages.PageContext(suite, summaries, variables, seed, files.archived_runs)
    plots = files.plots
    atomic_write_text(
        files.summary_md, pages.markdown(context, [f"plots/{p.name}.png" for p in plots])
    )
    images = [(p.name, p.path.read_bytes()) for p in plots if p.path]
    html = pages.render_html(context, rows, statuses, images, results_dir, files.out_dir)
    atomic_write_text(files.html, html)
