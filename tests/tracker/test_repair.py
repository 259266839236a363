"""Damaged tracker files: detected, refused with the recovery command, then repaired.

Every scenario checks the two promises: no progress silently reset (done keys keep
their IDs) and no experiment ID issued twice after the repair.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from joulebench.cli.main import cli
from joulebench.tracker import DONE, ProgressTracker
from joulebench.tracker.repair import check


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".tracker.lock"
    }


def _progress(folder: Path, done: int = 6, running: int = 2, compact: bool = True) -> dict:
    """A tracker with `done` finished keys and `running` claimed ones; returns key -> ID."""
    tracker = ProgressTracker(folder)
    keys = [f"m::s::c{i}::1" for i in range(done + running + 2)]
    tracker.register("s", [(k, "h") for k in keys])
    ids = {}
    for key in keys[: done + running]:
        ids[key] = tracker.claim(key, "h").experiment_id
    for key in keys[:done]:
        tracker.complete(key, ids[key])
    if compact:
        tracker.sync()
    tracker.close()
    return ids


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _assert_refused(folder: Path, needle: str) -> None:
    before = _tree(folder)
    code, out = _run("status", "--tracker-dir", str(folder), "--no-sacct")
    assert code == 2, out
    line = out.strip()
    assert "\n" not in line and needle in line and "joulebench tracker repair" in line
    assert _tree(folder) == before, "a refused load changed files"


def _assert_repaired(folder: Path, ids: dict, done: int = 6) -> None:
    code, out = _run(
        "tracker",
        "repair",
        "--tracker-dir",
        str(folder),
        "--results-dir",
        str(folder.parent / "results"),
    )
    assert code == 0, out
    assert list((folder / "damaged").iterdir()), "damaged files were not kept"
    state = ProgressTracker(folder).read()
    done_keys = list(ids)[:done]
    for key in done_keys:
        assert state.keys[key].state == DONE and state.keys[key].experiment_id == ids[key]
    fresh = ProgressTracker(folder).claim("m::s::new::1", "h").experiment_id
    assert fresh is not None and int(fresh) > max(int(i) for i in ids.values())
    assert check(folder) == []


def test_healthy_tracker_checks_clean(tmp_path: Path) -> None:
    _progress(tmp_path / "t")
    code, out = _run("tracker", "check", "--tracker-dir", str(tmp_path / "t"))
    assert code == 0 and "healthy" in out


def test_torn_last_journal_line_loads_without_repair(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    ids = _progress(folder, compact=False)
    with (folder / "journal.jsonl").open("ab") as handle:
        handle.write(b'{"ts":"x","op":"done","key":"m::s::c7')  # a write a crash cut
    state = ProgressTracker(folder).read()
    assert sum(r.state == DONE for r in state.keys.values()) == 6
    assert check(folder) == []
    next_id = ProgressTracker(folder).claim("m::s::c9::1", "h").experiment_id
    assert int(next_id or 0) == len(ids) + 1
    assert json.loads((folder / "journal.jsonl").read_text().splitlines()[-1])["op"] == "claim"


def test_garbage_progress_json_is_only_a_view_and_is_rewritten(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    ids = _progress(folder)
    (folder / "configs_run_progress.json").write_text("{ not json")
    state = ProgressTracker(folder).read()  # the snapshot and journal are the truth
    assert sum(r.state == DONE for r in state.keys.values()) == 6
    code, out = _run("tracker", "check", "--tracker-dir", str(folder))
    assert code == 2 and "configs_run_progress.json: damaged" in out
    _assert_repaired(folder, ids)
    progress = json.loads((folder / "configs_run_progress.json").read_text())
    assert sum(v is not None for v in progress.values()) == 6


def _seed_folder(folder: Path) -> dict[str, str]:
    """The original system's folder: three files and a seed-style backup."""
    folder.mkdir(parents=True)
    progress = {f"m::s::c{i}::1": f"{i + 1:04d}" for i in range(6)}
    progress.update({"m::s::c6::1": None, "m::s::c7::1": None})
    (folder / "configs_run_progress.json").write_text(json.dumps(progress, indent=2))
    (folder / "experiment_id.txt").write_text("8")
    (folder / "cycle_id.txt").write_text("1")
    (folder / "backups").mkdir()
    (folder / "backups" / "progress_backup_20260101_000000.json").write_text(
        json.dumps(progress, indent=2)
    )
    return {k: v for k, v in progress.items() if v}


def test_garbage_progress_json_in_a_seed_folder_restores_from_its_backup(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    ids = _seed_folder(folder)
    (folder / "configs_run_progress.json").write_text('{"m::s::c0::1": "00')
    _assert_refused(folder, "configs_run_progress.json")
    _assert_repaired(folder, ids)
    fresh = ProgressTracker(folder).claim("m::s::c9::1", "h").experiment_id
    assert int(fresh or 0) > 8, "the counter fell below experiment_id.txt"


def test_non_integer_id_file_repairs_above_every_id_seen(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    ids = _seed_folder(folder)
    (folder / "experiment_id.txt").write_text("forty-two")
    (tmp_path / "results" / "raw_results" / "0011").mkdir(parents=True)  # a failed run's ID
    _assert_refused(folder, "experiment_id.txt")
    _assert_repaired(folder, ids)
    assert ProgressTracker(folder).read().last_id >= 12


def test_deleted_snapshot_is_rebuilt_from_backup_seed_files_and_journal(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    tracker = ProgressTracker(folder)
    tracker.register("s", [(f"m::s::c{i}::1", "h") for i in range(10)])
    tracker.backup()
    ids = {}
    for i in range(8):
        key = f"m::s::c{i}::1"
        ids[key] = tracker.claim(key, "h").experiment_id
        if i < 3:
            tracker.complete(key, ids[key])
    tracker.sync()  # c0-c2 done in the seed files, not in the backup
    for i in range(3, 6):
        key = f"m::s::c{i}::1"
        tracker.complete(key, ids[key])  # c3-c5 done only in the journal
    tracker.close()
    (folder / "tracker_state.json").unlink()
    _assert_refused(folder, "tracker_state.json is missing")
    _assert_repaired(folder, ids)


def test_deleted_journal_is_refused_then_continued_from_snapshot(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    ids = _progress(folder)
    (folder / "journal.jsonl").unlink()
    _assert_refused(folder, "journal.jsonl is missing")
    _assert_repaired(folder, ids)


def test_damaged_middle_journal_line_is_skipped_but_its_id_still_counts(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    ids = _progress(folder, compact=False)
    lines = (folder / "journal.jsonl").read_bytes().split(b"\n")
    claim_of_last = max(i for i, raw in enumerate(lines) if b'"op":"claim"' in raw)
    lines[claim_of_last] = lines[claim_of_last][:12] + b"\x00garbage" + lines[claim_of_last][-40:]
    (folder / "journal.jsonl").write_bytes(b"\n".join(lines))
    _assert_refused(folder, "journal.jsonl")
    code, out = _run("tracker", "repair", "--tracker-dir", str(folder))
    assert code == 0 and "1 damaged lines skipped" in out
    fresh = ProgressTracker(folder).claim("m::s::new::1", "h").experiment_id
    assert int(fresh or 0) > len(ids), "the damaged claim's ID was issued again"


@pytest.mark.parametrize("name", ["tracker_state.json", "configs_run_progress.json"])
def test_repair_refuses_while_another_process_holds_the_lock(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "t"
    _progress(folder)
    holder = ProgressTracker(folder)
    with holder.locked():
        from joulebench.tracker.repair import repair

        with pytest.raises(Exception, match="holds the tracker lock"):
            repair(folder, lock_timeout_s=0.2)
    assert (folder / name).exists()


def test_check_on_a_missing_folder_says_so_instead_of_healthy(tmp_path: Path) -> None:
    code, out = _run("tracker", "check", "--tracker-dir", str(tmp_path / "nope"))
    assert code == 2 and "no tracker folder here" in out and "\n" not in out.strip()
