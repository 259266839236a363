"""The CLI: fast --help without torch, one-line errors with exit 2 and nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_suite

COMMANDS = [
    [],
    ["submit-suite"],
    ["status"],
    ["resume-failed"],
    ["run"],
    ["make-demo-model"],
    ["show"],
    ["report"],
    ["serve"],
]


def jb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joulebench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example_and_imports_no_torch(command: list[str]) -> None:
    probe = (
        "import sys\nfrom joulebench.cli.main import cli\n"
        f"try:\n    cli({[*command, '--help']!r})\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    ).stdout
    assert "Example" in out
    assert out.strip().endswith("NO-TORCH")


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(
    "args, suite_text, match",
    [
        (["submit-suite", "nope"], None, "suite 'nope' not found"),
        (["submit-suite", "../x"], None, "may only hold letters"),
        (
            ["submit-suite", "bad"],
            "models: [tiny-demo]\ncontrolled: {batch_size: [0]}\n",
            "field 'batch_size'",
        ),
        (["submit-suite", "bad"], "models: [tiny-demo\n", "YAML syntax error"),
        (
            ["submit-suite", "bad"],
            "models: [tiny-demo]\noverrides: {model: missing/dir}\n",
            "model 'missing/dir' is not in the local Hugging Face cache",
        ),
        (
            ["submit-suite", "bad"],
            "models: [tiny-demo]\noverrides: {dataset: {name: no.jsonl}}\n",
            "dataset.name file no.jsonl not found",
        ),
        (
            ["submit-suite", "bad"],
            "models: [tiny-demo]\noverrides: {quantization: int8}\n",
            "quantization",
        ),
        (["run", "missing.yaml"], None, "missing.yaml: file not found"),
        (["show", "../0001"], None, "is not a number like 0042"),
        (["show", "0099"], None, "0099_1_experiment_setup.json: not found"),
        (["show", "99"], None, "0099_1_experiment_setup.json: not found"),
        (["report", "demo"], None, "no *_results.csv yet"),
        (["report", "../demo"], None, "may only hold letters"),
        (["resume-failed", "demo", "--cause", "bogus"], None, "Invalid value for '--cause'"),
        (["status", "demoo"], None, "suite 'demoo' not found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    checkout: Path, args: list[str], suite_text: str | None, match: str
) -> None:
    if suite_text is not None:
        write_suite(checkout, "bad", suite_text)
    if args[0] == "submit-suite":
        args = [*args, "--executor", "local"]  # never reach a Slurm that CI may have started
    before = snapshot(checkout)
    result = jb(*args, cwd=checkout)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or "Usage:" in result.stderr
    assert match in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(checkout) == before


def fake_hub_cache(root: Path, *repos: str) -> Path:
    """A Hugging Face cache holding just the config.json of each repo, as `hf download`
    would lay it out: enough for the submission check to find the models."""
    for repo in repos:
        folder = root / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("0" * 40)
        snapshot = folder / "snapshots" / ("0" * 40)
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text('{"model_type": "llama"}')
    return root


def test_dry_run_prints_the_expansion_and_writes_nothing(
    checkout: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = ["TinyLlama/TinyLlama-1.1B-Chat-v1.0", "meta-llama/Llama-3.2-1B"]
    # Not downloaded: the dry run makes the real run's checks, so it refuses, naming both.
    refused = jb("submit-suite", "controlled", "--cycles", "2", "--dry-run", cwd=checkout)
    assert refused.returncode == 2
    assert all(f"hf download {repo}" in refused.stderr for repo in hub), refused.stderr
    monkeypatch.setenv("HF_HUB_CACHE", str(fake_hub_cache(tmp_path_factory.mktemp("hub"), *hub)))
    before = snapshot(checkout)
    result = jb("submit-suite", "controlled", "--cycles", "2", "--dry-run", cwd=checkout)
    assert result.returncode == 0, result.stderr
    assert "60 experiments, each cycle in a random order (order_seed 0):" in result.stdout
    assert "TinyLlama/TinyLlama-1.1B-Chat-v1.0::controlled::batch_size_1::1" in result.stdout
    assert snapshot(checkout) == before


def test_status_on_an_empty_checkout(checkout: Path) -> None:
    result = jb("status", cwd=checkout)
    assert result.returncode == 0 and "no experiments tracked" in result.stdout
    assert not (checkout / "persistent_progress_trackers").exists()


def test_status_of_a_known_suite_not_yet_submitted_is_not_an_error(checkout: Path) -> None:
    result = jb("status", "demo", cwd=checkout)
    assert result.returncode == 0, result.stderr
    assert not (checkout / "persistent_progress_trackers").exists()


def test_slurm_flags_with_the_local_executor_are_named_as_ignored(checkout: Path) -> None:
    result = jb(
        "submit-suite",
        "demo",
        "--dry-run",
        "--executor",
        "local",
        "--partition",
        "gpu",
        "--time",
        "02:00:00",
        cwd=checkout,
    )
    assert result.returncode == 0, result.stderr
    assert "Slurm options ignored by the local executor: partition, time" in result.stderr
    (checkout / "site.yaml").write_text("qos: high\n")
    profiled = jb(
        "submit-suite",
        "demo",
        "--dry-run",
        "--executor",
        "local",
        "--profile",
        "site.yaml",
        cwd=checkout,
    )
    assert "Slurm options ignored by the local executor: qos" in profiled.stderr


def test_console_script_aliases_exist() -> None:
    bindir = Path(sys.executable).parent
    for name in ("joulebench", "submit-suite", "resume-failed"):
        assert (bindir / name).exists(), name


def test_make_demo_model_builds_the_size_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import joulebench.runner.demo_model as demo
    from joulebench.cli.main import cli

    built: dict[str, object] = {}
    # The 1b build is real code with a 3.7 GB output: only the size wiring is checked here.
    monkeypatch.setattr(demo, "build_demo_model", lambda d, **shape: built.update(shape))
    out = CliRunner().invoke(cli, ["make-demo-model", "--size", "1b", str(tmp_path / "m")])
    assert out.exit_code == 0 and "1b demo model written" in out.output
    assert built == demo.SIZES["1b"] and built["layers"] == 22
    bad = jb("make-demo-model", "--size", "7b", str(tmp_path / "n"))
    assert bad.returncode == 2 and "'7b' is not one of 'tiny', '1b'" in bad.stderr
    assert not (tmp_path / "n").exists()


def test_status_and_report_print_the_same_flagged_count(tmp_path: Path) -> None:
    import shutil

    from joulebench import api
    from tests.test_api_report import REPO, run_fake

    shutil.copytree(REPO / "configs", tmp_path / "configs")
    paths = api.Paths(
        configs_dir=tmp_path / "configs",
        tracker_dir=tmp_path / "persistent_progress_trackers",
        results_dir=tmp_path / "results",
    )
    specs = api.expand_suite("demo", cycles=1, paths=paths)
    run_fake(paths, specs, {"batch_size_2": "estimate_only;window_too_short"})
    status = jb("status", "demo", "--no-sacct", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    (line,) = [x for x in status.stdout.splitlines() if x.startswith("│ demo")]
    assert line.split("│")[-2].strip() == "1"  # flagged: the CPU estimates are not
    report = jb("report", "demo", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "(1 flagged result kept apart, 0 archived runs not pooled" in report.stdout
    assert "varied: batch_size, decoder" in report.stdout


def test_status_survives_a_results_csv_that_is_not_utf8(checkout: Path) -> None:
    from joulebench import api
    from joulebench.tracker import ProgressTracker

    specs = api.expand_suite("demo")
    ProgressTracker(checkout / "persistent_progress_trackers").register(
        "demo", [(s.key, s.config_hash) for s in specs]
    )
    results = checkout / "results"
    results.mkdir()
    (results / "text_generation_results.csv").write_bytes(b"experiment_id,key\n0001,caf\xe9\n")
    done = jb("status", "demo", cwd=checkout)
    assert done.returncode == 0, done.stderr
    assert "text_generation_results.csv: not counted for flagged results" in done.stderr
    assert "Traceback" not in done.stderr and "│ demo" in done.stdout
