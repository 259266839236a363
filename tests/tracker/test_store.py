"""Tracker: claims, states, journal/snapshot consistency, legacy import, contention."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from joulebench.errors import TrackerError
from joulebench.tracker import DONE, FAILED, PENDING, RUNNING, ProgressTracker


def _keys(n: int, suite: str = "s") -> list[tuple[str, str]]:
    return [(f"m::{suite}::c{i}::1", "h") for i in range(n)]


def test_claim_assigns_sequential_zero_padded_ids(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(3))
    ids = [tracker.claim(k, "h").experiment_id for k, _ in _keys(3)]
    assert ids == ["0001", "0002", "0003"]
    assert {r.state for r in tracker.read().keys.values()} == {RUNNING}


def test_done_key_is_not_claimed_again_and_requeue_keeps_id(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    key = "m::s::c::1"
    first = tracker.claim(key, "h")
    # Same process claims again = a requeued task: same ID, next attempt.
    again = tracker.claim(key, "h")
    assert (again.experiment_id, again.attempt, again.status) == (first.experiment_id, 2, "resumed")
    assert tracker.complete(key, first.experiment_id) is True
    assert tracker.complete(key, first.experiment_id) is False
    assert tracker.claim(key, "h").status == "done"


def test_changed_config_hash_keeps_the_id_and_records_the_new_hash(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    first = tracker.claim("m::s::c::1", "aaa")
    tracker.fail("m::s::c::1", "code_error", "boom")
    again = tracker.claim("m::s::c::1", "bbb")
    assert again.experiment_id == first.experiment_id
    assert tracker.read().keys["m::s::c::1"].config_hash == "bbb"


def test_fail_records_cause_and_state_survives_reopen(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(2))
    tracker.claim("m::s::c0::1", "h")
    tracker.fail("m::s::c0::1", "oom", "CUDA out of memory")
    reopened = ProgressTracker(tmp_path).read()
    rec = reopened.keys["m::s::c0::1"]
    assert (rec.state, rec.cause, rec.attempts) == (FAILED, "oom", 1)
    assert reopened.keys["m::s::c1::1"].state == PENDING


def test_compaction_writes_legacy_files_in_seed_format(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path, compact_bytes=1)  # compact after every write
    tracker.register("s", _keys(2))
    claim = tracker.claim("m::s::c0::1", "h", cycle=1)
    tracker.complete("m::s::c0::1", claim.experiment_id)
    progress = json.loads((tmp_path / "configs_run_progress.json").read_text())
    assert progress == {"m::s::c0::1": "0001", "m::s::c1::1": None}
    assert (tmp_path / "experiment_id.txt").read_text().strip() == "1"
    assert (tmp_path / "cycle_id.txt").read_text().strip() == "1"
    # A second tracker sees the same state after the journal was replaced under it.
    assert ProgressTracker(tmp_path).read().keys["m::s::c0::1"].state == DONE


def test_lazy_sync_folds_only_when_due(tmp_path: Path) -> None:
    """Array tasks end with a lazy sync: O(keys) folding must not happen once per key."""
    snapshot = tmp_path / "tracker_state.json"
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(3))
    tracker.sync()
    first = snapshot.stat().st_mtime_ns
    tracker.sync(lazy=True)  # nothing new since the fold
    claim = tracker.claim("m::s::c0::1", "h")
    tracker.complete("m::s::c0::1", claim.experiment_id)
    tracker.sync(lazy=True)  # a fresh fold and keys still pending: the view may trail
    assert snapshot.stat().st_mtime_ns == first
    legacy = json.loads((tmp_path / "configs_run_progress.json").read_text())
    assert legacy["m::s::c0::1"] is None
    tracker.sync(lazy=True, interval_s=0)  # the last fold is old enough
    assert snapshot.stat().st_mtime_ns != first
    legacy = json.loads((tmp_path / "configs_run_progress.json").read_text())
    assert legacy["m::s::c0::1"] == "0001"
    # The last key of a suite to finish leaves the view whole, however recent the fold.
    for key in ("m::s::c1::1", "m::s::c2::1"):
        claim = tracker.claim(key, "h")
        tracker.complete(key, claim.experiment_id)
        tracker.sync(lazy=True)
    legacy = json.loads((tmp_path / "configs_run_progress.json").read_text())
    assert legacy == {"m::s::c0::1": "0001", "m::s::c1::1": "0002", "m::s::c2::1": "0003"}
    assert ProgressTracker(tmp_path).read().keys["m::s::c2::1"].state == DONE


def test_lazy_sync_of_a_finished_suite_ignores_other_suites_pending_keys(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(1))
    tracker.register("other", [("m::other::c0::1", "h")])  # registered, never run
    tracker.sync()
    claim = tracker.claim("m::s::c0::1", "h")
    tracker.complete("m::s::c0::1", claim.experiment_id)
    tracker.sync(lazy=True)  # tracker-wide: 'other' is pending, the fold is recent
    legacy = json.loads((tmp_path / "configs_run_progress.json").read_text())
    assert legacy["m::s::c0::1"] is None
    tracker.sync(lazy=True, suites={"s"})  # suite s has nothing left: its view is whole
    legacy = json.loads((tmp_path / "configs_run_progress.json").read_text())
    assert legacy == {"m::s::c0::1": "0001", "m::other::c0::1": None}


def test_stale_cache_reloads_after_another_writer_compacts(tmp_path: Path) -> None:
    a, b = ProgressTracker(tmp_path), ProgressTracker(tmp_path)
    a.register("s", _keys(1))
    assert len(b.read().keys) == 1
    for i in range(3):  # several compactions by a; b must never read a stale offset
        a.register("s", [(f"x{i}::s::c::1", "h")])
        a.sync()
    assert len(b.read().keys) == 4


def test_truncated_last_journal_line_is_ignored_and_cut(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(1))
    with (tmp_path / "journal.jsonl").open("a") as handle:
        handle.write('{"op":"register","key":"half')  # a crash mid-append
    fresh = ProgressTracker(tmp_path)
    assert list(fresh.read().keys) == ["m::s::c0::1"]
    fresh.register("s", [("m::s::c9::1", "h")])
    assert len(ProgressTracker(tmp_path).read().keys) == 2


def test_original_tracker_directory_loads_and_continues(tmp_path: Path) -> None:
    (tmp_path / "experiment_id.txt").write_text("4459\n")
    (tmp_path / "cycle_id.txt").write_text("2\n")
    old = {
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0::controlled::batching_16::1": "0001",
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0::controlled::batching_32::1": "0002",
        "meta-llama/Llama-3.2-1B::controlled::precis_float16::1": "0123",
        "meta-llama/Llama-3.2-1B::controlled::precis_float16::2": None,
    }
    (tmp_path / "configs_run_progress.json").write_text(json.dumps(old, indent=2))
    tracker = ProgressTracker(tmp_path)
    assert (
        tracker.claim("TinyLlama/TinyLlama-1.1B-Chat-v1.0::controlled::batching_16::1", "h").status
        == "done"
    )
    claim = tracker.claim("meta-llama/Llama-3.2-1B::controlled::precis_float16::2", "h")
    assert claim.experiment_id == "4460"
    tracker.complete(claim.key, claim.experiment_id)
    tracker.sync()
    progress = json.loads((tmp_path / "configs_run_progress.json").read_text())
    assert progress["meta-llama/Llama-3.2-1B::controlled::precis_float16::2"] == "4460"
    assert progress["TinyLlama/TinyLlama-1.1B-Chat-v1.0::controlled::batching_32::1"] == "0002"
    assert len(progress) == 4
    assert (tmp_path / "experiment_id.txt").read_text().strip() == "4460"


def test_non_integer_id_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "experiment_id.txt").write_text("forty-two\n")
    with pytest.raises(TrackerError, match=r"experiment_id.txt.*expected one integer"):
        ProgressTracker(tmp_path).read()


def test_fresh_archives_suite_and_ids_keep_growing(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(2))
    tracker.register("other", _keys(1, "other"))
    c = tracker.claim("m::s::c0::1", "h")
    tracker.complete(c.key, c.experiment_id)
    archive = tracker.archive_suite("s")
    assert archive is not None and "m::s::c0::1" in archive.read_text()
    state = tracker.read()
    assert list(state.keys) == ["m::other::c0::1"]
    assert tracker.claim("m::s::c0::1", "h").experiment_id == "0002"


def test_backup_copies_progress_with_timestamp(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(1))
    backup = tracker.backup()
    assert backup is not None and backup.name.startswith("progress_backup_")
    assert json.loads(backup.read_text()) == {"m::s::c0::1": None}


def _worker(directory: str, worker: int, claims: int, queue: mp.Queue) -> None:
    tracker = ProgressTracker(Path(directory), compact_bytes=8_000)
    got = []
    for i in range(claims):
        key = f"m::s::w{worker}_{i}::1"
        claim = tracker.claim(key, "h")
        tracker.complete(key, claim.experiment_id)
        got.append(claim.experiment_id)
    queue.put(got)


def test_eight_processes_fifty_claims_each_get_distinct_ids(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), w, 50, queue)) for w in range(8)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(ids) == 400 and len(set(ids)) == 400
    state = ProgressTracker(tmp_path).read()
    assert sum(r.state == DONE for r in state.keys.values()) == 400
    assert state.last_id == 400


def test_every_event_stays_on_record_in_history_after_folds(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", _keys(2))
    first = tracker.claim("m::s::c0::1", "h")
    tracker.fail("m::s::c0::1", "oom", "CUDA out of memory")
    tracker.sync()
    tracker.sync()  # nothing new: no empty chunk is archived
    again = tracker.claim("m::s::c0::1", "h")
    tracker.complete("m::s::c0::1", again.experiment_id)
    tracker.sync()
    (history,) = (tmp_path / "history").glob("journal-*.jsonl")
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    headers = [line["generation"] for line in lines if "format" in line]
    assert headers == sorted(headers) and len(headers) == 2
    ops = [(line["op"], line.get("key")) for line in lines if "op" in line]
    assert [op for op, key in ops if key == "m::s::c0::1"] == [
        "register",
        "claim",
        "fail",
        "claim",
        "done",
    ]
    assert first.experiment_id == again.experiment_id  # the record shows the retry kept it
    assert ProgressTracker(tmp_path).read().keys["m::s::c0::1"].state == DONE


def test_a_suites_archives_are_found_by_name_and_stamp_only(tmp_path: Path) -> None:
    from joulebench.tracker.layout import archive_name, archives_of

    folder = tmp_path / "archive"
    folder.mkdir()
    mine = folder / archive_name("demo", "20261202_150000_000001")
    other = folder / archive_name("demo_2", "20261202_150000_000002")
    mine.write_text("{}")
    other.write_text("{}")
    assert archives_of(tmp_path, "demo") == [mine]
    assert archives_of(tmp_path, "demo_2") == [other]
