from __future__ import annotations

import time
from pathlib import Path

import pytest

from joulebench.errors import RunnerError
from joulebench.runner.checkpoint import BatchCheckpoint


def open_ckpt(path: Path, **overrides: object) -> BatchCheckpoint:
    args = {"experiment_id": "0007", "config_hash": "abc", "world_size": 2, "rank": 0}
    args.update(overrides)
    return BatchCheckpoint.open(path, **args)  # type: ignore[arg-type]


def test_finished_batches_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    first = open_ckpt(path)
    first.add(0, {"latency_s": 0.1})
    first.add(2, {"latency_s": 0.3})
    again = open_ckpt(path)
    assert again.done(0) and again.done(2) and not again.done(1)
    assert again.resumed_indices == {0, 2}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize(
    "field, value", [("config_hash", "other"), ("experiment_id", "0008"), ("world_size", 4)]
)
def test_mismatched_checkpoint_is_a_clear_error(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "ckpt.json"
    open_ckpt(path).add(0, {})
    with pytest.raises(RunnerError, match=f"{field}=.*--fresh"):
        open_ckpt(path, **{field: value})


def test_corrupt_checkpoint_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    path.write_text("{not json")
    with pytest.raises(RunnerError, match=r"ckpt.json: checkpoint is not valid JSON"):
        open_ckpt(path)


def test_another_batch_size_starts_the_checkpoint_over(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    open_ckpt(path, batch_size=8).add(0, {})
    assert open_ckpt(path, batch_size=8).done(0)
    assert not open_ckpt(path, batch_size=4).done(0)  # an OOM retry with half the batch


def test_written_behind_the_window_is_all_on_disk_when_the_block_ends(tmp_path: Path) -> None:
    ckpt = open_ckpt(tmp_path / "c.json")
    with ckpt.behind():
        for index in range(50):
            ckpt.add(index, {"tokens": index})
    on_disk = open_ckpt(tmp_path / "c.json")
    assert sorted(on_disk.batches) == list(range(50))
    assert on_disk.batches[49] == {"tokens": 49}


def test_a_failing_background_write_reaches_the_worker(tmp_path: Path) -> None:
    ckpt = open_ckpt(tmp_path / "missing-dir" / "sub" / "c.json")
    (tmp_path / "missing-dir").write_text("a file where a folder should be")
    with pytest.raises(OSError):
        with ckpt.behind():
            for index in range(5):
                ckpt.add(index, {"tokens": index})
                time.sleep(0.01)


@pytest.mark.parametrize(
    "written, resumed",
    [("data", "tensor"), ("tensor", "data"), ("tensor", "pipeline")],
)
def test_a_checkpoint_of_another_parallelism_is_refused_with_the_fix(
    tmp_path: Path, written: str, resumed: str
) -> None:
    path = tmp_path / "ckpt.json"
    open_ckpt(path, parallelism=written).add(0, {})
    with pytest.raises(RunnerError) as caught:
        open_ckpt(path, parallelism=resumed)
    message = str(caught.value)
    assert f"parallelism={written}" in message and f"parallelism={resumed}" in message
    assert "revert parallelism, or rerun the suite with --fresh" in message


def test_a_checkpoint_from_before_parallelism_existed_resumes_as_data(tmp_path: Path) -> None:
    import json

    path = tmp_path / "ckpt.json"
    open_ckpt(path).add(3, {"latency_s": 0.1})
    data = json.loads(path.read_text())
    del data["parallelism"]  # the format as older versions wrote it
    path.write_text(json.dumps(data))
    assert open_ckpt(path).done(3)
    with pytest.raises(RunnerError, match="parallelism=data but this run has parallelism=tensor"):
        open_ckpt(path, parallelism="tensor")


def test_a_tensor_world_size_change_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ckpt_rank0.json"
    open_ckpt(path, parallelism="tensor", world_size=2).add(0, {})
    with pytest.raises(RunnerError, match=r"world_size=2.*--fresh"):
        open_ckpt(path, parallelism="tensor", world_size=4)


def test_a_reading_tensor_rank_skips_rank_0s_batches_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "ckpt_rank0.json"
    writer = open_ckpt(path, parallelism="tensor")
    writer.add(0, {"latency_s": 0.1})
    before = path.read_bytes()
    reader = open_ckpt(path, parallelism="tensor", rank=0, writes=False)
    assert reader.done(0) and reader.resumed_indices == {0}
    with reader.behind():
        reader.add(1, {"latency_s": 0.2})
    reader.add(2, {"latency_s": 0.3})
    assert reader.done(1) and reader.done(2)  # known in memory, for its own record
    assert path.read_bytes() == before  # only rank 0 writes the shared file
