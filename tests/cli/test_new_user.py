"""What a new user meets first: closed pipes, Ctrl-C, hints that fit, -h, the executor
choice, `run` twice, piped progress, backups and stale socket folders.

The runs here are real (accelerate workers on CPU, the tiny model) and go through the
commands a user types; only the executor choice is unit-tested with a patched PATH.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from joulebench import api
from joulebench.schedulers import executors
from joulebench.tracker import KeyRecord, ProgressTracker, TrackerState
from tests.conftest import wait_for, write_suite

QUICK = """
models: [tiny-demo]
shuffle: false
overrides:
  num_processes: 1
  warmup_iterations: 0
  energy_meter: codecarbon
  idle_baseline_s: 0
  max_input_tokens: 64
  num_prompts: 4
  batch_size: 4
  max_output_tokens: 4
  min_output_tokens: 4
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "joulebench", *args]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=600)


def failed_rows(root: Path) -> list[dict[str, str]]:
    path = root / "results" / "failed_experiments.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_closed_pipe_ends_quietly_not_as_an_internal_error(checkout: Path) -> None:
    # More than a pipe buffer of output, so the writer meets the closed pipe.
    shell = (
        f"{sys.executable} -m joulebench submit-suite demo --cycles 400 --dry-run "
        '--executor local | head -1; echo "rc=${PIPESTATUS[0]}" >&2'
    )
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("1600 experiments"), done.stdout
    assert done.stderr.strip().splitlines()[-1] == "rc=141", done.stderr
    assert "Internal error" not in done.stderr and "BrokenPipe" not in done.stderr
    assert not (checkout / "logs" / "joulebench-internal-error.log").exists()


@pytest.mark.e2e
def test_ctrl_c_exits_130_and_records_the_interrupted_attempt(checkout: Path) -> None:
    write_suite(
        checkout,
        "long",
        QUICK.replace("max_output_tokens: 4", "max_output_tokens: 400")
        .replace("min_output_tokens: 4", "min_output_tokens: 400")
        .replace("num_prompts: 4", "num_prompts: 32"),
    )
    proc = subprocess.Popen(
        cli("submit-suite", "long", "--executor", "local"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(
        lambda: any(work.glob("ckpt_rank*.json")) or proc.poll() is not None,
        300,
        "the experiment to start generating",
    )
    assert proc.poll() is None, "finished before Ctrl-C; make the suite longer"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    rows = failed_rows(checkout)
    assert [(r["experiment_id"], r["cause"]) for r in rows] == [("0001", "interrupted")]
    status = run_cli("status", "long").stdout
    assert "failed:interrupted" in status


@pytest.mark.e2e
def test_a_refused_config_gets_the_fix_not_a_resume_hint_and_piped_progress_counts(
    checkout: Path,
) -> None:
    # A window can only be measured once run: the worker refuses it, as config_error.
    write_suite(checkout, "short", QUICK + "configs:\n  ok: {}\n  tooshort: {min_window_s: 900}\n")
    done = run_cli("submit-suite", "short", "--executor", "local")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[config_error]" in done.stderr and "min_window_s" in done.stderr
    assert "Fix the config named above, then rerun: submit-suite short" in done.stderr
    assert "resume-failed" not in done.stderr
    # Piped output: no frozen, truncated bar; each outcome line says how far along it is.
    assert "[1/2] " in done.stdout and "[2/2] " in done.stdout, done.stdout
    assert "…" not in done.stdout and "0:0" not in done.stdout
    assert "suite short: 2 experiments, 0 already done, 2 to run" in done.stdout
    assert [r["cause"] for r in failed_rows(checkout)] == ["config_error"]


@pytest.mark.e2e
def test_run_twice_says_it_adds_a_cycle(checkout: Path) -> None:
    config = checkout / "one.yaml"
    config.write_text(
        "model: models/tiny-llama\ndevice: cpu\nnum_prompts: 2\nbatch_size: 2\n"
        "max_output_tokens: 2\nwarmup_iterations: 0\nidle_baseline_s: 0\n"
        "energy_meter: codecarbon\n"
    )
    first = run_cli("run", "one.yaml")
    assert first.returncode == 0, first.stderr
    assert "cycle 1 of one.yaml" in first.stderr and "adds a cycle" not in first.stderr
    second = run_cli("run", "one.yaml")
    assert second.returncode == 0, second.stderr
    assert (
        "models/tiny-llama::single::one::2: cycle 2 of one.yaml (each run of the same "
        "file adds a cycle)" in second.stderr
    )
    assert "experiment 0002 done" in second.stdout


@pytest.mark.parametrize("program", ["submit-suite", "resume-failed", "joulebench"])
def test_dash_h_works_for_every_program(program: str) -> None:
    from joulebench.cli import commands
    from joulebench.cli.main import cli as group

    command = {
        "submit-suite": commands.submit_suite,
        "resume-failed": commands.resume_failed,
        "joulebench": group,
    }[program]
    result = CliRunner().invoke(command, ["-h"], prog_name=program)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {program}")


def test_executor_auto_says_which_it_chose_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors, "sbatch_on_path", lambda: False)
    assert api.choose_executor("auto") == (
        "local",
        "executor: local (--executor auto found no sbatch on PATH)",
    )
    monkeypatch.setattr(executors, "sbatch_on_path", lambda: True)
    name, note = api.choose_executor("auto")
    assert name == "slurm" and note is not None and "found sbatch on PATH" in note
    assert api.choose_executor("local") == ("local", None)


def _record(key: str, job_id: str | None, at: str) -> KeyRecord:
    return KeyRecord(key, state="failed", suite="s", job_id=job_id, updated_at=at)


def test_resume_failed_defaults_to_where_the_suite_last_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slurm_then_local = [
        _record("a", "123_4", "2026-01-01T00:00:00"),
        _record("b", "local-99", "2026-01-02T00:00:00"),
    ]
    assert api.last_executor(slurm_then_local) == "local"
    assert api.last_executor(slurm_then_local[:1]) == "slurm"
    assert api.last_executor([_record("c", None, "2026-01-01")]) is None
    state = TrackerState(keys={r.key: r for r in slurm_then_local[:1]})
    monkeypatch.setattr(executors, "sbatch_on_path", lambda: True)
    name, note = api._resume_executor("auto", "s", state)
    assert name == "slurm" and note is not None and "where 's' last ran" in note
    assert api._resume_executor("local", "s", state) == ("local", None)
    monkeypatch.setattr(executors, "sbatch_on_path", lambda: False)
    with pytest.raises(api.ConfigError, match="last ran on Slurm but sbatch is not on PATH"):
        api._resume_executor("auto", "s", state)


def test_backups_only_when_something_changes_and_only_the_newest_kept(checkout: Path) -> None:
    write_suite(checkout, "quick", QUICK)
    tracker_dir = checkout / "persistent_progress_trackers"
    specs = api.expand_suite("quick")
    tracker = ProgressTracker(tracker_dir)
    tracker.register("quick", [(s.key, s.config_hash) for s in specs])
    for spec in specs:  # as a finished run leaves it
        claim = tracker.claim(spec.key, spec.config_hash, suite="quick", cycle=1)
        tracker.complete(spec.key, claim.experiment_id)
    backups = tracker_dir / "backups"
    summary = api.submit_suite("quick", executor="local")
    assert summary.already_done == 1 and not summary.to_run
    assert not backups.exists() or not any(backups.iterdir())  # a no-op writes nothing
    for _ in range(api.BACKUPS_KEPT + 3):
        tracker.backup(keep=api.BACKUPS_KEPT)
    assert len(list(backups.glob("progress_backup_*.json"))) == api.BACKUPS_KEPT
    assert len(list(backups.glob("tracker_state_backup_*.json"))) == api.BACKUPS_KEPT


def test_stale_socket_folders_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    from joulebench.runner.pool import SOCKET_DIR_PREFIX, remove_stale_socket_dirs

    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = tmp_path / f"{SOCKET_DIR_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{SOCKET_DIR_PREFIX}{os.getpid()}-def"
    unrelated = tmp_path / f"{SOCKET_DIR_PREFIX}notapid"
    for folder in (gone, live, unrelated):
        folder.mkdir()
        (folder / "w0.sock").write_text("")
    assert remove_stale_socket_dirs(str(tmp_path)) == [gone]
    assert not gone.exists() and live.exists() and unrelated.exists()


def test_a_finished_suite_shows_no_pace_and_counts_read_as_words() -> None:
    from joulebench.cli.progress import eta_line
    from joulebench.schedulers.monitor import Eta
    from joulebench.wording import plural

    assert eta_line(Eta(8, 8, 16.7, 0.0)) == "all 8 done"
    assert eta_line(Eta(3, 8, 60.0, 300.0)) == "3/8 done, 60.0/h recently, ETA 0:05:00"
    assert eta_line(Eta(0, 8, None, None)) == "0/8 done, pace unknown yet"
    assert [
        plural(1, "key"),
        plural(2, "key"),
        plural(1, "process", "processes"),
        plural(3, "process", "processes"),
    ] == ["1 key", "2 keys", "1 process", "3 processes"]


def test_slurm_style_flags_are_validated_like_time() -> None:
    from joulebench.errors import ConfigError
    from joulebench.schedulers.slurm_options import CLI_SOURCE, options_from_mapping

    ok = options_from_mapping(
        {
            "mem": "32G",
            "partition": "gpu,urgent",
            "qos": "high",
            "account": "proj-42",
            "constraint": "a100|h100",
        },
        CLI_SOURCE,
    )
    assert ok.mem == "32G" and ok.constraint == "a100|h100"
    assert options_from_mapping({"mem": "0"}, CLI_SOURCE).mem == "0"
    for key, value in [
        ("mem", "lots"),
        ("mem", "32 G"),
        ("mem", "-1G"),
        ("partition", "gpu;x"),
        ("account", "a/b"),
        ("constraint", "a100$(x)"),
    ]:
        with pytest.raises(ConfigError, match=f"--{key}"):
            options_from_mapping({key: value}, CLI_SOURCE)
