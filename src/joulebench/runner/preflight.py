"""Checks that need the machine, run before anything is written.

A missing model folder or dataset file would otherwise fail every key of a suite one
by one and leave failed records behind; a user error must change nothing on disk.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from joulebench.config.models import DatasetConfig
from joulebench.errors import ConfigError
from joulebench.runner.prompts import bundled_prompts
from joulebench.suite.spec import ExperimentSpec

# Token counts here come from the `tokenizers` library, not transformers (2-3 s to import
# on a login node); they may differ by a special token or two, so a prompt counts as
# fitting with this much slack and only a suite short even then is refused. The worker
# still applies the exact rule.
FIT_SLACK_TOKENS = 2


def model_available(model: str) -> bool:
    """A local folder with a config.json, or a hub id already in the local HF cache."""
    if (Path(model) / "config.json").is_file():
        return True
    if Path(model).exists() or model.startswith((".", "/")) or model.count("/") > 1:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return True  # cannot tell; the run will say precisely what is missing
    try:
        found = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a valid repo id either
        return False
    return isinstance(found, str)


def check_specs(specs: list[ExperimentSpec], source: str, *, local_cuda_gpus: int | None
                ) -> None:
    """Raise ConfigError for the first problem.

    ``local_cuda_gpus`` is how many CUDA GPUs the run will see (0: none); ``None`` skips
    the device checks, for runs that happen elsewhere (Slurm checks --gpus-per-node).
    """
    for model in dict.fromkeys(s.config.model for s in specs):
        if Path(model).exists() and not model_available(model):
            raise ConfigError(f"{source}: model '{model}' exists but is not a model folder (no "
                              "config.json in it); point model at a folder written by "
                              "save_pretrained")
        if not model_available(model):
            raise ConfigError(
                f"{source}: model '{model}' is neither a local model folder nor in the Hugging "
                f"Face cache; run `joulebench make-demo-model {model}` for a tiny test model, "
                "or download it first (huggingface-cli download NAME)")
    for spec in specs:
        name = spec.config.dataset.name
        if name.endswith((".jsonl", ".json")) and not Path(name).is_file():
            raise ConfigError(f"{source}: config '{spec.config_name}': dataset.name file "
                              f"{name} not found (paths are relative to where you run)")
        cpu_run = spec.config.device == "cpu" or (spec.config.device == "auto"
                                                 and local_cuda_gpus == 0)
        if cpu_run and spec.config.quantization != "none":
            raise ConfigError(f"{source}: config '{spec.config_name}': quantization "
                              f"{spec.config.quantization} needs a CUDA GPU and this run is on "
                              "CPU; set quantization: none or run on a GPU node")
        if not cpu_run and spec.config.quantization != "none" \
                and importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(f"{source}: config '{spec.config_name}': quantization "
                              f"{spec.config.quantization} needs the bitsandbytes package, "
                              "which is not installed; pip install bitsandbytes, or set "
                              "quantization: none")
        if spec.config.device == "cuda" and local_cuda_gpus == 0:
            raise ConfigError(f"{source}: config '{spec.config_name}': device: cuda but no CUDA "
                              "GPU is visible here; use device: auto or cpu, or run on a GPU node")
        _check_gpu_count(spec, source, cpu_run, local_cuda_gpus)
    check_prompts_fit(specs, source)


def _check_gpu_count(spec: ExperimentSpec, source: str, cpu_run: bool,
                     local_cuda_gpus: int | None) -> None:
    # accelerate puts process i on cuda:i, so a second process on a 1-GPU node dies with
    # "invalid device ordinal" after loading the model; refuse it before anything runs.
    wanted = spec.config.num_processes
    if cpu_run or local_cuda_gpus is None or local_cuda_gpus == 0 or wanted <= local_cuda_gpus:
        return
    raise ConfigError(f"{source}: config '{spec.config_name}': num_processes: {wanted} but "
                      f"{local_cuda_gpus} CUDA GPU(s) are visible here and each process needs "
                      f"its own; set num_processes <= {local_cuda_gpus} or run on a node with "
                      "more GPUs")


def _local_texts(dataset: DatasetConfig) -> tuple[list[str] | None, list[str]]:
    """The prompt texts of the bundled set or a local .jsonl, as the worker reads them, and
    the columns seen. Texts are None when there is nothing to count here: a hub dataset, a
    .json file, a line that is not a JSON object (the loader names those), or no row with
    ``text_field`` (then the columns say what the file has)."""
    if dataset.name == "bundled":
        text = bundled_prompts().read_text("utf-8")
    elif dataset.name.endswith(".jsonl") and Path(dataset.name).is_file():
        text = Path(dataset.name).read_text(encoding="utf-8", errors="replace")
    else:
        return None, []
    texts: list[str] = []
    columns: dict[str, None] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            return None, []
        if not isinstance(row, dict):
            return None, []
        columns.update(dict.fromkeys(row))
        value = row.get(dataset.text_field)
        if value and str(value).strip():
            texts.append(str(value))
    return (texts if dataset.text_field in columns else None), list(columns)


def _token_counts(model: str, texts: list[str]) -> list[int] | None:
    path = Path(model) / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
    except Exception:  # an odd tokenizer file: the worker will say precisely why
        return None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True)]


def check_prompts_fit(specs: list[ExperimentSpec], source: str) -> None:
    """Refuse a suite whose num_prompts cannot fit in max_input_tokens, before any claim.

    Otherwise every key of it would queue, claim an ID and fail in its worker. Checked for
    local model folders with a tokenizer.json and local or bundled prompts; a local .jsonl
    with no ``text_field`` column is refused whatever the model.
    """
    texts: dict[tuple[str, str], list[str] | None] = {}
    counts: dict[tuple[str, str, str], list[int] | None] = {}
    for spec in specs:
        cfg = spec.config
        data_key = (cfg.dataset.name, cfg.dataset.text_field)
        if data_key not in texts:
            texts[data_key], columns = _local_texts(cfg.dataset)
            if texts[data_key] is None and columns:
                raise ConfigError(
                    f"{source}: config '{spec.config_name}': dataset.text_field "
                    f"'{cfg.dataset.text_field}' is not a column of {cfg.dataset.name} "
                    f"(columns: {', '.join(columns)}); set dataset.text_field to the column "
                    "that holds the prompts")
        found = texts[data_key]
        count_key = (cfg.model, *data_key)
        if count_key not in counts:
            counts[count_key] = None if found is None else _token_counts(cfg.model, found)
        lengths = counts[count_key]
        if lengths is None:
            continue
        fitting = sum(n <= cfg.max_input_tokens + FIT_SLACK_TOKENS for n in lengths)
        if fitting < cfg.num_prompts:
            raise ConfigError(
                f"{source}: config '{spec.config_name}': num_prompts {cfg.num_prompts} but "
                f"only {fitting} prompts of '{cfg.dataset.name}' fit in max_input_tokens="
                f"{cfg.max_input_tokens}; lower num_prompts or raise max_input_tokens")
