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
from joulebench.results.cycles import cycle_disagreement
from joulebench.results.plots import build_plot_data, draw, error_bars, field_label, pareto_front
from joulebench.results.report import summarise, write_report
from joulebench.results.stats import (
    describe,
    fmt_mean_ci,
    mad_outliers,
    t_quantile_975,
    to_float,
)
from joulebench.results.variables import Variable, row_variables

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def row(
    eid: str,
    model: str,
    config: str,
    cycle: int,
    energy: float | None,
    throughput: float = 100.0,
    flags: str = "",
    suite: str = "s",
    **controls: str,
) -> dict[str, str]:
    """A CSV row as read_rows gives it: every column a string, empty when missing."""
    out = dict.fromkeys(CSV_COLUMNS, "")
    out.update(
        {
            "experiment_id": eid,
            "key": f"{model}::{suite}::{config}::{cycle}",
            "suite": suite,
            "model": model,
            "config_name": config,
            "cycle": str(cycle),
            "energy_per_output_token_j": "" if energy is None else repr(energy),
            "throughput_output_tokens_per_s": repr(throughput),
            "request_latency_p50_s": "0.5",
            "request_latency_p95_s": "0.9",
            "output_tokens_per_j": "" if not energy else repr(1 / energy),
            "flops_per_j": "1e9",
            "quality_flags": flags,
            "batch_size": "8",
            "precision": "float32",
            "decoder_mode": "greedy",
            "num_processes": "1",
        }
    )
    out.update(controls)
    return out


def demo_rows() -> list[dict[str, str]]:
    """Two models x (batch 4, batch 8, greedy, sampling) x 3 cycles; one run flagged."""
    rows, n = [], 0
    configs = {
        "batch_size_4": {"batch_size": "4"},
        "batch_size_8": {},
        "decoder_greedy": {},
        "decoder_sampling": {"decoder_mode": "sampling"},
    }
    for cycle in (1, 2, 3):
        for m, model in enumerate(("models/a", "models/b")):
            for c, (config, controls) in enumerate(configs.items()):
                n += 1
                energy = 0.01 * (1 + m) * (1 + c) * (1 + 0.01 * cycle)
                rows.append(
                    row(
                        f"{n:04d}",
                        model,
                        config,
                        cycle,
                        energy,
                        throughput=1000.0 / (1 + c) / (1 + m) + cycle,
                        **controls,
                    )
                )
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


@pytest.mark.parametrize(
    ("df", "expected"),
    [
        (1, 12.7062),
        (2, 4.3027),
        (3, 3.1824),
        (5, 2.5706),
        (10, 2.2281),
        (20, 2.0860),
        (30, 2.0423),
        (31, 2.0395),
        (60, 2.0003),
        (120, 1.9799),
        (1000, 1.9623),
        (10**7, 1.9600),
    ],
)
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
    assert [to_float(v) for v in ("1.5", "", " ", "nan", "inf", "x", None)] == [
        1.5,
        None,
        None,
        None,
        None,
        None,
        None,
    ]


# ------------------------------------------------------------------------ summaries


def test_flagged_rows_are_excluded_and_listed_and_outliers_only_flagged() -> None:
    rows = [row(f"{i:04d}", "m", "batch_size_8", i, e) for i, e in enumerate([1, 2, 3, 4], 1)]
    rows.append(row("0005", "m", "batch_size_8", 5, 100.0, flags="short_window"))
    rows += [
        row(f"1{i:03d}", "m", "batch_size_16", i, e)
        for i, e in enumerate([1.0, 1.01, 0.99, 1.0, 3.0], 1)
    ]
    rows.append(row("9999", "m", "batch_size_8", 1, 7.0, suite="other"))
    first, second = summarise(rows, "s")
    energy = first.metrics["energy_per_output_token_j"]
    assert (energy.n, energy.mean) == (4, pytest.approx(2.5))
    assert first.flagged == {"0005": "short_window"}
    assert first.experiment_ids == ["0001", "0002", "0003", "0004"]
    assert first.outliers == []
    assert second.outliers == ["1005"]
    assert second.metrics["energy_per_output_token_j"].n == 5  # flagged, not removed
    # both configs record batch size 8 (row()'s default): no field varies, none is tabulated
    assert (first.variables, second.variables) == ({}, {})


def test_missing_metric_values_give_n_zero() -> None:
    (summary,) = summarise([row("0001", "m", "c", 1, 1.0), row("0002", "m", "c", 2, 2.0)], "s")
    assert summary.metrics["dynamic_energy_per_output_token_j"].n == 0
    assert summary.metrics["dynamic_energy_per_output_token_j"].mean is None


def test_groups_follow_first_appearance_of_model_then_config() -> None:
    rows = [row("1", "b", "x", 1, 1.0), row("2", "a", "y", 1, 1.0), row("3", "a", "x", 1, 1.0)]
    assert [(s.model, s.config_name) for s in summarise(rows, "s")] == [
        ("b", "x"),
        ("a", "x"),
        ("a", "y"),
    ]


# ------------------------------------------------------------------------ plot data


def test_pareto_front_on_a_literal_set() -> None:
    # (throughput, energy): C is beaten by B, B by E, A by F
    points = [(100, 1.0), (200, 2.0), (150, 2.5), (50, 0.5), (200, 1.5), (120, 1.0)]
    assert pareto_front(points) == [3, 5, 4]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0, 1]  # ties dominate nothing


def test_controlled_suite_plots_each_varying_variable_per_model() -> None:
    rows = demo_rows()
    plots = {p.name: p for p in build_plot_data(summarise(rows, "s"), "s", row_variables(rows))}
    assert set(plots) == {
        "s_energy_per_token_vs_batch_size",
        "s_throughput_vs_batch_size",
        "s_energy_per_token_vs_decoder_mode",
        "s_throughput_vs_decoder_mode",
        "s_pareto",
    }
    batch = plots["s_energy_per_token_vs_batch_size"]
    assert [(s.label, s.x) for s in batch.series] == [("models/a", [4, 8]), ("models/b", [4, 8])]
    assert batch.series[1].y[0] == pytest.approx(0.02 * 1.02)  # cycle 1 of model a is flagged
    decoder = plots["s_throughput_vs_decoder_mode"]
    assert [s.x for s in decoder.series] == [["greedy", "sampling"]] * 2
    assert all(
        lo is not None and lo < y
        for s in decoder.series
        for y, lo in zip(s.y, s.ci_low, strict=True)
    )


def test_grid_configs_split_series_by_the_other_variable() -> None:
    rows = [
        row(
            f"{bs}{p}",
            "m",
            f"batch_size_{bs}__precision_{p}",
            1,
            0.1 * bs,
            batch_size=str(bs),
            precision=p,
        )
        for bs in (8, 32)
        for p in ("float16", "bfloat16")
    ]
    plots = {p.name: p for p in build_plot_data(summarise(rows, "s"), "s", row_variables(rows))}
    series = plots["s_energy_per_token_vs_batch_size"].series
    assert [(s.label, s.x) for s in series] == [
        ("m (precision=float16)", [8, 32]),
        ("m (precision=bfloat16)", [8, 32]),
    ]
    assert [s.x for s in plots["s_energy_per_token_vs_precision"].series] == [
        ["float16", "bfloat16"]
    ] * 2


def test_variables_differing_only_in_values_are_plotted_and_duplicates_split() -> None:
    rows = [
        row("1", "m", "chatbot", 1, 1.0, batch_size="1"),
        row("2", "m", "bulk", 1, 2.0, batch_size="32"),
        row("3", "m", "long", 1, 3.0, batch_size="1"),
    ]
    plots = {p.name: p for p in build_plot_data(summarise(rows, "s"), "s", row_variables(rows))}
    series = plots["s_energy_per_token_vs_batch_size"].series
    assert sorted((s.label, tuple(s.x)) for s in series) == [
        ("m [bulk]", (32,)),
        ("m [chatbot]", (1,)),
        ("m [long]", (1,)),
    ]


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
    assert (
        "../../results/raw_results/0002/0002_7_global_energy_results.json" in files.html.read_text()
    )
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
    code = (
        "import sys, joulebench.results.report, joulebench.results.plots; "
        "print(sorted(m for m in ('matplotlib', 'torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_estimates_are_used_and_labelled_other_flags_exclude() -> None:
    rows = [
        row("0001", "m", "c", 1, 1.0, flags="estimate_only"),
        row("0002", "m", "c", 2, 3.0, flags="dynamic_within_baseline_noise;estimate_only"),
        row("0003", "m", "c", 3, 9.0, flags="estimate_only;window_too_short"),
    ]
    (summary,) = summarise(rows, "s")
    assert summary.experiment_ids == ["0001", "0002"]
    assert summary.flagged == {"0003": "window_too_short"}
    assert summary.metrics["energy_per_output_token_j"].mean == 2.0


# ------------------------------------------------------------------------ issue 12: report


def test_mean_and_ci_print_at_one_precision() -> None:
    assert fmt_mean_ci(0.008, 0.009221) == "0.0080 ± 0.0092"
    assert fmt_mean_ci(123.456, 7.89) == "123.5 ± 7.9"
    assert fmt_mean_ci(1.5e9, 2.34e7) == "(1.500 ± 0.023)e9"
    assert fmt_mean_ci(2315.4, 7022.0) == "2300 ± 7000"  # seen in the demo as "2315 ± 7022"
    assert fmt_mean_ci(123.456, 17.9) == "123 ± 18"
    assert fmt_mean_ci(0.5, None) == "0.5"  # n = 1: no interval, the mean alone


def test_intervals_of_nonnegative_metrics_stop_at_zero() -> None:
    # mean 0.0105, half-width 12.7 * 0.0134 / sqrt(2) ~ 0.12: the raw interval reaches -0.11
    assert describe([0.001, 0.02], lower_bound=0.0).ci_low == 0.0
    assert describe([0.001, 0.02]).ci_low < 0  # dynamic energy may be negative: no floor
    rows = [
        row("1", "m", "c", 1, 0.001, dynamic_energy_per_output_token_j="-0.01"),
        row("2", "m", "c", 2, 0.02, dynamic_energy_per_output_token_j="0.01"),
    ]
    (s,) = summarise(rows, "s")
    assert s.metrics["energy_per_output_token_j"].ci_low == 0.0
    assert s.metrics["dynamic_energy_per_output_token_j"].ci_low < 0


def grid_rows() -> list[dict[str, str]]:
    return [
        row(
            f"{t}{o}{c}",
            "m",
            f"temperature_{t}__max_output_tokens_{o}",
            c,
            0.01 * o * (1 + 0.01 * c),
            throughput=100.0 / o,
            temperature=t,
            max_output_tokens=str(o),
            decoder_mode="sampling",
        )
        for t in ("0.5", "1.5")
        for o in (16, 64)
        for c in (1, 2, 3)
    ]


def test_every_varied_field_gets_a_summary_column_and_plots(tmp_path: Path) -> None:
    files = write_report(grid_rows(), "s", tmp_path)
    assert [v.path for v in files.variables] == ["max_output_tokens", "decoder.temperature"]
    with files.summary_csv.open(newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert [(r["decoder.temperature"], r["max_output_tokens"]) for r in summary] == [
        ("0.5", "16"),
        ("0.5", "64"),
        ("1.5", "16"),
        ("1.5", "64"),
    ]
    names = {p.name for p in files.plots}
    assert {
        "s_energy_per_token_vs_max_output_tokens",
        "s_throughput_vs_decoder_temperature",
        "s_pareto",
    } <= names
    tokens = next(p for p in files.plots if p.name == "s_energy_per_token_vs_max_output_tokens")
    assert tokens.x_label == "max output length (tokens)" and tokens.numeric
    assert [s.label for s in tokens.series] == [
        "m (decoder.temperature=0.5)",
        "m (decoder.temperature=1.5)",
    ]
    assert tokens.series[0].n == [3, 3]
    md = files.summary_md.read_text()
    assert "Varied fields: max_output_tokens, decoder.temperature." in md


def test_plots_are_png_and_svg_from_zero_with_categories_unjoined(tmp_path: Path) -> None:
    files = write_report(demo_rows(), "s", tmp_path)
    for plot in files.plots:
        assert plot.svg_path == plot.path.with_suffix(".svg")
        assert b"<svg" in plot.svg_path.read_bytes()[:1000]
    decoder = next(p for p in files.plots if p.name == "s_energy_per_token_vs_decoder_mode")
    assert not decoder.numeric and decoder.x_label == "decoding mode"
    ax = draw(decoder).axes[0]
    highest = max(hi for s in decoder.series for hi in s.ci_high if hi is not None)
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > highest  # no bar cut by the frame
    assert {line.get_linestyle() for line in ax.get_lines() if len(line.get_xdata()) > 1} <= {
        "None"
    }  # points, never a line through categories
    assert sum(t.get_text().startswith("n=") for t in ax.texts) == 4  # 2 models x 2 modes
    batch = next(p for p in files.plots if p.name == "s_energy_per_token_vs_batch_size")
    assert "-" in {line.get_linestyle() for line in draw(batch).axes[0].get_lines()}


def test_error_bars_never_reach_below_zero() -> None:
    assert error_bars([0.01, 5.0], [-0.02, 4.0], [0.04, None]) == [[0.01, 1.0], [0.03, 0.0]]


def test_axis_labels_are_words_with_units() -> None:
    assert field_label("batch_size") == "batch size (prompts per generate call)"
    assert field_label("idle_baseline_s") == "idle baseline (s)"
    assert field_label("cooldown_temp_c") == "cooldown temp (°C)"
    assert field_label("decoder.top_k") == "top-k (tokens kept)"


def test_archived_runs_are_not_pooled_and_are_marked(tmp_path: Path) -> None:
    old = [row(f"000{c}", "m", "c", c, 1.0 + c) for c in (1, 2)]  # before --fresh
    new = [row("0003", "m", "c", 1, 5.0)]  # the rerun of cycle 1, a new ID
    current = {"m::s::c::1": "0003"}
    files = write_report(old + new, "s", tmp_path, current_ids=current)
    (summary,) = files.summaries
    assert summary.experiment_ids == ["0003"] and summary.archived == ["0001", "0002"]
    assert summary.metrics["energy_per_output_token_j"].n == 1
    assert files.archived_runs == 2
    with files.summary_csv.open(newline="") as handle:
        (record,) = csv.DictReader(handle)
    assert (record["n_used"], record["n_archived"], record["archived_ids"]) == (
        "1",
        "2",
        "0001;0002",
    )
    with files.runs_csv.open(newline="") as handle:
        status = {r["experiment_id"]: r["status"] for r in csv.DictReader(handle)}
    assert status == {"0001": "archived", "0002": "archived", "0003": "used"}
    assert "2 archived run(s)" in files.summary_md.read_text()
    assert 'class="archived"' in files.html.read_text()


def test_a_suite_with_only_archived_runs_says_so(tmp_path: Path) -> None:
    with pytest.raises(JoulebenchError, match=r"no current results for suite 's' \(1 archived"):
        write_report([row("0001", "m", "c", 1, 1.0)], "s", tmp_path, current_ids={})


def test_header_and_each_config_say_how_energy_was_measured(tmp_path: Path) -> None:
    rows = [
        row(
            "1",
            "m",
            "a",
            1,
            1.0,
            energy_meter="codecarbon",
            energy_method="estimate",
            energy_is_estimate="True",
            flags="estimate_only",
        ),
        row(
            "2",
            "m",
            "b",
            1,
            1.0,
            energy_meter="nvml",
            energy_method="counter",
            energy_is_estimate="False",
        ),
    ]
    files = write_report(rows, "s", tmp_path)
    a, b = files.summaries
    assert (a.energy_meter, a.energy_method, a.energy_is_estimate) == (
        "codecarbon",
        "estimate",
        "yes",
    )
    assert (b.energy_meter, b.energy_is_estimate) == ("nvml", "no")
    md = files.summary_md.read_text()
    assert (
        "codecarbon (estimate; a model-based estimate, not a sensor reading) for 1 of 2 "
        "configs" in md
    )
    assert "| codecarbon (estimate) |" in md and "| nvml (counter) |" in md
    assert "0 quality-flagged run(s) excluded" in md  # estimate_only labels, never excludes


def test_cycles_several_fold_apart_flag_the_config_with_the_load_seen() -> None:
    rows = [
        row("0001", "m", "c", 1, 0.01, others_cpu_share="0.02"),
        row("0002", "m", "c", 2, 0.012, others_cpu_share="0.05"),
        row("0003", "m", "c", 3, 0.09, throughput=12.0, others_cpu_share="0.7"),
        row("0004", "m", "calm", 1, 0.01),
        row("0005", "m", "calm", 2, 0.025),
    ]
    unstable, calm = summarise(rows, "s")
    assert unstable.config_flags == ["unstable_across_cycles"]
    assert unstable.experiment_ids == ["0001", "0002", "0003"]  # flagged, not dropped
    assert unstable.cycle_notes == [
        "energy_per_output_token_j 9.0x apart (0001: 0.01, 0003: 0.09)",
        "throughput_output_tokens_per_s 8.3x apart (0003: 12, 0001: 100)",
        "node shared during 0003 (other work took 70% of its CPU time)",
    ]
    assert calm.config_flags == []  # 2.5x: within what the threshold lets through


def test_unstable_cycles_say_when_the_cpu_was_quiet_or_not_recorded() -> None:
    quiet = [
        row("1", "m", "c", 1, 1.0, others_cpu_share="0.01"),
        row("2", "m", "c", 2, 4.0, others_cpu_share="0.1"),
    ]
    assert cycle_disagreement(quiet)[-1].startswith("no other work seen on the node's CPUs")
    old = [row("1", "m", "c", 1, 1.0), row("2", "m", "c", 2, 4.0)]
    assert cycle_disagreement(old)[-1].startswith("CPU share of other work not recorded")
    assert cycle_disagreement([row("1", "m", "c", 1, 1.0), row("2", "m", "c", 2, 2.9)]) == []


def test_the_unstable_flag_reaches_the_summary_csv_and_pages(tmp_path: Path) -> None:
    rows = [row("0001", "m", "c", 1, 0.01), row("0002", "m", "c", 2, 0.1)]
    files = write_report(rows, "s", tmp_path)
    with files.summary_csv.open(newline="") as handle:
        (record,) = csv.DictReader(handle)
    assert record["config_flags"] == "unstable_across_cycles"
    md = files.summary_md.read_text()
    assert "1 config(s) unstable across cycles" in md
    assert "## Unstable across cycles (flagged, still included): 1" in md


def test_a_suite_edited_since_the_runs_falls_back_to_the_csv(tmp_path: Path) -> None:
    rows = grid_rows()
    stale = Variable("batch_size", {("m", "batch_size_1"): 1, ("m", "batch_size_4"): 4})
    files = write_report(rows, "s", tmp_path, variables=[stale])
    assert [v.path for v in files.variables] == ["max_output_tokens", "decoder.temperature"]
    known = Variable(
        "max_output_tokens", {("m", r["config_name"]): int(r["max_output_tokens"]) for r in rows}
    )
    files = write_report(rows, "s", tmp_path, variables=[known])
    assert [v.path for v in files.variables] == ["max_output_tokens"]  # the suite's word wins
