from __future__ import annotations

import time
from pathlib import Path

import pytest

from joulebench.errors import RunnerError
from joulebench.runner.checkpoint import (
    BatchCheckpoint,
    agree_on_shared_checkpoint,
    shared_checkpoint_problem,
)


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


def test_tensor_ranks_that_read_other_finished_batches_are_named() -> None:
    path = Path("w/ckpt_rank0.json")
    assert shared_checkpoint_problem(path, [[0, 1], [0, 1]]) is None
    message = shared_checkpoint_problem(path, [[0, 1], [0, 1], []])
    assert message is not None and message.startswith("w/ckpt_rank0.json: global rank 2")
    assert "read finished batches [] " in message and "rank 0 read [0, 1]" in message
    assert "a shared file system, not node-local storage" in message


def _agree(rank: int, store: str, folders: list[str], out: str) -> None:
    """One rank of a real 2-process gloo group: open its folder's checkpoint and agree."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    ckpt = open_ckpt(
        Path(folders[rank]) / "ckpt_rank0.json", parallelism="tensor", rank=0, writes=rank == 0
    )
    try:
        agree_on_shared_checkpoint(ckpt, 2)
        Path(out, f"{rank}.txt").write_text("agreed")
    except RunnerError as exc:
        Path(out, f"{rank}.txt").write_text(str(exc))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("shared", [True, False])
def test_tensor_ranks_agree_on_the_checkpoint_or_all_stop(tmp_path: Path, shared: bool) -> None:
    import torch.multiprocessing as mp

    node0, node1 = tmp_path / "node0", tmp_path / "node1"
    for folder in (node0, node1):
        folder.mkdir()
    ckpt = open_ckpt(node0 / "ckpt_rank0.json", parallelism="tensor")
    ckpt.add(0, {})
    ckpt.add(1, {})
    # Not shared: rank 1's node has its own (empty) folder, as node-local storage would.
    folders = [str(node0), str(node0 if shared else node1)]
    mp.spawn(_agree, args=(str(tmp_path / "store"), folders, str(tmp_path)), nprocs=2)
    said = [(tmp_path / f"{rank}.txt").read_text() for rank in (0, 1)]
    if shared:
        assert said == ["agreed", "agreed"]
    else:
        # Both stop, each naming its own copy of the path and the same disagreement.
        why = "global rank 1 read finished batches [] from the tensor checkpoint but global "
        assert all(f"ckpt_rank0.json: {why}rank 0 read [0, 1]" in s for s in said), said
