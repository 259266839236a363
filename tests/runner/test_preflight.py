"""The submit-time prompt-fit check agrees with the worker's own rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.config.models import DatasetConfig, ExperimentConfig
from joulebench.errors import ConfigError
from joulebench.runner.preflight import _local_texts, _token_counts, check_prompts_fit
from joulebench.runner.prompts import load_prompt_texts
from joulebench.suite.spec import ExperimentSpec


def test_texts_and_token_counts_match_what_the_worker_uses(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    texts = _local_texts(DatasetConfig())
    assert texts == load_prompt_texts(DatasetConfig())
    tok = AutoTokenizer.from_pretrained(tiny_model)
    expected = [len(ids) for ids in tok(texts, add_special_tokens=True)["input_ids"]]
    assert _token_counts(str(tiny_model), texts) == expected


def spec(model: str, **fields: object) -> ExperimentSpec:
    return ExperimentSpec("s", "c", 1, ExperimentConfig(model=model, device="cpu", **fields))


def test_a_suite_that_fits_passes_and_one_that_cannot_is_refused(tiny_model: Path) -> None:
    check_prompts_fit([spec(str(tiny_model), num_prompts=64, max_input_tokens=64)], "s.yaml")
    with pytest.raises(ConfigError, match=r"only .* prompts of 'bundled' fit"):
        check_prompts_fit([spec(str(tiny_model), num_prompts=320, max_input_tokens=32)],
                          "s.yaml")


def test_models_and_datasets_it_cannot_read_locally_are_left_to_the_worker(
        tmp_path: Path) -> None:
    # A hub id with no local tokenizer.json, and a hub dataset: nothing to count here.
    check_prompts_fit([spec("org/not-local", num_prompts=10_000)], "s.yaml")
    hub = DatasetConfig(name="someone/prompts")
    check_prompts_fit([spec(str(tmp_path), num_prompts=10_000, dataset=hub)], "s.yaml")


def test_a_missing_text_field_is_left_to_the_loader_which_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.jsonl").write_text('{"text": "hello"}\n' * 3)
    assert _local_texts(DatasetConfig(name="p.jsonl", text_field="prompt")) is None
    assert _local_texts(DatasetConfig(name="p.jsonl")) == ["hello"] * 3
