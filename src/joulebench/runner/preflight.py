"""Checks that need the machine, run before anything is written.

A missing model folder or dataset file would otherwise fail every key of a suite one
by one and leave failed records behind; a user error must change nothing on disk.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from joulebench.config.models import DatasetConfig
from joulebench.config.parallelism import DATA, PIPELINE, TENSOR
from joulebench.errors import ConfigError
from joulebench.runner.prompts import bundled_prompts, count_fitting, prompt_token_counts
from joulebench.suite.spec import ExperimentSpec

# A suite with many problems shows this many of them in its one line; more would not
# fit a terminal line, and fixing these usually reveals the rest.
MAX_PROBLEMS_SHOWN = 5


class Problems:
    """The distinct problems of a suite, raised together as one ConfigError."""

    def __init__(self) -> None:
        self.found: dict[str, None] = {}

    def add(self, message: str) -> None:
        self.found[message] = None

    def raise_any(self) -> None:
        if not self.found:
            return
        shown = list(self.found)[:MAX_PROBLEMS_SHOWN]
        rest = len(self.found) - len(shown)
        tail = f" (and {rest} more like these)" if rest else ""
        raise ConfigError("; ".join(shown) + tail)


def model_available(model: str) -> bool:
    """A local folder with a config.json, or a hub id already in the local HF cache."""
    if (Path(model) / "config.json").is_file():
        return True
    if looks_local(model):
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


# Folders `joulebench make-demo-model` is documented to build, with the flag each needs:
# only these get that hint, never a real model's name.
DEMO_MODEL_FOLDERS = {"tiny-llama": "", "bench-llama-1b": " --size 1b"}


def looks_local(model: str) -> bool:
    """A path rather than a hub id ("org/name" or "name")."""
    first = model.split("/", 1)[0]
    return (
        Path(model).exists()
        or model.startswith((".", "/", "~"))
        or model.count("/") > 1
        or first == "models"
        or ("/" in model and Path(first).is_dir())
    )


def missing_model_message(model: str) -> str:
    if Path(model).exists():
        return (
            f"model '{model}' exists but is not a model folder (no config.json in it); "
            "point model at a folder written by save_pretrained"
        )
    if looks_local(model):
        size = DEMO_MODEL_FOLDERS.get(Path(model).name)
        build = (
            f"build it with `joulebench make-demo-model{size} {model}`"
            if size is not None
            else "save a model there with save_pretrained"
        )
        return (
            f"model '{model}': no model folder there (paths are relative to where you "
            f"run); {build}, or name a Hugging Face model"
        )
    return (
        f"model '{model}' is not in the local Hugging Face cache (compute nodes are often "
        f"offline); download it first with `hf download {model}`, or point model at a "
        "local folder"
    )


def check_specs(specs: list[ExperimentSpec], source: str, *, local_cuda_gpus: int | None) -> None:
    """Raise one ConfigError naming every distinct problem (up to a handful).

    ``local_cuda_gpus`` is how many CUDA GPUs the run will see (0: none); ``None`` skips
    the device checks, for runs that happen elsewhere (Slurm checks --gpus-per-node).
    """
    problems = Problems()
    for model in dict.fromkeys(s.config.model for s in specs):
        if not model_available(model):
            problems.add(f"{source}: {missing_model_message(model)}")
    for spec in specs:
        for message in _spec_problems(spec, local_cuda_gpus):
            problems.add(f"{source}: config '{spec.config_name}': {message}")
    problems.raise_any()  # the checks below read the models, which must be there
    check_tensor_plans(specs, source)
    check_prompts_fit(specs, source)


def check_tensor_plans(specs: list[ExperimentSpec], source: str) -> None:
    """Refuse tensor parallelism a model cannot do: no plan, or heads that do not divide."""
    from joulebench.runner.parallel_load import model_plan_problems

    problems = Problems()
    seen: set[tuple[str, int]] = set()
    for spec in specs:
        cfg = spec.config
        if cfg.parallelism != TENSOR or (cfg.model, cfg.world_size) in seen:
            continue
        seen.add((cfg.model, cfg.world_size))
        for message in model_plan_problems(cfg):
            problems.add(f"{source}: config '{spec.config_name}': {message}")
    problems.raise_any()


def _spec_problems(spec: ExperimentSpec, local_cuda_gpus: int | None) -> list[str]:
    cfg = spec.config
    out = []
    name = cfg.dataset.name
    if name.endswith((".jsonl", ".json")) and not Path(name).is_file():
        out.append(f"dataset.name file {name} not found (paths are relative to where you run)")
    cpu_run = cfg.device == "cpu" or (cfg.device == "auto" and local_cuda_gpus == 0)
    if cpu_run and cfg.parallelism == PIPELINE:
        out.append(
            "parallelism: pipeline splits the model over several GPUs and this run is on "
            "CPU; use parallelism: tensor or data on CPU, or run on a GPU node"
        )
    if cpu_run and cfg.quantization != "none":
        out.append(
            f"quantization {cfg.quantization} needs a CUDA GPU and this run is on CPU; "
            "set quantization: none or run on a GPU node"
        )
    if (
        not cpu_run
        and cfg.quantization != "none"
        and importlib.util.find_spec("bitsandbytes") is None
    ):
        out.append(
            f"quantization {cfg.quantization} needs the bitsandbytes package, which is "
            "not installed; pip install bitsandbytes, or set quantization: none"
        )
    if cfg.device == "cuda" and local_cuda_gpus == 0:
        out.append(
            "device: cuda but no CUDA GPU is visible here; use device: auto or cpu, or "
            "run on a GPU node"
        )
    if local_cuda_gpus is not None:  # a local run: this machine is where it runs
        # CPU: processes compete for cores (pipeline never runs there); GPU: each of the
        # num_processes GPUs is needed, one per process or all by pipeline's one process.
        out.extend(
            _device_count_problems(cfg.num_processes, cpu_run, local_cuda_gpus, cfg.parallelism)
        )
    return out


def local_nodes_problem(specs: list[ExperimentSpec]) -> str | None:
    """Why these specs cannot run here without Slurm (nodes > 1), or None (pure)."""
    for spec in specs:
        if spec.config.nodes > 1:
            return (
                f"config '{spec.config_name}': nodes: {spec.config.nodes} needs Slurm (one "
                "launcher per node) but this run is local; submit it to Slurm with "
                "--executor slurm, or set nodes: 1"
            )
    return None


def usable_cpu_cores() -> int:
    """Cores this process may run on (its affinity mask: what Slurm or taskset allow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity masks
        return os.cpu_count() or 1


def _device_count_problems(
    wanted: int, cpu_run: bool, local_cuda_gpus: int, parallelism: str = DATA
) -> list[str]:
    if cpu_run:
        # Each CPU process runs its own generate loop: more processes than cores leave
        # ranks idle half the time and the experiment measures the scheduler, not the model.
        cores = usable_cpu_cores()
        if wanted > cores:
            return [
                f"num_processes: {wanted} but this machine lets this run use {cores} CPU "
                f"core{'s' if cores != 1 else ''}, so ranks would wait for a core; set "
                f"num_processes <= {cores} or run on a bigger node"
            ]
        return []
    # accelerate puts process i on cuda:i, so a second process on a 1-GPU node dies with
    # "invalid device ordinal" after loading the model; refuse it before anything runs.
    if local_cuda_gpus == 0 or wanted <= local_cuda_gpus:
        return []
    needs = (
        "the pipeline process spreads the model over that many"
        if parallelism == PIPELINE
        else "each process needs its own"
    )
    return [
        f"num_processes: {wanted} but {local_cuda_gpus} CUDA GPU(s) are visible here and "
        f"{needs}; set num_processes <= {local_cuda_gpus} or run on a node with more GPUs"
    ]


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
    """Prompt lengths exactly as the worker counts them: its tokenizer, its call."""
    from joulebench.runner.model import load_tokenizer

    try:
        tokenizer = load_tokenizer(model)
    except Exception:  # not loadable here (odd files, hub model not cached): the worker says
        return None
    return prompt_token_counts(tokenizer, texts)


def _cannot_feed(source: str, spec: ExperimentSpec, fitting: int) -> str:
    cfg = spec.config
    return (
        f"{source}: config '{spec.config_name}': scenario.num_requests "
        f"{cfg.scenario.num_requests} but only {fitting} prompts of '{cfg.dataset.name}' fit "
        f"in max_input_tokens={cfg.max_input_tokens}, and each request of the schedule "
        "takes its own prompt; lower scenario.num_requests or raise max_input_tokens"
    )


def check_prompts_fit(specs: list[ExperimentSpec], source: str) -> None:
    """Refuse a suite whose num_prompts cannot fit in max_input_tokens, before any claim.

    Otherwise every key of it would queue, claim an ID and fail in its worker. Checked
    with the worker's own tokenizer call wherever the tokenizer loads here (a local folder
    or a cached hub model) and the prompts are local or bundled; a local .jsonl with no
    ``text_field`` column is refused whatever the model.
    """
    texts: dict[tuple[str, str], list[str] | None] = {}
    counts: dict[tuple[str, str, str], list[int] | None] = {}
    problems = Problems()
    for spec in specs:
        cfg = spec.config
        data_key = (cfg.dataset.name, cfg.dataset.text_field)
        if data_key not in texts:
            texts[data_key], columns = _local_texts(cfg.dataset)
            if texts[data_key] is None and columns:
                problems.add(
                    f"{source}: config '{spec.config_name}': dataset.text_field "
                    f"'{cfg.dataset.text_field}' is not a column of {cfg.dataset.name} "
                    f"(columns: {', '.join(columns)}); set dataset.text_field to the column "
                    "that holds the prompts"
                )
        found = texts[data_key]
        count_key = (cfg.model, *data_key)
        if count_key not in counts:
            counts[count_key] = None if found is None else _token_counts(cfg.model, found)
        lengths = counts[count_key]
        if lengths is None:
            continue
        fitting = count_fitting(lengths, cfg.max_input_tokens)
        if cfg.scenario.serving:
            if fitting < cfg.scenario.num_requests:
                problems.add(_cannot_feed(source, spec, fitting))
        elif fitting < cfg.num_prompts:
            problems.add(
                f"{source}: config '{spec.config_name}': num_prompts {cfg.num_prompts} but "
                f"only {fitting} prompts of '{cfg.dataset.name}' fit in max_input_tokens="
                f"{cfg.max_input_tokens}; lower num_prompts or raise max_input_tokens"
            )
    problems.raise_any()
