"""Bad input through the real CLI: one line naming file/field/fix, exit 2, disk untouched.

Every case runs the click command in-process (CliRunner) inside a fresh checkout (the
repo's configs plus the tiny model) and compares a snapshot of the whole checkout
before and after: paths, sizes, content hashes and modification times.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from joulebench.cli.main import cli

SUITE = "configs/suites/bad.yaml"
TINY = "models: [tiny-demo]\n"
LOCAL = ["--executor", "local"]
LOCK_NAME = ".tracker.lock"


def snapshot(root: Path) -> dict[str, tuple]:
    """Path -> (kind, size, sha256, mtime_ns) for everything under root, links not followed.

    The tracker lock file's mtime is left out: filelock opens it with O_TRUNC, which
    stamps it on every read, with no byte of state changed.
    """
    out: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mtime_ns)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = (
                    "file",
                    st.st_size,
                    digest,
                    None if name == LOCK_NAME else st.st_mtime_ns,
                )
    return out


def output_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    names: tuple[str, ...]  # the file (or flag) and the field the message must name
    fix: str  # the words that tell the user what to do
    files: dict[str, str | bytes] = field(default_factory=dict)
    fake_sbatch: bool = False  # `--executor slurm` needs sbatch on PATH; it must never run


def c(
    id: str,
    names: tuple[str, ...],
    fix: str,
    args: list[str] | None = None,
    files: dict | None = None,
    **kw: object,
) -> Case:
    return Case(id, args or [], names, fix, files or {}, **kw)  # type: ignore[arg-type]


def s(
    id: str, text: str | bytes, names: tuple[str, ...], fix: str, *args: str, **kw: object
) -> Case:
    """A case that is one bad suite file run with the local executor."""
    return Case(id, ["submit-suite", "bad", *LOCAL, *args], names, fix, {SUITE: text}, **kw)


def o(id: str, overrides: str, names: tuple[str, ...], fix: str, **kw: object) -> Case:
    """A tiny-demo suite with one bad `overrides:` mapping."""
    return s(id, f"{TINY}overrides: {overrides}\n", ("bad.yaml", *names), fix, **kw)


DEMO = ["submit-suite", "demo", *LOCAL]
MODELS_FILE = "models_file: m.yaml\nmodels: [x]\n"


def model(value: str) -> dict[str, str]:
    return {
        SUITE: MODELS_FILE,
        "configs/suites/m.yaml": f"models:\n  x: {{model: '{value}', device: cpu, "
        "precision: float32}\n",
    }


CASES = [
    # --- YAML that does not parse, or is not a mapping ---------------------------------
    s(
        "suite-yaml-syntax",
        "models: [tiny-demo\n",
        ("bad.yaml", "line 2 column 1"),
        "fix the syntax",
    ),
    c(
        "base-yaml-syntax",
        ("base.yaml", "line 2 column 1"),
        "fix the syntax",
        DEMO,
        {"configs/base.yaml": "device: [cpu\n"},
    ),
    c(
        "models-yaml-syntax",
        ("models.yaml", "line 3 column 1"),
        "fix the syntax",
        DEMO,
        {"configs/models.yaml": "models:\n  tiny-demo: {model: x\n"},
    ),
    s("tab-indent", "models:\n\t- tiny-demo\n", ("bad.yaml", "'\\t'"), "fix the syntax"),
    s("nul-byte", b"models: [tiny-demo]\x00\n", ("bad.yaml", "#x0000"), "fix the syntax"),
    s("duplicate-key", TINY + TINY, ("bad.yaml", "line 2", "'models' appears twice"), "keep one"),
    s(
        "python-tag",
        'models: !!python/object/apply:os.system ["touch PWNED"]\n',
        ("bad.yaml", "!!python/object/apply:os.system"),
        "remove the tag",
    ),
    s(
        "non-utf8",
        b"models: [tiny-demo]\ndescription: caf\xe9\n",
        ("bad.yaml", "not UTF-8"),
        "save the file as UTF-8",
    ),
    s(
        "utf16-bom",
        "models: [tiny-demo]\n".encode("utf-16"),
        ("bad.yaml", "not UTF-8"),
        "save the file as UTF-8",
    ),
    s("empty-suite", "", ("bad.yaml", "field 'models'"), "add it"),
    s("suite-is-a-list", "- a\n- b\n", ("bad.yaml", "got a list"), "'key: value' lines"),
    c(
        "base-is-a-list",
        ("base.yaml", "got a list"),
        "'key: value' lines",
        DEMO,
        {"configs/base.yaml": "- 1\n"},
    ),
    c(
        "models-is-a-list",
        ("models.yaml", "got a list"),
        "'key: value' lines",
        DEMO,
        {"configs/models.yaml": "- 1\n"},
    ),
    c(
        "models-file-empty",
        ("demo.yaml", "field 'models'", "'tiny-demo'", "known: none"),
        "add it there",
        DEMO,
        {"configs/models.yaml": ""},
    ),
    c(
        "model-entry-not-mapping",
        ("m.yaml", "model 'x'"),
        "needs a mapping with a 'model' key",
        ["submit-suite", "bad", *LOCAL],
        {SUITE: MODELS_FILE, "configs/suites/m.yaml": "models:\n  x: models/tiny-llama\n"},
    ),
    # --- unknown keys ------------------------------------------------------------------
    s(
        "suite-unknown-key",
        TINY + "cylces: 3\n",
        ("bad.yaml", "unknown key 'cylces'"),
        "valid keys here",
    ),
    o("override-unknown-key", "{batchsize: 2}", ("unknown key 'batchsize'",), "valid keys here"),
    o(
        "nested-unknown-key",
        "{decoder: {temp: 2}}",
        ("unknown key 'decoder.temp'",),
        "valid keys here: mode, temperature",
    ),
    c(
        "base-unknown-key",
        ("demo.yaml", "unknown key 'batchsize'"),
        "valid keys here",
        DEMO,
        {"configs/base.yaml": "device: cpu\nbatchsize: 3\n"},
    ),
    c(
        "profile-unknown-key",
        ("p.yaml", "unknown key 'partiton'"),
        "valid keys: partition",
        [*DEMO, "--profile", "p.yaml"],
        {"p.yaml": "partiton: gpu\n"},
    ),
    # --- wrong types -------------------------------------------------------------------
    o(
        "batch-size-word",
        "{batch_size: many}",
        ("field 'batch_size'", "'many'"),
        "must be a whole number",
    ),
    o(
        "batch-size-bool",
        "{batch_size: true}",
        ("field 'batch_size'", "True"),
        "must be a whole number",
    ),
    o(
        "batch-size-fraction",
        "{batch_size: 2.5}",
        ("field 'batch_size'", "2.5"),
        "must be a whole number",
    ),
    o(
        "temperature-quoted",
        "{decoder: {temperature: '0.7'}}",
        ("field 'decoder.temperature'",),
        "must be a number",
    ),
    o(
        "decoder-not-mapping",
        "{decoder: greedy}",
        ("field 'decoder'", "'greedy'"),
        "should be a valid dictionary",
    ),
    s(
        "models-not-list",
        "models: tiny-demo\n",
        ("bad.yaml", "field 'models'"),
        "should be a valid list",
    ),
    s(
        "controlled-is-list",
        TINY + "controlled: [1, 2]\n",
        ("bad.yaml", "field 'controlled'"),
        "should be a valid dictionary",
    ),
    s(
        "shuffle-not-bool",
        TINY + "shuffle: maybe\n",
        ("bad.yaml", "field 'shuffle'"),
        "must be true or false",
    ),
    c(
        "profile-gpus-word",
        ("p.yaml", "field 'gpus_per_node'"),
        "positive whole number",
        [*DEMO, "--profile", "p.yaml"],
        {"p.yaml": "gpus_per_node: two\n"},
    ),
    c(
        "profile-time-sexagesimal",
        ("p.yaml", "field 'time'", "7200"),
        "must be quoted",
        [*DEMO, "--profile", "p.yaml"],
        {"p.yaml": "time: 2:00:00\n"},
    ),
    # --- zero, negative and inconsistent sizes -----------------------------------------
    o("batch-size-zero", "{batch_size: 0}", ("field 'batch_size'",), "greater than 0"),
    o("num-prompts-negative", "{num_prompts: -1}", ("field 'num_prompts'",), "greater than 0"),
    # --- the serving scenario (issue 16) -------------------------------------------------
    o(
        "serving-negative-rate",
        "{scenario: {mode: serving, request_rate: -2.0}}",
        ("field 'scenario.request_rate'",),
        "greater than 0",
    ),
    o(
        "serving-zero-concurrency",
        "{scenario: {mode: serving, max_concurrency: 0}}",
        ("field 'scenario.max_concurrency'",),
        "greater than or equal to 1",
    ),
    o(
        "slos-without-serving",
        "{scenario: {slo_ttft_ms: 2000}}",
        ("scenario.slo_ttft_ms", "scenario.mode is offline"),
        "set scenario.mode: serving or remove the SLOs",
    ),
    o(
        "serving-two-processes",
        "{num_processes: 2, scenario: {mode: serving}}",
        ("scenario.mode: serving", "num_processes is 2"),
        "set num_processes: 1",
    ),
    o(
        "serving-over-two-nodes",
        "{scenario: {mode: serving}, nodes: 2}",
        ("config 'base'", "scenario.mode: serving", "nodes is 2"),
        "set nodes: 1",
    ),
    o(
        "serving-more-requests-than-prompts",
        "{max_input_tokens: 64, scenario: {mode: serving, num_requests: 300}}",
        ("scenario.num_requests 300", "max_input_tokens=64", "'bundled'"),
        "lower scenario.num_requests or raise max_input_tokens",
    ),
    o("num-processes-zero", "{num_processes: 0}", ("field 'num_processes'",), "greater than 0"),
    o("nodes-zero", "{nodes: 0}", ("field 'nodes'",), "greater than 0"),
    o(
        "nodes-local",
        "{nodes: 2}",
        ("config 'base'", "nodes: 2 needs Slurm"),
        "--executor slurm, or set nodes: 1",
    ),
    c(
        "run-nodes-local",
        ("one.yaml", "nodes: 2 needs Slurm"),
        "set nodes: 1",
        ["run", "one.yaml"],
        {"one.yaml": "model: models/tiny-llama\ndevice: cpu\nnodes: 2\n"},
    ),
    o(
        "max-output-zero",
        "{max_output_tokens: 0, min_output_tokens: 0}",
        ("field 'max_output_tokens'",),
        "greater than 0",
    ),
    o(
        "max-input-negative",
        "{max_input_tokens: -5}",
        ("field 'max_input_tokens'",),
        "greater than 0",
    ),
    o(
        "warmup-negative",
        "{warmup_iterations: -1}",
        ("field 'warmup_iterations'",),
        "greater than or equal to 0",
    ),
    o(
        "max-below-min",
        "{max_output_tokens: 4, min_output_tokens: 8}",
        ("min_output_tokens (8)", "max_output_tokens (4)"),
        "lower min_output_tokens",
    ),
    o("top-p-zero", "{decoder: {top_p: 0}}", ("field 'decoder.top_p'",), "greater than 0"),
    s("models-empty", "models: []\n", ("bad.yaml", "field 'models'"), "at least 1 item"),
    s(
        "grid-empty-list",
        TINY + "grid: {batch_size: []}\n",
        ("bad.yaml", "grid.batch_size"),
        "give a non-empty list",
    ),
    s(
        "controlled-repeated-value",
        TINY + "controlled: {batch_size: [1, 1]}\n",
        ("bad.yaml", "controlled.batch_size", "'batch_size_1' appears twice"),
        "list each value once",
    ),
    # --- settings the device cannot run (float16/bfloat16 do run on CPU in torch 2.x) --
    o(
        "int8-on-cpu",
        "{quantization: int8}",
        ("quantization: int8", "device is cpu"),
        "set quantization: none",
    ),
    o(
        "int4-on-auto-without-gpu",
        "{quantization: int4, device: auto}",
        ("config 'base'", "quantization int4", "on CPU"),
        "set quantization: none",
    ),
    # --- parallelism the machine or the model cannot do ---------------------------------
    o(
        "pipeline-on-cpu",
        "{parallelism: pipeline}",
        ("parallelism: pipeline", "device is cpu"),
        "use parallelism: tensor or data on CPU",
    ),
    o(
        "pipeline-on-auto-without-gpu",
        "{parallelism: pipeline, device: auto}",
        ("config 'base'", "parallelism: pipeline", "on CPU"),
        "run on a GPU node",
    ),
    o(
        "pipeline-over-two-nodes",  # device: cuda, so the CPU refusal above does not answer
        "{parallelism: pipeline, device: cuda, nodes: 2}",
        ("config 'base'", "parallelism: pipeline", "nodes is 2"),
        "set nodes: 1, or use parallelism: tensor across nodes",
    ),
    o(
        "tensor-with-int8",
        "{parallelism: tensor, quantization: int8, device: cuda}",
        ("parallelism: tensor", "quantization: int8"),
        "set quantization: none, or use parallelism: pipeline",
    ),
    c(
        "tensor-without-a-tp-plan",
        ("bad.yaml", "model 'models/gpt2ish'", "gpt2 architecture", "no tensor-parallel plan"),
        "use parallelism: pipeline",
        ["submit-suite", "bad", *LOCAL],
        {
            **model("models/gpt2ish"),
            SUITE: MODELS_FILE + "overrides: {parallelism: tensor, num_processes: 2}\n",
            "models/gpt2ish/config.json": '{"model_type": "gpt2", "n_head": 4}',
        },
    ),
    c(
        "tensor-heads-not-divisible",
        ("bad.yaml", "tensor over 2 processes", "model 'models/odd'", "3 key/value heads"),
        "set num_processes so that the world size divides both head counts",
        ["submit-suite", "bad", *LOCAL],
        {
            **model("models/odd"),
            SUITE: MODELS_FILE + "overrides: {parallelism: tensor, num_processes: 2}\n",
            "models/odd/config.json": '{"model_type": "llama", "hidden_size": 48, '
            '"num_attention_heads": 6, "num_key_value_heads": 3}',
        },
    ),
    c(
        "slurm-tensor-heads-not-divisible",
        ("bad.yaml", "tensor over 4 processes", "2 key/value heads"),
        "set num_processes so that the world size divides both head counts",
        ["submit-suite", "bad", "--executor", "slurm"],
        {SUITE: TINY + "overrides: {parallelism: tensor, num_processes: 4}\n"},
        fake_sbatch=True,
    ),
    o(
        "cuda-without-gpu",
        "{device: cuda}",
        ("config 'base'", "device: cuda"),
        "use device: auto or cpu",
    ),
    o(
        "nvml-on-cpu",
        "{energy_meter: nvml}",
        ("energy_meter: nvml",),
        "use energy_meter: codecarbon",
    ),
    # --- names with '..', '/', absolute paths or '::' ----------------------------------
    c(
        "model-dotdot-missing",
        ("bad.yaml", "model '../../etc/x'"),
        "save a model there with save_pretrained",
        ["submit-suite", "bad", *LOCAL],
        model("../../etc/x"),
    ),
    # Hints that fit the name: the hub's own CLI for a hub id, the demo builder only for
    # the folders it is documented to build.
    c(
        "model-hub-id-not-cached",
        ("bad.yaml", "model 'some-org/never-downloaded'"),
        "`hf download some-org/never-downloaded`",
        ["submit-suite", "bad", *LOCAL],
        model("some-org/never-downloaded"),
    ),
    c(
        "model-demo-folder-missing",
        ("bad.yaml", "model 'models/bench-llama-1b'"),
        "`joulebench make-demo-model --size 1b models/bench-llama-1b`",
        ["submit-suite", "bad", *LOCAL],
        model("models/bench-llama-1b"),
    ),
    c(
        "model-absolute-not-a-model",
        ("bad.yaml", "model '/etc/passwd'", "no config.json"),
        "point model at a folder",
        ["submit-suite", "bad", *LOCAL],
        model("/etc/passwd"),
    ),
    c(
        "model-double-colon",
        ("bad.yaml", "field 'model'", "'a::b'"),
        "must not contain '::'",
        ["submit-suite", "bad", *LOCAL],
        model("a::b"),
    ),
    s(
        "suite-name-slash",
        "name: a/b\n" + TINY,
        ("bad.yaml", "field 'name'", "'a/b'"),
        "may only hold letters",
    ),
    s(
        "suite-name-dotdot",
        "name: ..\n" + TINY,
        ("bad.yaml", "field 'name'", "'..'"),
        "may only hold letters",
    ),
    s(
        "suite-name-colons",
        "name: a::b\n" + TINY,
        ("bad.yaml", "field 'name'"),
        "may only hold letters",
    ),
    c(
        "cli-suite-dotdot",
        ("suite name '../x'",),
        "pass a name from configs/suites/",
        ["submit-suite", "../x", *LOCAL],
    ),
    c(
        "cli-suite-absolute",
        ("suite name '/etc/passwd'",),
        "pass a name from configs/suites/",
        ["submit-suite", "/etc/passwd", *LOCAL],
    ),
    c(
        "cli-suite-colons",
        ("suite name 'a::b'",),
        "pass a name from configs/suites/",
        ["submit-suite", "a::b", *LOCAL],
    ),
    c(
        "resume-suite-dotdot",
        ("suite name '../x'",),
        "pass a name from configs/suites/",
        ["resume-failed", "../x", *LOCAL],
    ),
    c(
        "resume-unknown-suite",
        ("suite 'nope' not found",),
        "available: ",
        ["resume-failed", "nope", *LOCAL],
    ),
    c("status-suite-dotdot", ("suite name '../x'",), "use the name of a file", ["status", "../x"]),
    c(
        "report-suite-dotdot",
        ("suite name '../demo'",),
        "use the name of a file",
        ["report", "../demo"],
    ),
    c(
        "show-id-dotdot",
        ("experiment ID '../0001'",),
        "see `joulebench status`",
        ["show", "../0001"],
    ),
    s(
        "config-name-slash",
        TINY + "configs: {'a/b': {batch_size: 2}}\n",
        ("bad.yaml", "config name 'a/b'"),
        "rename it",
    ),
    s(
        "controlled-value-dotdot",
        TINY + "controlled: {task_type: ['../x']}\n",
        ("bad.yaml", "config name 'task_type_../x'"),
        "rename it",
    ),
    o(
        "task-type-dotdot",
        "{task_type: ../x}",
        ("field 'task_type'", "'../x'"),
        "use lower-case letters",
    ),
    s(
        "model-label-dotdot",
        "models: ['../x']\n",
        ("bad.yaml", "field 'models'", "'../x'"),
        "add it there or fix the name",
    ),
    # --- files and folders -------------------------------------------------------------
    o(
        "dataset-missing",
        "{dataset: {name: nope.jsonl}}",
        ("dataset.name", "nope.jsonl"),
        "paths are relative to where you run",
    ),
    # --- prompts that cannot fit: refused at submission, not by every key's worker -----
    o(
        "prompts-do-not-fit",
        "{num_prompts: 300, max_input_tokens: 64}",
        ("num_prompts 300", "max_input_tokens=64", "'bundled'"),
        "lower num_prompts",
    ),
    c(
        "dataset-too-small",
        ("bad.yaml", "num_prompts 5", "only 3 prompts of 'p.jsonl'"),
        "raise max_input_tokens",
        ["submit-suite", "bad", *LOCAL],
        {
            SUITE: f"{TINY}overrides: {{dataset: {{name: p.jsonl}}, num_prompts: 5}}\n",
            "p.jsonl": '{"text": "hello there"}\n' * 3,
        },
    ),
    c(
        "dataset-text-field-missing",
        ("bad.yaml", "dataset.text_field 'prompt'", "p.jsonl", "columns: text"),
        "set dataset.text_field",
        ["submit-suite", "bad", *LOCAL],
        {
            SUITE: f"{TINY}overrides: {{dataset: {{name: p.jsonl, text_field: prompt}}}}\n",
            "p.jsonl": '{"text": "hello there"}\n' * 3,
        },
    ),
    c(
        "suite-path-missing",
        ("nope.yaml",),
        "check the path",
        ["submit-suite", "nope.yaml", *LOCAL],
    ),
    c(
        "profile-missing",
        ("nope.yaml",),
        "check the name or path",
        [*DEMO, "--profile", "nope.yaml"],
    ),
    c(
        "run-config-missing-model",
        ("c.yaml", "field 'model'"),
        "add it",
        ["run", "c.yaml"],
        {"c.yaml": "device: cpu\n"},
    ),
    c(
        "tracker-dir-is-file",
        ("--tracker-dir configs/base.yaml", "is a file"),
        "pass a folder",
        [*DEMO, "--tracker-dir", "configs/base.yaml"],
    ),
    c(
        "tracker-dir-under-file",
        ("--tracker-dir configs/base.yaml/t", "is a file"),
        "pass another folder",
        [*DEMO, "--tracker-dir", "configs/base.yaml/t"],
    ),
    c(
        "results-dir-is-file",
        ("--results-dir configs/base.yaml", "is a file"),
        "pass a folder",
        [*DEMO, "--results-dir", "configs/base.yaml"],
    ),
    c(
        "results-dir-under-file",
        ("--results-dir configs/base.yaml/r", "is a file"),
        "pass another folder",
        [*DEMO, "--results-dir", "configs/base.yaml/r"],
    ),
    c(
        "status-tracker-dir-is-file",
        ("--tracker-dir configs/base.yaml",),
        "pass the folder",
        ["status", "--tracker-dir", "configs/base.yaml"],
    ),
    c(
        "run-results-dir-is-file",
        ("--results-dir c.yaml", "is a file"),
        "pass a folder",
        ["run", "c.yaml", "--results-dir", "c.yaml"],
        {"c.yaml": "model: models/tiny-llama\n"},
    ),
    c(
        "configs-dir-is-file",
        ("--configs-dir configs/base.yaml",),
        "pass the folder",
        [*DEMO, "--configs-dir", "configs/base.yaml"],
    ),
    # --- command-line values -----------------------------------------------------------
    c(
        "cycles-zero",
        ("'--cycles'", "0"),
        "range x>=1",
        ["submit-suite", "demo", "--cycles", "0", *LOCAL],
    ),
    c(
        "cycles-negative",
        ("'--cycles'", "-3"),
        "range x>=1",
        ["submit-suite", "demo", "--cycles", "-3", *LOCAL],
    ),
    c(
        "cycles-word",
        ("'--cycles'", "'many'"),
        "not a valid integer",
        ["submit-suite", "demo", "--cycles", "many", *LOCAL],
    ),
    c("time-word", ("--time", "'abc'"), "use e.g. 90, 02:00:00", [*DEMO, "--time", "abc"]),
    c(
        "time-under-11-min",
        ("--time", "5 is under 11 minutes"),
        "ask for at least 00:11:00",
        [*DEMO, "--time", "5"],
    ),
    c(
        "slurm-time-under-11-min",
        ("--time", "5 is under 11 minutes"),
        "ask for at least 00:11:00",
        ["submit-suite", "demo", "--executor", "slurm", "--time", "5"],
        fake_sbatch=True,
    ),
    c(
        "slurm-gpus-below-processes",
        ("--gpus-per-node 1", "num_processes=2"),
        "raise --gpus-per-node",
        ["submit-suite", "bad", "--executor", "slurm", "--gpus-per-node", "1"],
        {SUITE: TINY + "overrides: {device: cuda, num_processes: 2}\n"},
        fake_sbatch=True,
    ),
    c(
        "slurm-int8-without-bitsandbytes",
        ("bad.yaml", "quantization int8", "bitsandbytes"),
        "pip install bitsandbytes",
        ["submit-suite", "bad", "--executor", "slurm"],
        {SUITE: TINY + "overrides: {device: cuda, quantization: int8}\n"},
        fake_sbatch=True,
    ),
    c(
        "max-parallel-with-slurm",
        ("--max-parallel 2", "--executor local"),
        "--array-parallelism",
        ["submit-suite", "demo", "--executor", "slurm", "--max-parallel", "2"],
        fake_sbatch=True,
    ),
    s(
        "max-parallel-experiment-bigger-than-node",
        TINY + "overrides: {device: cpu, num_processes: 64}\n",
        ("bad.yaml", "num_processes needs 64 cpu device(s)"),
        "lower num_processes",
        "--max-parallel",
        "2",
    ),
    c(
        "profile-exclusive-word",
        ("p.yaml", "field 'exclusive'", "must be true or false"),
        "true or false",
        [*DEMO, "--profile", "p.yaml"],
        {"p.yaml": "exclusive: always\n"},
    ),
    c(
        "slurm-without-sbatch",
        ("--executor slurm", "sbatch is not on PATH"),
        "use --executor local",
        ["submit-suite", "demo", "--executor", "slurm"],
    ),
    c(
        "executor-unknown",
        ("'--executor'", "'cloud'"),
        "is not one of",
        ["submit-suite", "demo", "--executor", "cloud"],
    ),
    c(
        "array-parallelism-zero",
        ("'--array-parallelism'",),
        "range x>=1",
        [*DEMO, "--array-parallelism", "0"],
    ),
    c(
        "partition-two-words",
        ("--partition", "'a b'"),
        "one word with no spaces",
        [*DEMO, "--partition", "a b"],
    ),
    c(
        "account-newline",
        ("--account",),
        "one word with no spaces",
        [*DEMO, "--account", "proj\n#SBATCH --qos=top"],
    ),
    c(
        "resume-cause-unknown",
        ("'--cause'", "'bogus'"),
        "is not one of",
        ["resume-failed", "demo", "--cause", "bogus"],
    ),
    c("mem-word", ("--mem", "'lots'"), "e.g. 32G", [*DEMO, "--mem", "lots"]),
    c("mem-fraction", ("--mem", "'1.5G'"), "whole number", [*DEMO, "--mem", "1.5G"]),
    c(
        "profile-mem-word",
        ("p.yaml", "field 'mem'", "'plenty'"),
        "e.g. 32G",
        [*DEMO, "--profile", "p.yaml"],
        {"p.yaml": "mem: plenty\n"},
    ),
    c("qos-slash", ("--qos", "'a/b'"), "QOS name", [*DEMO, "--qos", "a/b"]),
    c(
        "constraint-semicolon",
        ("--constraint", "'a100;rm'"),
        "node-feature expression",
        [*DEMO, "--constraint", "a100;rm"],
    ),
    # --- the prompt-fit check counts exactly as the worker does: no slack --------------
    o(
        "prompts-just-do-not-fit",
        "{num_prompts: 150, max_input_tokens: 64}",
        ("num_prompts 150", "only 146 prompts", "max_input_tokens=64"),
        "lower num_prompts",
    ),
    o(
        "max-input-tokens-tiny",
        "{max_input_tokens: 4}",
        ("max_input_tokens=4",),
        "raise max_input_tokens",
    ),
    # --- CPU processes beyond the cores: refused like more processes than GPUs ---------
    o(
        "cpu-processes-above-cores",
        "{num_processes: 64}",
        ("config 'base'", "num_processes: 64", "CPU core"),
        "set num_processes <=",
    ),
    # --- several problems: all of them in the one line --------------------------------
    o(
        "several-problems",
        "{batch_size: 0, num_prompts: many, max_input_tokens: -1}",
        ("field 'batch_size'", "field 'num_prompts'", "field 'max_input_tokens'"),
        "greater than 0",
    ),
    c(
        "several-models-missing",
        ("bad.yaml", "model 'org-a/one'", "model 'org-b/two'"),
        "hf download",
        ["submit-suite", "bad", *LOCAL],
        {
            SUITE: "models_file: m.yaml\nmodels: [x, y]\n",
            "configs/suites/m.yaml": "models:\n  x: {model: org-a/one, device: cpu}\n"
            "  y: {model: org-b/two, device: cpu}\n",
        },
    ),
    # --- a suite given to `run`: named as a suite, with the command to use -------------
    c(
        "run-a-suite-file",
        ("configs/suites/demo.yaml", "is a suite", "'models'"),
        "submit-suite configs/suites/demo.yaml",
        ["run", "configs/suites/demo.yaml"],
    ),
]

# The dry run is the check: every refused submission is refused the same by its dry run.
DRY_CASES = [case for case in CASES if case.args[0] in ("submit-suite", "resume-failed")]


@pytest.fixture(scope="session")
def fake_sbatch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An `sbatch` that fails if ever called: these cases must be refused before it."""
    folder = tmp_path_factory.mktemp("fake-sbatch")
    script = folder / "sbatch"
    script.write_text("#!/bin/sh\necho 'sbatch must not be called' >&2\nexit 99\n")
    script.chmod(0o755)
    return folder


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def assert_one_line_error(result: Result, *must: str) -> str:
    lines = output_lines(result)
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for text in must:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    case: Case, checkout: Path, fake_sbatch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel, text in case.files.items():
        path = checkout / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    if case.fake_sbatch:
        monkeypatch.setenv("PATH", f"{fake_sbatch_dir}{os.pathsep}{os.environ['PATH']}")
    elif "slurm" in case.args:
        monkeypatch.setenv(
            "PATH",
            os.pathsep.join(
                p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "sbatch").exists()
            ),
        )
    before = snapshot(checkout)
    result = invoke(case.args)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, *case.names, case.fix)
    assert snapshot(checkout) == before
    for folder in ("results", "persistent_progress_trackers", "logs"):
        assert not (checkout / folder).exists()


@pytest.mark.parametrize("case", DRY_CASES, ids=[case.id for case in DRY_CASES])
def test_a_dry_run_refuses_what_the_real_run_refuses_with_the_same_line(
    case: Case, checkout: Path, fake_sbatch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_bad_input_is_one_line_exit_2_and_changes_nothing(
        Case(
            case.id, [*case.args, "--dry-run"], case.names, case.fix, case.files, case.fake_sbatch
        ),
        checkout,
        fake_sbatch_dir,
        monkeypatch,
    )


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 35
    assert len({case.id for case in CASES}) == len(CASES)


# ---- environments that need a mount (root here) or an injected fault -----------------


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()[:80]}); needs root")


@pytest.fixture
def mounts() -> object:
    mounted: list[Path] = []
    yield mounted
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


def test_read_only_results_dir_is_refused_before_anything_is_written(
    checkout: Path, tmp_path_factory: pytest.TempPathFactory, mounts: list[Path]
) -> None:
    """Root ignores chmod 0555, but not a read-only mount: access() says EROFS."""
    source = tmp_path_factory.mktemp("ro-source")
    target = checkout / "ro"
    target.mkdir()
    _mount("--bind", str(source), str(target))
    mounts.append(target)
    _mount("-o", "remount,bind,ro", str(target))
    before = snapshot(checkout)
    result = invoke([*DEMO, "--results-dir", "ro/results"])
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, "--results-dir ro/results", "not writable", "pass another folder")
    assert snapshot(checkout) == before
    assert not (checkout / "persistent_progress_trackers").exists()


def _registered_tracker(checkout: Path, tracker_dir: Path) -> dict[str, str]:
    """A tracker holding the demo suite, as an earlier submit-suite would leave it."""
    from joulebench.suite import load_and_expand
    from joulebench.tracker import ProgressTracker

    specs = load_and_expand("demo", 1, checkout / "configs")
    tracker = ProgressTracker(tracker_dir)
    tracker.register("demo", [(s.key, s.config_hash) for s in specs])
    tracker.sync()
    return _states(tracker_dir)


def _states(tracker_dir: Path) -> dict[str, str]:
    from joulebench.tracker import ProgressTracker

    state = ProgressTracker(tracker_dir).read()
    return {key: rec.state for key, rec in state.keys.items()} | {"last_id": str(state.last_id)}


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_full_disk_on_a_real_tmpfs_is_one_line_and_keeps_the_tracker(
    checkout: Path, mounts: list[Path]
) -> None:
    small = checkout / "small"
    small.mkdir()
    _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small))
    mounts.append(small)
    tracker_dir = small / "tracker"
    states = _registered_tracker(checkout, tracker_dir)
    _fill(small)
    before = snapshot(tracker_dir)
    result = invoke([*DEMO, "--tracker-dir", str(tracker_dir)])
    assert result.exit_code == 2, result.output
    line = assert_one_line_error(result, "No space left on device", "free space")
    assert str(tracker_dir) in line
    assert _states(tracker_dir) == states
    after = snapshot(tracker_dir)
    assert {k: v for k, v in after.items() if v[0] == "file"} == {
        k: v for k, v in before.items() if v[0] == "file"
    }  # no temp file left behind


def _fd_under(fd: int, folder: Path) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder.resolve()))
    except OSError:
        return False


@pytest.mark.parametrize("call", ["fsync", "write"])
def test_injected_enospc_is_one_line_and_the_previous_state_loads(
    call: str, checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync: the atomic snapshot write of the pre-run backup; write: the journal append."""
    tracker_dir = checkout / "persistent_progress_trackers"
    states = _registered_tracker(checkout, tracker_dir)
    real: Callable = getattr(os, call)

    def full(fd: int, *args: object) -> object:
        if _fd_under(fd, tracker_dir):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, *args)

    monkeypatch.setattr(os, call, full)
    # A changed config makes register append events, so `write` reaches the journal.
    (checkout / "configs" / "suites" / "demo.yaml").write_text(
        (checkout / "configs" / "suites" / "demo.yaml")
        .read_text()
        .replace("warmup_iterations: 1", "warmup_iterations: 2")
    )
    result = invoke(DEMO)
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert_one_line_error(
        result, str(Path("persistent_progress_trackers")), "No space left on device", "free space"
    )
    assert _states(tracker_dir) == states
    assert not list(tracker_dir.rglob("*.tmp"))
    journal = (tracker_dir / "journal.jsonl").read_bytes()
    assert journal.endswith(b"\n")


# ---- sacct returning garbage: status degrades to a one-line note ----------------------

SACCT_GARBAGE = {
    "not-json-not-table": ("echo 'Segmentation fault (core dumped) <html>'", "unexpected output"),
    "jobs-not-a-list": (
        """case "$*" in *--json*) echo '{"jobs": "oops"}';; *) echo garbage;;
                        esac""",
        "unexpected output",
    ),
    "record-wrong-shape": (
        """case "$*" in *--json*) echo '{"jobs": [42, {"job_id": null}]}';;
                           *) printf 'JobID|State\\n12_[-]|RUNNING\\n';; esac""",
        "unreadable job ID",
    ),
    "time-not-a-number": (
        """case "$*" in *--json*)
        echo '{"jobs": [{"job_id": 7, "time": {"submission": "yesterday"}}]}';;
        *) echo 'JobID,State'; echo '7,RUNNING';; esac""",
        "unexpected output",
    ),
    "fails-with-noise": (
        "echo 'sacct: error: slurmdbd: Connection refused' >&2; echo 'line two' >&2; exit 1",
        "sacct failed",
    ),
}


@pytest.mark.parametrize("name", SACCT_GARBAGE)
def test_sacct_garbage_makes_status_fall_back_with_one_note(
    name: str,
    checkout: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from joulebench.tracker import ProgressTracker

    script, expected = SACCT_GARBAGE[name]
    tracker_dir = checkout / "persistent_progress_trackers"
    _registered_tracker(checkout, tracker_dir)
    tracker = ProgressTracker(tracker_dir)
    keys = sorted(tracker.read().keys)
    tracker.record_submission("demo", keys, "4242", {k: f"4242_{i}" for i, k in enumerate(keys)})
    tracker.sync()
    fake = tmp_path_factory.mktemp("fake-sacct")
    (fake / "sacct").write_text(f"#!/bin/sh\n{script}\n")
    (fake / "sacct").chmod(0o755)
    # squeue down too, whatever this machine has: with a live squeue, status would take
    # live states from it (a different, tested note), so the case would hang on the host.
    (fake / "squeue").write_text(
        "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n"
    )
    (fake / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    before = snapshot(checkout)
    result = invoke(["status", "demo"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    notes = [line for line in output_lines(result) if "sacct" in line]
    assert len(notes) == 1 and notes[0].startswith("note: "), result.output
    assert expected in notes[0] and "showing the tracker alone" in notes[0]
    assert snapshot(checkout) == before
