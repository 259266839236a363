"""Submit-time checks: prompts fit, and the GPUs a local run needs are there."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.config.models import DatasetConfig, ExperimentConfig
from joulebench.errors import ConfigError
from joulebench.runner.preflight import _local_texts, _token_counts, check_prompts_fit, check_specs
from joulebench.runner.prompts import load_prompt_texts
from joulebench.suite.spec import ExperimentSpec


def test_texts_and_token_counts_match_what_the_worker_uses(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    texts, _ = _local_texts(DatasetConfig())
    assert texts == load_prompt_texts(DatasetConfig())
    tok = AutoTokenizer.from_pretrained(tiny_model)
    expected = [len(ids) for ids in tok(texts, add_special_tokens=True)["input_ids"]]
    assert _token_counts(str(tiny_model), texts) == expected


def spec(model: str, **fields: object) -> ExperimentSpec:
    return ExperimentSpec("s", "c", 1, ExperimentConfig(model=model, device="cpu", **fields))


def test_a_suite_that_fits_passes_and_one_that_cannot_is_refused(tiny_model: Path) -> None:
    check_prompts_fit([spec(str(tiny_model), num_prompts=64, max_input_tokens=64)], "s.yaml")
    with pytest.raises(ConfigError, match=r"only .* prompts of 'bundled' fit"):
        check_prompts_fit([spec(str(tiny_model), num_prompts=320, max_input_tokens=32)], "s.yaml")


def test_models_and_datasets_it_cannot_read_locally_are_left_to_the_worker(tmp_path: Path) -> None:
    # A hub id with no local tokenizer.json, and a hub dataset: nothing to count here.
    check_prompts_fit([spec("org/not-local", num_prompts=10_000)], "s.yaml")
    hub = DatasetConfig(name="someone/prompts")
    check_prompts_fit([spec(str(tmp_path), num_prompts=10_000, dataset=hub)], "s.yaml")


def test_a_missing_text_field_is_refused_naming_the_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.jsonl").write_text('{"text": "hello", "id": 1}\n' * 3)
    assert _local_texts(DatasetConfig(name="p.jsonl", text_field="prompt")) == (
        None,
        ["text", "id"],
    )
    assert _local_texts(DatasetConfig(name="p.jsonl")) == (["hello"] * 3, ["text", "id"])
    # Refused whatever the model, even one whose tokenizer cannot be read here.
    wrong = spec(
        "org/not-local", num_prompts=2, dataset=DatasetConfig(name="p.jsonl", text_field="prompt")
    )
    with pytest.raises(
        ConfigError,
        match=r"s.yaml: config 'c': dataset.text_field 'prompt' "
        r"is not a column of p.jsonl \(columns: text, id\)",
    ):
        check_prompts_fit([wrong], "s.yaml")
    Path("odd.jsonl").write_text('["a list, not an object"]\n')
    assert _local_texts(DatasetConfig(name="odd.jsonl")) == (None, [])  # the loader says why


def gpu_spec(tiny_model: Path, device: str, processes: int) -> ExperimentSpec:
    config = ExperimentConfig(
        model=str(tiny_model),
        device=device,
        num_processes=processes,
        num_prompts=8,
        max_input_tokens=64,
    )
    return ExperimentSpec("s", "c", 1, config)


def test_more_processes_than_local_gpus_is_refused_before_anything_runs(tiny_model: Path) -> None:
    # Seen on an H100 machine: the second process died with "invalid device ordinal"
    # after loading its model, and the key was recorded as a code error.
    for device in ("cuda", "auto"):
        with pytest.raises(
            ConfigError,
            match=r"num_processes: 2 but 1 CUDA GPU\(s\) are "
            r"visible here.*num_processes <= 1",
        ):
            check_specs([gpu_spec(tiny_model, device, 2)], "s.yaml", local_cuda_gpus=1)
    check_specs([gpu_spec(tiny_model, "cuda", 2)], "s.yaml", local_cuda_gpus=2)
    check_specs([gpu_spec(tiny_model, "cpu", 2)], "s.yaml", local_cuda_gpus=1)  # CPU: gloo
    check_specs([gpu_spec(tiny_model, "auto", 2)], "s.yaml", local_cuda_gpus=0)  # runs on CPU
    check_specs([gpu_spec(tiny_model, "cuda", 8)], "s.yaml", local_cuda_gpus=None)  # Slurm's


def test_the_node_refuses_too_few_visible_gpus_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from joulebench.runner.experiment import ExperimentFailed, _check_gpus_visible

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    _check_gpus_visible(1)
    with pytest.raises(
        ExperimentFailed,
        match=r"num_processes: 2 .* 1 CUDA GPU\(s\) visible "
        r"\(CUDA_VISIBLE_DEVICES=3\)",
    ) as failed:
        _check_gpus_visible(2)
    assert failed.value.user_error and failed.value.cause == "config_error"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ExperimentFailed, match=r"device: cuda but this node has no CUDA GPU"):
        _check_gpus_visible(1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # hides every GPU, whatever the driver says
    with pytest.raises(ExperimentFailed, match=r"no CUDA GPU visible \(CUDA_VISIBLE_DEVICES=\)"):
        _check_gpus_visible(1)


def test_the_node_counts_gpus_through_nvml_when_it_can(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from joulebench.measure import nvml_devices
    from joulebench.runner.experiment import ExperimentFailed, _check_gpus_visible

    monkeypatch.setattr(
        nvml_devices, "visible_gpu_inventory", lambda: {"gpu:GPU-a": {}, "gpu:GPU-b": {}}
    )
    monkeypatch.setattr(torch.cuda, "device_count", lambda: pytest.fail("torch was asked"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert nvml_devices.visible_gpu_count() == 2
    _check_gpus_visible(2)
    with pytest.raises(ExperimentFailed, match=r"num_processes: 3 but this node has 2"):
        _check_gpus_visible(3)


def test_only_refusals_of_the_config_are_config_errors() -> None:
    from joulebench.errors import MeasureError, RunnerError, TrackerError
    from joulebench.runner.experiment import ExperimentFailed, cause_of

    assert (
        cause_of(ConfigError("x")) == cause_of(RunnerError("only 3 prompts fit")) == "config_error"
    )
    # A meter or tracker hiccup may pass on a rerun: resume-failed is the right hint.
    assert cause_of(MeasureError("nvml")) == cause_of(TrackerError("lock")) == "code_error"
    assert cause_of(ValueError("bug")) == "code_error"
    assert cause_of(ExperimentFailed("oom", "oom")) == "oom"


def test_gpu_counts_hold_for_every_parallelism(tiny_model: Path) -> None:
    """Every mode uses num_processes GPUs per node: one each, or all in pipeline's one."""
    for mode, needs in (
        ("data", "each process needs its own"),
        ("tensor", "each process needs its own"),
        ("pipeline", "the pipeline process spreads the model over that many"),
    ):
        cfg = ExperimentConfig(
            model=str(tiny_model), device="cuda", num_processes=2, parallelism=mode
        )
        with pytest.raises(ConfigError, match=rf"num_processes: 2 but 1 CUDA GPU\(s\).*{needs}"):
            check_specs([ExperimentSpec("s", "c", 1, cfg)], "s.yaml", local_cuda_gpus=1)
        check_specs([ExperimentSpec("s", "c", 1, cfg)], "s.yaml", local_cuda_gpus=2)
