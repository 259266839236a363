"""The report's files as text: summary and per-run CSV, Markdown, one self-contained HTML
page. Pure text building; :func:`joulebench.results.report.write_report` writes them."""

from __future__ import annotations

import base64
import csv
import io
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import quote

from joulebench.results.cycles import LOADED_OTHERS_SHARE, UNSTABLE_RATIO
from joulebench.results.layout import result_file
from joulebench.results.stats import fmt, fmt_mean_ci, to_float
from joulebench.results.summary import METRICS, OUTLIER_METRIC, ConfigSummary
from joulebench.results.variables import Variable


@dataclass(frozen=True)
class PageContext:
    suite: str
    summaries: Sequence[ConfigSummary]
    variables: Sequence[Variable]
    order_seed: str | None
    archived_runs: int


STATS = ("n", "mean", "std", "ci_low", "ci_high", "min", "max")


def summary_columns(variables: Sequence[Variable]) -> list[str]:
    return [
        "suite",
        "model",
        "config_name",
        *(v.path for v in variables),
        "n_runs",
        "n_used",
        "n_flagged",
        "n_archived",
        "flagged_ids",
        "archived_ids",
        "outlier_ids",
        "config_flags",
        "energy_meter",
        "energy_method",
        "energy_is_estimate",
        *(f"{m}_{s}" for m in METRICS for s in STATS),
    ]


def summary_record(s: ConfigSummary) -> dict[str, object]:
    record: dict[str, object] = {
        "suite": s.suite,
        "model": s.model,
        "config_name": s.config_name,
        **s.variables,
        "n_runs": len(s.experiment_ids) + len(s.flagged),
        "n_used": len(s.experiment_ids),
        "n_flagged": len(s.flagged),
        "n_archived": len(s.archived),
        "flagged_ids": ";".join(s.flagged),
        "archived_ids": ";".join(s.archived),
        "outlier_ids": ";".join(s.outliers),
        "config_flags": ";".join(s.config_flags),
        "energy_meter": s.energy_meter,
        "energy_method": s.energy_method,
        "energy_is_estimate": s.energy_is_estimate,
    }
    for name, st in s.metrics.items():
        for stat in STATS:
            value = getattr(st, stat)
            record[f"{name}_{stat}"] = "" if value is None else value
    return record


RUN_COLUMNS = (
    "experiment_id",
    "key",
    "model",
    "config_name",
    "cycle",
    "status",
    "quality_flags",
    "energy_meter",
    "energy_method",
    "energy_is_estimate",
    "others_cpu_share",
    *METRICS,
)


def csv_text(columns: Sequence[str], records: Iterable[Mapping[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


EXCLUDED_NOTE = (
    "Runs whose quality flags exclude them (`quality_flags` in the CSV; the "
    "same rule `joulebench status` counts as flagged) are excluded from the "
    'statistics and listed under "Excluded runs"; `estimate_only` and '
    "`dynamic_within_baseline_noise` only label a run."
)
CI_NOTE = (
    "Values are mean ± half-width of the 95 % confidence interval of the mean "
    "(Student t, n − 1 degrees of freedom), the half-width to two significant digits "
    "and the mean to the same place; n counts the runs used. Outliers (energy "
    "per token outside median ± 3 × 1.4826 × MAD within a config) are flagged, "
    "not removed."
)
UNSTABLE_NOTE = (
    f"`unstable_across_cycles`: the cycles of a config differ {UNSTABLE_RATIO:g}× or more in "
    "energy per token or throughput (a quiet node varies by a few percent); its runs stay in "
    "the statistics, since which cycle is right cannot be told, but read its figures with "
    f"care. A run whose node gave over {LOADED_OTHERS_SHARE:.0%} of its CPU time to other "
    "work during the window (`others_cpu_share`) ran on a shared node."
)
METRIC_HEAD = (
    "energy/token (J)",
    "dynamic energy/token (J)",
    "throughput (tok/s)",
    "request p50 (s)",
    "request p95 (s)",
    "tokens/J",
    "FLOPs/J",
)


def measurement_note(summaries: Sequence[ConfigSummary]) -> str:
    """How energy was measured, for the header: each meter/method/estimate and its configs."""
    combos = Counter(
        (s.energy_meter or "none", s.energy_method or "none", s.energy_is_estimate or "unknown")
        for s in summaries
    )
    parts = [
        f"{meter} ({method}; "
        + {
            "yes": "a model-based estimate, not a sensor reading",
            "no": "a hardware reading",
            "mixed": "estimates and readings mixed",
        }.get(est, "estimate: ?")
        + f") for {n} of {len(summaries)} configs"
        for (meter, method, est), n in combos.most_common()
    ]
    return "Energy measured with " + "; ".join(parts) + "."


def notes(ctx: PageContext) -> list[str]:
    summaries = ctx.summaries
    flagged = sum(len(s.flagged) for s in summaries)
    used = sum(len(s.experiment_ids) for s in summaries)
    unstable = sum(bool(s.config_flags) for s in summaries)
    out = [
        f"{used + flagged} runs in {len(summaries)} configs; {flagged} quality-flagged "
        f"run(s) excluded; {unstable} config(s) unstable across cycles.",
        measurement_note(summaries),
    ]
    if ctx.archived_runs:
        out.append(
            f"{ctx.archived_runs} archived run(s) (earlier runs of these keys, e.g. "
            "before `submit-suite --fresh`) are not pooled; see the runs CSV."
        )
    if ctx.variables:
        out.append("Varied fields: " + ", ".join(v.path for v in ctx.variables) + ".")
    out += [EXCLUDED_NOTE, CI_NOTE, UNSTABLE_NOTE]
    if ctx.order_seed is not None:
        out.append(f"Cycles ran in randomised order (cycle_order_seed {ctx.order_seed}).")
    return out


def table_head(ctx: PageContext) -> list[str]:
    return [
        "model",
        "config",
        *(v.path for v in ctx.variables),
        "n",
        "energy meter",
        *METRIC_HEAD,
        "config flags",
    ]


def cell(s: ConfigSummary, metric: str) -> str:
    st = s.metrics[metric]
    if st.mean is None:
        return "–"
    text = fmt_mean_ci(st.mean, st.ci_half_width)
    return text if st.n == len(s.experiment_ids) else f"{text} (n={st.n})"


def _meter(s: ConfigSummary) -> str:
    method = s.energy_method or "–"
    estimate = {"yes": "estimate", "mixed": "partly estimate"}.get(s.energy_is_estimate)
    said = method if estimate is None or estimate == method else f"{method}, {estimate}"
    return f"{s.energy_meter or '–'} ({said})"


def table_rows(ctx: PageContext) -> list[list[str]]:
    return [
        [
            s.model,
            s.config_name,
            *(s.variables.get(v.path, "") for v in ctx.variables),
            str(len(s.experiment_ids)),
            _meter(s),
            *(cell(s, m) for m in METRICS),
            ", ".join(s.config_flags) or "–",
        ]
        for s in ctx.summaries
    ]


def listings(ctx: PageContext) -> list[tuple[str, list[str]]]:
    """(heading, lines) of the sections below the table."""
    summaries = ctx.summaries
    return [
        (
            "Excluded runs (quality flags)",
            [f"{eid} ({s.label}): {flags}" for s in summaries for eid, flags in s.flagged.items()],
        ),
        (
            "Unstable across cycles (flagged, still included)",
            [f"{s.label}: {'; '.join(s.cycle_notes)}" for s in summaries if s.cycle_notes],
        ),
        (
            "Outliers (flagged, still included)",
            [f"{eid} ({s.label})" for s in summaries for eid in s.outliers],
        ),
        (
            "Archived runs (not pooled)",
            [f"{s.label}: {', '.join(s.archived)}" for s in summaries if s.archived],
        ),
    ]


def markdown(ctx: PageContext, plot_paths: Sequence[str] = ()) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    head = table_head(ctx)
    parts = [
        f"# joulebench report: {ctx.suite}",
        "",
        *notes(ctx),
        "",
        line(head),
        line(["---"] * len(head)),
        *(line(r) for r in table_rows(ctx)),
        "",
    ]
    for heading, lines in listings(ctx):
        parts += [f"## {heading}: {len(lines)}", "", *([f"- {e}" for e in lines] or ["none"]), ""]
    if plot_paths:
        parts += ["## Plots", "", *(f"![{Path(p).stem}]({p})" for p in plot_paths), ""]
    return "\n".join(parts)


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
tr.excluded{color:#a00}tr.outlier{background:#fff6e0}tr.archived{color:#888}
figure{margin:1em 0}img{max-width:100%}"""


def raw_link(experiment_id: str, results_dir: Path, out_dir: Path) -> str:
    """The experiment's global-energy JSON, relative to the report's folder, URL-quoted."""
    target = result_file(results_dir, experiment_id, "energy")
    return quote(Path(os.path.relpath(target, out_dir)).as_posix())


def _html_table(
    head: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()
) -> str:
    """Cells are HTML already (escaped by the caller); head cells are escaped here."""
    body = "".join(
        (f'<tr class="{classes[i]}">' if i < len(classes) and classes[i] else "<tr>")
        + "".join(f"<td>{v}</td>" for v in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return (
        "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" + body + "</table>"
    )


def _experiment_table(
    rows: Sequence[Mapping[str, str]], statuses: Sequence[str], results_dir: Path, out_dir: Path
) -> str:
    cells, classes = [], []
    for r, status in zip(rows, statuses, strict=True):
        eid = r["experiment_id"]
        link = f'<a href="{escape(raw_link(eid, results_dir, out_dir))}">{escape(eid)}</a>'
        cells.append(
            [
                link,
                *(escape(r.get(c) or "") for c in ("model", "config_name", "cycle")),
                escape(fmt(to_float(r.get(OUTLIER_METRIC)))),
                escape(status),
            ]
        )
        classes.append(status.split(":")[0].split(" ")[0].replace("used", ""))
    head = ("experiment", "model", "config", "cycle", "energy/token (J)", "status")
    return _html_table(head, cells, classes)


def render_html(
    ctx: PageContext,
    rows: Sequence[Mapping[str, str]],
    statuses: Sequence[str],
    images: Sequence[tuple[str, bytes]],
    results_dir: Path,
    out_dir: Path,
) -> str:
    """One self-contained page: inline CSS, plots as base64 data URIs, relative links."""
    figures = "".join(
        f'<figure><img alt="{escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode("ascii")}"><figcaption>{escape(name)}</figcaption>'
        "</figure>"
        for name, data in images
    )
    summary = _html_table(table_head(ctx), [[escape(c) for c in r] for r in table_rows(ctx)])
    sections = "".join(
        f"<h2>{escape(heading)}: {len(lines)}</h2><ul>"
        + "".join(f"<li>{escape(e)}</li>" for e in lines)
        + "</ul>"
        for heading, lines in listings(ctx)
    )
    return "".join(
        [
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>joulebench report: {escape(ctx.suite)}</title>",
            f"<style>{CSS}</style></head><body>",
            f"<h1>joulebench report: {escape(ctx.suite)}</h1>",
            *(f"<p>{escape(n)}</p>" for n in notes(ctx)),
            "<h2>Summary</h2>",
            summary,
            sections,
            "<h2>Plots</h2>",
            figures or "<p>no plots</p>",
            "<h2>Experiments</h2>",
            _experiment_table(rows, statuses, results_dir, out_dir),
            "</body></html>\n",
        ]
    )
