"""Per-suite summary of the results CSV: statistics per (model, config), tables and plots.

Pure functions over CSV rows (dicts of strings, as ``read_rows`` gives them) plus one
writer, :func:`write_report`. Nothing here imports numpy, torch or matplotlib at module
level; the plots (``joulebench.results.plots``) import matplotlib only when drawn.

Statistics: mean, sample standard deviation (n - 1) and a two-sided 95 % confidence
interval for the mean from Student's t (a table for 1..30 degrees of freedom, a
Cornish-Fisher expansion above; n = 1 gives no interval). Rows with quality flags are
excluded from every statistic and listed apart. Outliers (energy per output token outside
median +- 3 scaled MADs within one config) are only flagged, never dropped.
"""

from __future__ import annotations

import base64
import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from joulebench.errors import JoulebenchError
from joulebench.results.csv_store import read_rows
from joulebench.results.stats import percentile

if TYPE_CHECKING:
    from joulebench.results.plots import PlotData

METRICS: tuple[str, ...] = (
    "energy_per_output_token_j", "dynamic_energy_per_output_token_j",
    "throughput_output_tokens_per_s", "request_latency_p50_s", "request_latency_p95_s",
    "output_tokens_per_j", "flops_per_j",
)
CONTROLS: tuple[str, ...] = ("batch_size", "precision", "decoder_mode", "num_processes")
OUTLIER_METRIC = "energy_per_output_token_j"
MAD_SCALE = 1.4826  # makes the MAD a consistent estimator of sigma for normal data
OUTLIER_K = 3.0

# Two-sided 95 %: t(0.975, df) for df = 1..30.
T_975: tuple[float, ...] = (
    12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
    2.364624252, 2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830,
    2.160368656, 2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.100922040,
    2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
    2.059538553, 2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456,
)
Z_975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table up to 30, then Cornish-Fisher (error < 1e-5 for df > 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1 (got {df})")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


@dataclass(frozen=True)
class MetricStats:
    n: int
    mean: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    min: float | None = None
    max: float | None = None

    @property
    def ci_half_width(self) -> float | None:
        if self.ci_high is None or self.mean is None:
            return None
        return self.ci_high - self.mean


def describe(values: Sequence[float]) -> MetricStats:
    """n, mean, sample std, 95 % t interval of the mean (None below n = 2), min, max."""
    n = len(values)
    if n == 0:
        return MetricStats(n=0)
    mean = math.fsum(values) / n
    if n == 1:
        return MetricStats(n=1, mean=mean, min=values[0], max=values[0])
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return MetricStats(n=n, mean=mean, std=std, ci_low=mean - half, ci_high=mean + half,
                       min=min(values), max=max(values))


def mad_outliers(values: Mapping[str, float], k: float = OUTLIER_K) -> list[str]:
    """Keys whose value lies outside median +- k * 1.4826 * MAD (strictly; needs n >= 3).

    With MAD = 0 (most values identical) every value off the median is flagged.
    """
    if len(values) < 3:
        return []
    median = percentile(list(values.values()), 50)
    assert median is not None
    mad = percentile([abs(v - median) for v in values.values()], 50)
    assert mad is not None
    limit = k * MAD_SCALE * mad
    return [key for key, v in values.items() if abs(v - median) > limit]


def to_float(text: str | None) -> float | None:
    """A CSV cell as a finite float; empty, unparsable or non-finite gives None."""
    if text is None or not str(text).strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class ConfigSummary:
    suite: str
    model: str
    config_name: str
    controls: dict[str, str]
    experiment_ids: list[str]  # rows used in the statistics
    flagged: dict[str, str]  # experiment_id -> quality flags; excluded from the statistics
    outliers: list[str]  # experiment_ids flagged by the MAD rule (still included)
    metrics: dict[str, MetricStats] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} / {self.config_name}"


# A model-based estimate is the best a machine without sensors can do; it is labelled,
# not excluded, or a CPU-only suite would have no statistics at all. A dynamic energy
# lost in baseline drift leaves the total energy and throughput sound.
INFORMATIONAL_FLAGS = frozenset({"estimate_only", "dynamic_within_baseline_noise"})


def excluding_flags(text: str | None) -> str:
    """The flags of a CSV cell that keep a run out of the statistics (";"-joined)."""
    flags = [f for f in (text or "").split(";") if f.strip()]
    return ";".join(f for f in flags if f not in INFORMATIONAL_FLAGS)


def _summarise_group(suite: str, model: str, config: str,
                     rows: list[Mapping[str, str]]) -> ConfigSummary:
    flagged = {r["experiment_id"]: excluding_flags(r.get("quality_flags")) for r in rows
               if excluding_flags(r.get("quality_flags"))}
    used = [r for r in rows if r["experiment_id"] not in flagged]
    metrics: dict[str, MetricStats] = {}
    for name in METRICS:
        values = [v for v in (to_float(r.get(name)) for r in used) if v is not None]
        metrics[name] = describe(values)
    energy = {r["experiment_id"]: to_float(r.get(OUTLIER_METRIC)) for r in used}
    outliers = mad_outliers({k: v for k, v in energy.items() if v is not None})
    source = used[0] if used else rows[0]
    controls = {c: (source.get(c) or "").strip() for c in CONTROLS}
    return ConfigSummary(suite=suite, model=model, config_name=config, controls=controls,
                         experiment_ids=[r["experiment_id"] for r in used], flagged=flagged,
                         outliers=outliers, metrics=metrics)


def summarise(rows: Iterable[Mapping[str, str]], suite: str) -> list[ConfigSummary]:
    """One summary per (model, config_name) of the suite; models, then configs, in the
    order they first appear in the rows."""
    groups: dict[tuple[str, str], list[Mapping[str, str]]] = {}
    model_order: dict[str, int] = {}
    config_order: dict[str, int] = {}
    for row in rows:
        if row.get("suite") != suite:
            continue
        model, config = row.get("model") or "", row.get("config_name") or ""
        model_order.setdefault(model, len(model_order))
        config_order.setdefault(config, len(config_order))
        groups.setdefault((model, config), []).append(row)
    keys = sorted(groups, key=lambda k: (model_order[k[0]], config_order[k[1]]))
    return [_summarise_group(suite, m, c, groups[(m, c)]) for m, c in keys]


# ---------------------------------------------------------------------------- writing

EXCLUDED_NOTE = ("Runs with quality flags (`quality_flags` in the CSV) are excluded from the "
                 "statistics and listed under \"Excluded runs\"; `estimate_only` alone does "
                 "not exclude a run (energy is then a labelled model-based estimate).")
CI_NOTE = ("Values are mean ± half-width of the 95 % confidence interval of the mean "
           "(Student t, n − 1 degrees of freedom); n counts the runs used. Outliers (energy "
           "per token outside median ± 3 × 1.4826 × MAD within a config) are flagged, "
           "not removed.")
TABLE_HEAD = ("model", "config", "n", "energy/token (J)", "dynamic energy/token (J)",
              "throughput (tok/s)", "request p50 (s)", "request p95 (s)", "tokens/J", "FLOPs/J")


@dataclass
class ReportFiles:
    out_dir: Path
    summary_csv: Path
    summary_md: Path
    html: Path
    plots: list[PlotData]  # each with its .path and the series behind it
    summaries: list[ConfigSummary]


def summary_columns() -> list[str]:
    stats = ("n", "mean", "std", "ci_low", "ci_high", "min", "max")
    return ["suite", "model", "config_name", *CONTROLS, "n_runs", "n_used", "n_flagged",
            "flagged_ids", "outlier_ids", *(f"{m}_{s}" for m in METRICS for s in stats)]


def summary_record(s: ConfigSummary) -> dict[str, object]:
    record: dict[str, object] = {
        "suite": s.suite, "model": s.model, "config_name": s.config_name, **s.controls,
        "n_runs": len(s.experiment_ids) + len(s.flagged), "n_used": len(s.experiment_ids),
        "n_flagged": len(s.flagged), "flagged_ids": ";".join(s.flagged),
        "outlier_ids": ";".join(s.outliers)}
    for name, st in s.metrics.items():
        for stat in ("n", "mean", "std", "ci_low", "ci_high", "min", "max"):
            value = getattr(st, stat)
            record[f"{name}_{stat}"] = "" if value is None else value
    return record


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def cell(s: ConfigSummary, metric: str) -> str:
    st = s.metrics[metric]
    if st.mean is None:
        return "–"
    text = fmt(st.mean) if st.ci_half_width is None else \
        f"{fmt(st.mean)} ± {fmt(st.ci_half_width)}"
    return text if st.n == len(s.experiment_ids) else f"{text} (n={st.n})"


def table_rows(summaries: Sequence[ConfigSummary]) -> list[list[str]]:
    return [[s.model, s.config_name, str(len(s.experiment_ids)),
             *(cell(s, m) for m in METRICS)] for s in summaries]


def notes(summaries: Sequence[ConfigSummary], order_seed: str | None) -> list[str]:
    flagged = sum(len(s.flagged) for s in summaries)
    used = sum(len(s.experiment_ids) for s in summaries)
    out = [f"{used + flagged} runs in {len(summaries)} configs; {flagged} quality-flagged "
           "run(s) excluded.", EXCLUDED_NOTE, CI_NOTE]
    if order_seed is not None:
        out.append(f"Cycles ran in randomised order (cycle_order_seed {order_seed}).")
    return out


def _listing(summaries: Sequence[ConfigSummary]) -> tuple[list[str], list[str]]:
    excluded = [f"{eid} ({s.label}): {flags}" for s in summaries
                for eid, flags in s.flagged.items()]
    outliers = [f"{eid} ({s.label})" for s in summaries for eid in s.outliers]
    return excluded, outliers


def markdown(summaries: Sequence[ConfigSummary], suite: str, order_seed: str | None,
             plot_paths: Sequence[str] = ()) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    excluded, outliers = _listing(summaries)
    parts = [f"# joulebench report: {suite}", "", *notes(summaries, order_seed), "",
             line(TABLE_HEAD), line(["---"] * len(TABLE_HEAD)),
             *(line(r) for r in table_rows(summaries)), "",
             f"## Excluded runs (quality flags): {len(excluded)}", "",
             *([f"- {e}" for e in excluded] or ["none"]), "",
             f"## Outliers (flagged, still included): {len(outliers)}", "",
             *([f"- {o}" for o in outliers] or ["none"]), ""]
    if plot_paths:
        parts += ["## Plots", "", *(f"![{Path(p).stem}]({p})" for p in plot_paths), ""]
    return "\n".join(parts)


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
tr.excluded{color:#a00}tr.outlier{background:#fff6e0}
figure{margin:1em 0}img{max-width:100%}"""


def raw_link(experiment_id: str, results_dir: Path, out_dir: Path) -> str:
    """The experiment's global-energy JSON, relative to the report's folder, URL-quoted."""
    target = results_dir / "raw_results" / experiment_id / \
        f"{experiment_id}_7_global_energy_results.json"
    return quote(Path(os.path.relpath(target, out_dir)).as_posix())


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]],
                classes: Sequence[str] = ()) -> str:
    """Cells are HTML already (escaped by the caller); head cells are escaped here."""
    body = "".join(
        (f'<tr class="{classes[i]}">' if i < len(classes) and classes[i] else "<tr>")
        + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for i, row in enumerate(rows))
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
            + body + "</table>")


def _experiment_table(rows: Sequence[Mapping[str, str]], summaries: Sequence[ConfigSummary],
                      results_dir: Path, out_dir: Path) -> str:
    outliers = {eid for s in summaries for eid in s.outliers}
    cells, classes = [], []
    for r in rows:
        eid, flags = r["experiment_id"], excluding_flags(r.get("quality_flags"))
        status = f"excluded: {flags}" if flags else "outlier (used)" if eid in outliers \
            else "used"
        link = f'<a href="{escape(raw_link(eid, results_dir, out_dir))}">{escape(eid)}</a>'
        cells.append([link, *(escape(r.get(c) or "") for c in ("model", "config_name", "cycle")),
                      escape(fmt(to_float(r.get(OUTLIER_METRIC)))), escape(status)])
        classes.append("excluded" if flags else "outlier" if eid in outliers else "")
    head = ("experiment", "model", "config", "cycle", "energy/token (J)", "status")
    return _html_table(head, cells, classes)


def render_html(suite: str, summaries: Sequence[ConfigSummary], rows: Sequence[Mapping[str, str]],
                images: Sequence[tuple[str, bytes]], results_dir: Path, out_dir: Path,
                order_seed: str | None) -> str:
    """One self-contained page: inline CSS, plots as base64 data URIs, relative links."""
    excluded, outliers = _listing(summaries)
    figures = "".join(
        f'<figure><img alt="{escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode("ascii")}"><figcaption>{escape(name)}</figcaption>'
        "</figure>" for name, data in images)
    summary = _html_table(TABLE_HEAD, [[escape(c) for c in r] for r in table_rows(summaries)])
    return "".join([
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>joulebench report: {escape(suite)}</title><style>{CSS}</style></head><body>",
        f"<h1>joulebench report: {escape(suite)}</h1>",
        *(f"<p>{escape(n)}</p>" for n in notes(summaries, order_seed)),
        "<h2>Summary</h2>", summary,
        f"<h2>Excluded runs (quality flags): {len(excluded)}</h2>",
        "<ul>" + "".join(f"<li>{escape(e)}</li>" for e in excluded) + "</ul>",
        f"<h2>Outliers (flagged, still included): {len(outliers)}</h2>",
        "<ul>" + "".join(f"<li>{escape(o)}</li>" for o in outliers) + "</ul>",
        "<h2>Plots</h2>", figures or "<p>no plots</p>",
        "<h2>Experiments</h2>", _experiment_table(rows, summaries, results_dir, out_dir),
        "</body></html>\n"])


def load_rows(source: str | Path | Iterable[str | Path] | Iterable[Mapping[str, str]]
              ) -> tuple[list[Mapping[str, str]], Path]:
    """Rows from CSV path(s) or given rows, and the results folder they imply."""
    items = [source] if isinstance(source, str | Path) else list(source)
    if all(isinstance(i, Mapping) for i in items):  # rows (or nothing)
        return list(items), Path("results")
    paths = [Path(p) for p in items]  # type: ignore[arg-type]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise JoulebenchError(f"results CSV not found: {', '.join(missing)}; "
                              "run the suite first or pass --results-dir")
    return [row for p in paths for row in read_rows(p)], paths[0].parent


def _order_seed(rows: Sequence[Mapping[str, str]], given: int | str | None) -> str | None:
    if given is not None:
        return str(given)
    seeds = sorted({(r.get("cycle_order_seed") or "").strip() for r in rows} - {""})
    return ", ".join(seeds) if seeds else None


def write_report(source: str | Path | Iterable[str | Path] | Iterable[Mapping[str, str]],
                 suite: str, out_dir: str | Path, *, results_dir: str | Path | None = None,
                 cycle_order_seed: int | str | None = None) -> ReportFiles:
    """Summary CSV and Markdown, PNG plots under plots/, and one self-contained HTML page.

    ``source``: a results CSV path, several, or rows already read. ``results_dir`` (for the
    HTML's links to raw results) defaults to the first CSV's folder, or ``results``.
    ``cycle_order_seed`` defaults to the rows' own ``cycle_order_seed`` column, if any.
    """
    from joulebench.results import plots as plotting

    loaded, default_results = load_rows(source)
    rows = [r for r in loaded if r.get("suite") == suite]
    if not rows:
        raise JoulebenchError(f"no results for suite '{suite}'; run submit-suite {suite} first")
    out, results = Path(out_dir), Path(results_dir) if results_dir else default_results
    out.mkdir(parents=True, exist_ok=True)
    summaries, seed = summarise(rows, suite), _order_seed(rows, cycle_order_seed)
    plot_data = plotting.build_plot_data(summaries, suite)
    for plot in plot_data:
        plotting.render(plot, out / "plots" / f"{plot.name}.png")
    files = ReportFiles(out, out / f"{suite}_summary.csv", out / f"{suite}_summary.md",
                        out / f"{suite}_report.html", plot_data, summaries)
    with files.summary_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=summary_columns())
        writer.writeheader()
        writer.writerows(summary_record(s) for s in summaries)
    rel = [f"plots/{p.name}.png" for p in plot_data]
    files.summary_md.write_text(markdown(summaries, suite, seed, rel), encoding="utf-8")
    images = [(p.name, p.path.read_bytes()) for p in plot_data if p.path]
    files.html.write_text(render_html(suite, summaries, rows, images, results, out, seed),
                          encoding="utf-8")
    return files
