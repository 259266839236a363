"""The suite report: statistics by hand, outliers, exclusions, plot data, files written."""

from __future__ import annotations

import csv
import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest

from joulebench.errors import JoulebenchError
from joulebench.results import CSV_COLUMNS, append_row
from joulebench.results.plots import build_plot_data, pareto_front
from joulebench.results.report import (
    describe,
    mad_outliers,
    summarise,
    t_quantile_975,
    to_float,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def row(eid: str, model: str, config: str, cycle: int, energy: float | None,
        throughput: float = 100.0, flags: str = "", suite: str = "s", **controls: str
        ) -> dict[str, str]:
    """A CSV row as read_rows gives it: every column a string, empty when missing."""
    out = dict.fromkeys(CSV_COLUMNS, "")
    out.update({"experiment_id": eid, "key": f"{model}::{suite}::{config}::{cycle}",
                "suite": suite, "model": model, "config_name": config, "cycle": str(cycle),
                "energy_per_output_token_j": "" if energy is None else repr(energy),
                "throughput_output_tokens_per_s": repr(throughput),
                "request_latency_p50_s": "0.5", "request_latency_p95_s": "0.9",
                "output_tokens_per_j": "" if not energy else repr(1 / energy),
                "flops_per_j": "1e9", "quality_flags": flags, "batch_size": "8",
                "precision": "float32", "decoder_mode": "greedy", "num_processes": "1"})
    out.update(controls)
    return out


def demo_rows() -> list[dict[str, str]]:
    """Two models x (batch 4, batch 8, greedy, sampling) x 3 cycles; one run flagged."""
    rows, n = [], 0
    configs = {"batch_size_4": {"batch_size": "4"}, "batch_size_8": {},
               "decoder_greedy": {}, "decoder_sampling": {"decoder_mode": "sampling"}}
    for cycle in (1, 2, 3):
        for m, model in enumerate(("models/a", "models/b")):
            for c, (config, controls) in enumerate(configs.items()):
                n += 1
                energy = 0.01 * (1 + m) * (1 + c) * (1 + 0.01 * cycle)
                rows.append(row(f"{n:04d}", model, config, cycle, energy,
                                throughput=1000.0 / (1 + c) / (1 + m) + cycle, **controls))
    rows[0]["quality_flags"] = "short_window;estimate"
    return rows


# ------------------------------------------------------------------------ statistics

def test_describe_matches_hand_computed_values() -> None:
    st = describe([1.0, 2.0, 3.0, 4.0])
    assert st.n == 4
    assert st.mean == pytest.approx(2.5)
    assert st.std == pytest.approx(1.2909944, abs=1e-6)  # sqrt(5/3)
    half = 3.182446305 * 1.2909944487 / 2
    assert st.ci_half_width == pytest.approx(half, abs=1e-6)
    assert (st.ci_low, st.ci_high) == pytest.approx((2.5 - half, 2.5 + half))
    assert (st.min, st.max) == (1.0, 4.0)


def test_one_value_has_no_interval_and_none_has_no_mean() -> None:
    one = describe([3.0])
    assert (one.n, one.mean, one.std, one.ci_low, one.ci_high) == (1, 3.0, None, None, None)
    assert one.ci_half_width is None
    assert describe([]).mean is None


@pytest.mark.parametrize(("df", "expected"), [
    (1, 12.7062), (2, 4.3027), (3, 3.1824), (5, 2.5706), (10, 2.2281), (20, 2.0860),
    (30, 2.0423), (31, 2.0395), (60, 2.0003), (120, 1.9799), (1000, 1.9623), (10**7, 1.9600),
])
def test_t_quantile_spot_checks(df: int, expected: float) -> None:
    assert t_quantile_975(df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_is_monotone_across_the_table_edge_and_refuses_df_0() -> None:
    values = [t_quantile_975(df) for df in range(1, 200)]
    assert all(a > b for a, b in itertools.pairwise(values))
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_mad_rule_flags_only_the_far_value() -> None:
    # median 1.05, MAD 0.05 -> limit 3 * 1.4826 * 0.05 = 0.222: 0.9 stays, 5.0 is flagged
    values = {"a": 1.0, "b": 1.1, "c": 0.9, "d": 1.05, "e": 5.0}
    assert mad_outliers(values) == ["e"]
    assert mad_outliers({"a": 1.0, "b": 50.0}) == []  # too few to judge


def test_cells_parse_to_finite_floats_or_none() -> None:
    assert [to_float(v) for v in ("1.5", "", " ", "nan", "inf", "x", None)] == \
        [1.5, None, None, None, None, None, None]


# ------------------------------------------------------------------------ summaries

def test_flagged_rows_are_excluded_and_listed_and_outliers_only_flagged() -> None:
    rows = [row(f"{i:04d}", "m", "batch_size_8", i, e) for i, e in enumerate([1, 2, 3, 4], 1)]
    rows.append(row("0005", "m", "batch_size_8", 5, 100.0, flags="short_window"))
    rows += [row(f"1{i:03d}", "m", "batch_size_16", i, e)
             for i, e in enumerate([1.0, 1.01, 0.99, 1.0, 3.0], 1)]
    rows.append(row("9999", "m", "batch_size_8", 1, 7.0, suite="other"))
    first, second = summarise(rows, "s")
    energy = first.metrics["energy_per_output_token_j"]
    assert (energy.n, energy.mean) == (4, pytest.approx(2.5))
    assert first.flagged == {"0005": "short_window"}
    assert first.experiment_ids == ["0001", "0002", "0003", "0004"]
    assert first.outliers == []
    assert second.outliers == ["1005"]
    assert second.metrics["energy_per_output_token_j"].n == 5  # flagged, not removed
    assert first.controls == {"batch_size": "8", "precision": "float32",
                              "decoder_mode": "greedy", "num_processes": "1"}


def test_missing_metric_values_give_n_zero() -> None:
    (summary,) = summarise([row("0001", "m", "c", 1, 1.0), row("0002", "m", "c", 2, 2.0)], "s")
    assert summary.metrics["dynamic_energy_per_output_token_j"].n == 0
    assert summary.metrics["dynamic_energy_per_output_token_j"].mean is None


def test_groups_follow_first_appearance_of_model_then_config() -> None:
    rows = [row("1", "b", "x", 1, 1.0), row("2", "a", "y", 1, 1.0), row("3", "a", "x", 1, 1.0)]
    assert [(s.model, s.config_name) for s in summarise(rows, "s")] == \
        [("b", "x"), ("a", "x"), ("a", "y")]


# ------------------------------------------------------------------------ plot data

def test_pareto_front_on_a_literal_set() -> None:
    # (throughput, energy): C is beaten by B, B by E, A by F
    points = [(100, 1.0), (200, 2.0), (150, 2.5), (50, 0.5), (200, 1.5), (120, 1.0)]
    assert pareto_front(points) == [3, 5, 4]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0, 1]  # ties dominate nothing


def test_controlled_suite_plots_each_varying_variable_per_model() -> None:
    plots = {p.name: p for p in build_plot_data(summarise(demo_rows(), "s"), "s")}
    assert set(plots) == {"s_energy_per_token_vs_batch_size", "s_throughput_vs_batch_size",
                          "s_energy_per_token_vs_decoder_mode",
                          "s_throughput_vs_decoder_mode", "s_pareto"}
    batch = plots["s_energy_per_token_vs_batch_size"]
    assert [(s.label, s.x) for s in batch.series] == [("models/a", [4, 8]),
                                                       ("models/b", [4, 8])]
    assert batch.series[1].y[0] == pytest.approx(0.02 * 1.02)  # cycle 1 of model a is flagged
    decoder = plots["s_throughput_vs_decoder_mode"]
    assert [s.x for s in decoder.series] == [["greedy", "sampling"]] * 2
    assert all(lo is not None and lo < y for s in decoder.series
               for y, lo in zip(s.y, s.ci_low, strict=True))


def test_grid_configs_split_series_by_the_other_variable() -> None:
    rows = [row(f"{bs}{p}", "m", f"batch_size_{bs}__precision_{p}", 1, 0.1 * bs,
                batch_size=str(bs), precision=p)
            for bs in (8, 32) for p in ("float16", "bfloat16")]
    plots = {p.name: p for p in build_plot_data(summarise(rows, "s"), "s")}
    series = plots["s_energy_per_token_vs_batch_size"].series
    assert [(s.label, s.x) for s in series] == [("m (precision=float16)", [8, 32]),
                                                 ("m (precision=bfloat16)", [8, 32])]
    assert [s.x for s in plots["s_energy_per_token_vs_precision"].series] == \
        [["float16", "bfloat16"]] * 2


def test_variables_differing_only_in_values_are_plotted_and_duplicates_split() -> None:
    rows = [row("1", "m", "chatbot", 1, 1.0, batch_size="1"),
            row("2", "m", "bulk", 1, 2.0, batch_size="32"),
            row("3", "m", "long", 1, 3.0, batch_size="1")]
    plots = {p.name: p for p in build_plot_data(summarise(rows, "s"), "s")}
    series = plots["s_energy_per_token_vs_batch_size"].series
    assert sorted((s.label, tuple(s.x)) for s in series) == [
        ("m [bulk]", (32,)), ("m [chatbot]", (1,)), ("m [long]", (1,))]


# ------------------------------------------------------------------------ files

def test_write_report_writes_tables_plots_and_one_self_contained_html(tmp_path: Path) -> None:
    rows = demo_rows()
    out = tmp_path / "reports"
    files = write_report(rows, "s", out, results_dir=tmp_path / "results")
    assert {p.name for p in files.plots} >= {"s_pareto", "s_energy_per_token_vs_batch_size"}
    for plot in files.plots:
        data = plot.path.read_bytes()
        assert plot.path.parent == out / "plots"
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1024

    with files.summary_csv.open(newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == 8
    assert summary[0]["energy_per_output_token_j_n"] == "2"  # cycle 1 flagged
    assert summary[0]["flagged_ids"] == "0001"
    low, high = (float(summary[1][f"energy_per_output_token_j_ci_{k}"]) for k in ("low", "high"))
    assert low < float(summary[1]["energy_per_output_token_j_mean"]) < high

    md = files.summary_md.read_text()
    assert "excluded from the statistics" in md and "0001 (models/a / batch_size_4)" in md
    assert "randomised" not in md

    assert list(out.glob("*.html")) == [files.html]
    page = files.html.read_text()
    assert page.count("data:image/png;base64,") == len(files.plots)
    assert "<link" not in page and "<script" not in page and "http" not in page
    for r in rows:
        eid = r["experiment_id"]
        assert f'href="../results/raw_results/{eid}/{eid}_7_global_energy_results.json"' in page


def test_pareto_plot_data_marks_the_non_dominated_configs(tmp_path: Path) -> None:
    files = write_report(demo_rows(), "s", tmp_path)
    pareto = next(p for p in files.plots if p.name == "s_pareto")
    assert [len(s.x) for s in pareto.series] == [4, 4]
    # energy grows and throughput falls with the config index: the cheapest of each
    # model (batch_size_4) beats the rest, and model a's beats model b's
    assert pareto.front is not None and pareto.front.configs == ["models/a / batch_size_4"]


def test_randomised_order_is_mentioned_only_when_a_seed_is_known(tmp_path: Path) -> None:
    files = write_report(demo_rows(), "s", tmp_path / "a", cycle_order_seed=42)
    assert "randomised order (cycle_order_seed 42)" in files.summary_md.read_text()
    assert "randomised order (cycle_order_seed 42)" in files.html.read_text()
    rows = demo_rows()
    for r in rows:
        r["cycle_order_seed"] = "7"
    files = write_report(rows, "s", tmp_path / "b")
    assert "cycle_order_seed 7" in files.summary_md.read_text()


def test_report_from_a_csv_file_links_relative_to_its_results_folder(tmp_path: Path) -> None:
    results = tmp_path / "results"
    path = results / "text_generation_results.csv"
    for r in demo_rows()[:8]:
        append_row(path, r, CSV_COLUMNS)
    files = write_report(path, "s", tmp_path / "out" / "deep")
    assert "../../results/raw_results/0002/0002_7_global_energy_results.json" in \
        files.html.read_text()
    assert files.summaries[0].metrics["flops_per_j"].n == 0  # its only run is flagged
    assert math.isclose(files.summaries[1].metrics["flops_per_j"].mean or 0, 1e9)


def test_missing_csv_or_suite_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(JoulebenchError, match="not found"):
        write_report(tmp_path / "nope.csv", "s", tmp_path)
    with pytest.raises(JoulebenchError, match="no results for suite 'other'"):
        write_report(demo_rows(), "other", tmp_path)
    with pytest.raises(JoulebenchError, match="no results for suite 's'"):
        write_report([], "s", tmp_path)


def test_importing_the_report_pulls_in_neither_matplotlib_nor_torch() -> None:
    code = ("import sys, joulebench.results.report, joulebench.results.plots; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_estimates_are_used_and_labelled_other_flags_exclude() -> None:
    rows = [row("0001", "m", "c", 1, 1.0, flags="estimate_only"),
            row("0002", "m", "c", 2, 3.0, flags="dynamic_within_baseline_noise;estimate_only"),
            row("0003", "m", "c", 3, 9.0, flags="estimate_only;window_too_short")]
    (summary,) = summarise(rows, "s")
    assert summary.experiment_ids == ["0001", "0002"]
    assert summary.flagged == {"0003": "window_too_short"}
    assert summary.metrics["energy_per_output_token_j"].mean == 2.0
