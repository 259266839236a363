"""Checks that need the machine, run before anything is written.

A missing model folder or dataset file would otherwise fail every key of a suite one
by one and leave failed records behind; a user error must change nothing on disk.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from joulebench.errors import ConfigError
from joulebench.suite.spec import ExperimentSpec


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


def check_specs(specs: list[ExperimentSpec], source: str, *, local_device_has_cuda: bool | None
                ) -> None:
    """Raise ConfigError for the first problem; ``None`` skips the device check."""
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
                                                 and local_device_has_cuda is False)
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
        if spec.config.device == "cuda" and local_device_has_cuda is False:
            raise ConfigError(f"{source}: config '{spec.config_name}': device: cuda but no CUDA "
                              "GPU is visible here; use device: auto or cpu, or run on a GPU node")
