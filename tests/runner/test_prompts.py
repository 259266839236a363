from __future__ import annotations

import pytest

from joulebench.config.models import DatasetConfig
from joulebench.errors import RunnerError
from joulebench.runner.prompts import batches, load_prompt_texts, select_prompts, shard


def test_shards_are_contiguous_balanced_and_cover_everything() -> None:
    items = list(range(10))
    parts = [shard(items, r, 3) for r in range(3)]
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_batches_keep_order_and_last_batch_may_be_short() -> None:
    assert batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_select_keeps_dataset_order_and_filters_by_length() -> None:
    assert select_prompts(["a", "b", "c"], [5, 50, 3], 2, 10, "x") == ["a", "c"]
    with pytest.raises(RunnerError, match="num_prompts: only 2 prompts"):
        select_prompts(["a", "b", "c"], [5, 50, 3], 3, 10, "x")


def test_bundled_prompts_load_offline() -> None:
    texts = load_prompt_texts(DatasetConfig())
    assert len(texts) >= 300 and len(set(texts)) == len(texts)


def test_jsonl_path_and_missing_column(tmp_path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "hello there"}\n{"prompt": "second"}\n')
    assert load_prompt_texts(DatasetConfig(name=str(path), text_field="prompt")) == [
        "hello there",
        "second",
    ]
    with pytest.raises(RunnerError, match=r"dataset.text_field: 'text' is not a column"):
        load_prompt_texts(DatasetConfig(name=str(path)))
    with pytest.raises(RunnerError, match=r"dataset.name: file .* not found"):
        load_prompt_texts(DatasetConfig(name=str(tmp_path / "missing.jsonl")))
