"""Security rules, checked on the source (ast) and by behaviour.

1. YAML only through safe loading.  2. No shell strings.  3. Names never steer a write
outside results/, the tracker and logs/.  4. Files follow the user's umask; nothing is
world-writable.  5. Nothing unpickles data from outside the job's own folder.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from joulebench.config.loader import load_yaml_mapping
from joulebench.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "joulebench"
SOURCES = sorted(SRC.rglob("*.py"))


def dotted(node: ast.AST) -> str:
    """'yaml.load' for yaml.load, 'subprocess.run' for subprocess.run, '' otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in SOURCES]


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(SRC.parent)}:{getattr(node, 'lineno', '?')}"


def test_the_scans_see_the_source() -> None:
    assert len(SOURCES) > 40 and SRC / "config" / "loader.py" in SOURCES


# ---- 1. YAML ---------------------------------------------------------------------------

UNSAFE_YAML = {
    "yaml.load",
    "yaml.load_all",
    "yaml.unsafe_load",
    "yaml.unsafe_load_all",
    "yaml.full_load",
    "yaml.full_load_all",
    "yaml.Loader",
    "yaml.UnsafeLoader",
    "yaml.FullLoader",
    "yaml.CLoader",
    "yaml.CUnsafeLoader",
    "yaml.CFullLoader",
    "yaml.add_constructor",
    "yaml.add_multi_constructor",
}
SAFE_BASES = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader"}


def test_yaml_is_only_safe_loaded() -> None:
    found = []
    for path, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and dotted(node) in UNSAFE_YAML:
                found.append(f"{where(path, node)} uses {dotted(node)}")
            if isinstance(node, ast.ImportFrom) and node.module == "yaml":
                found.append(f"{where(path, node)} imports names from yaml directly")
            if isinstance(node, ast.ClassDef):
                bases = {dotted(b) for b in node.bases if dotted(b).startswith("yaml.")}
                loaders = {b for b in bases if b.endswith("Loader")}
                if loaders - SAFE_BASES:
                    found.append(f"{where(path, node)} subclasses {loaders}")
    assert not found, found


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_python_tags_are_refused_and_run_nothing(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.yaml"
    path.write_text(f'models: {tag} ["touch {marker}"]\n')
    with pytest.raises(ConfigError, match=r"evil.yaml: line 1 column \d+: tag !!python/") as info:
        load_yaml_mapping(path)
    assert "\n" not in str(info.value) and "remove the tag" in str(info.value)
    assert not marker.exists()


def test_python_tag_in_a_suite_through_the_cli(checkout: Path) -> None:
    marker = checkout / "PWNED"
    (checkout / "configs" / "suites" / "evil.yaml").write_text(
        f'models: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "joulebench", "submit-suite", "evil", "--executor", "local"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        done.stderr.count("\n") == 1
        and "tag !!python/object/apply:os.system is refused" in done.stderr
    )
    assert not marker.exists()


# ---- 2. no shell strings ---------------------------------------------------------------

RUNNERS = {
    "subprocess.run",
    "subprocess.Popen",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
}
SHELLS = {
    "os.system",
    "os.popen",
    "os.execl",
    "os.execlp",
    "os.spawnl",
    "os.spawnlp",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_shell",
}


def test_no_shell_strings_anywhere_in_src() -> None:
    found = []
    for path, tree in trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = dotted(node.func)
            if name in SHELLS:
                found.append(f"{where(path, node)} calls {name}")
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"{where(path, node)} passes shell=")
            if (
                name in RUNNERS
                and node.args
                and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp))
            ):
                found.append(f"{where(path, node)} gives {name} a string, not an argument list")
    assert not found, found


def test_every_subprocess_call_site_is_known() -> None:
    """New call sites get a look: each must take an argument list built in code."""
    sites = sorted(
        f"{path.relative_to(SRC)}:{dotted(node.func)}"
        for path, tree in trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and dotted(node.func) in RUNNERS
    )
    # provenance: `git rev-parse HEAD` and `git status --porcelain` (git_dirty), fixed lists.
    assert sites == [
        "results/provenance.py:subprocess.run",
        "results/provenance.py:subprocess.run",
        "runner/launch.py:subprocess.Popen",
        "schedulers/slurm.py:subprocess.run",
        "schedulers/slurm_nodes.py:subprocess.run",  # sinfo -N, scontrol show hostnames
    ]


# ---- 5. no unpickling of foreign data --------------------------------------------------

UNPICKLERS = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "cloudpickle.load",
    "cloudpickle.loads",
    "joblib.load",
    "dill.load",
    "dill.loads",
    "torch.load",
    "numpy.load",
    "np.load",
    "pandas.read_pickle",
    "pd.read_pickle",
    "shelve.open",
    "marshal.load",
    "marshal.loads",
}


def test_nothing_in_src_unpickles() -> None:
    found = []
    for path, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = dotted(node.func)
                if name == "torch.load" and any(
                    kw.arg == "weights_only"
                    and isinstance(kw.value, ast.Constant)
                    and kw.value.value is True
                    for kw in node.keywords
                ):
                    continue  # the restricted unpickler: tensors and plain containers only
                if name in UNPICKLERS or name.endswith(".read_pickle"):
                    found.append(f"{where(path, node)} calls {name}")
                for kw in node.keywords:
                    if kw.arg in ("trust_remote_code", "allow_pickle") and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        found.append(f"{where(path, node)} passes {kw.arg}=")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if {"pickle", "cloudpickle", "dill", "shelve", "marshal"} & set(names):
                    found.append(f"{where(path, node)} imports a pickler")
    assert not found, found


def test_submitit_is_only_at_the_slurm_edge_and_gets_plain_data() -> None:
    """submitit pickles the task into logs/submitit/ and the job unpickles it from there;
    what it pickles is strings and a JSON-able payload, never joulebench objects."""
    from joulebench.config.models import ExperimentConfig
    from joulebench.schedulers.slurm_task import SuiteTask, spec_from_payload, spec_payload
    from joulebench.suite.spec import ExperimentSpec

    users = sorted(
        str(path.relative_to(SRC))
        for path, tree in trees()
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any("submitit" in (a.name or "") for a in node.names)
        | ("submitit" in (getattr(node, "module", None) or ""))
    )
    assert users and all(u.startswith("schedulers/slurm") for u in users), users
    spec = ExperimentSpec("s", "c", 1, ExperimentConfig(model="models/tiny"))
    payload = spec_payload(spec)
    assert spec_from_payload(json.loads(json.dumps(payload))).key == spec.key
    task = SuiteTask(Path("t"), Path("r"), Path("."))
    assert all(isinstance(v, str) for v in vars(task).values())


def test_torch_load_defaults_to_weights_only() -> None:
    """transformers loads a .bin checkpoint with torch.load; torch >= 2.6 restricts it."""
    import inspect

    import torch
    from transformers import modeling_utils

    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
    source = inspect.getsource(modeling_utils.load_state_dict)
    assert "weights_only: bool = True" in source
    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 6)


# ---- 3 and 4. names in paths, and the umask: one real run per umask --------------------

OUTPUT_DIRS = ("results", "persistent_progress_trackers", "logs")


def tree_of(root: Path) -> dict[str, int]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = path.lstat().st_mode
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_tricky_model_paths_write_only_inside_the_output_dirs_with_the_umask(
    checkout: Path, umask: int
) -> None:
    """Models named '../models/x' and 'sub/../../models/x' run, and every file they make
    lies under results/, the tracker or logs/, with no permission the umask forbids."""
    exp = checkout / "exp"
    exp.mkdir()
    shutil.move(checkout / "configs", exp / "configs")
    (exp / "sub").mkdir()
    entry = (
        "device: cpu, precision: float32, num_prompts: 2, batch_size: 2, "
        "max_input_tokens: 64, max_output_tokens: 2, min_output_tokens: 2, "
        "num_processes: 1, warmup_iterations: 0, energy_meter: codecarbon, "
        "idle_baseline_s: 0, count_flops: false, save_outputs: true"
    )
    (exp / "configs" / "models.yaml").write_text(
        f"models:\n  up: {{model: ../models/tiny-llama, {entry}}}\n"
        f"  twisty: {{model: sub/../../models/tiny-llama, {entry}}}\n"
    )
    (exp / "configs" / "suites" / "tricky.yaml").write_text(
        "models: [up, twisty]\nconfigs: {c.1: {seed: 1}}\n"
    )
    before_parent = set(os.listdir(checkout.parent))
    before = tree_of(checkout)
    done = subprocess.run(
        [
            "sh",
            "-c",
            f'umask {umask:03o} && exec "$0" -m joulebench submit-suite tricky --executor local',
            sys.executable,
        ],
        cwd=exp,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 run, 0 failed" in done.stdout
    created = {p: m for p, m in tree_of(checkout).items() if p not in before}
    assert created
    outside = [p for p in created if not p.startswith(tuple(f"exp/{d}" for d in OUTPUT_DIRS))]
    assert not outside, outside
    assert set(os.listdir(checkout.parent)) == before_parent
    allowed = 0o777 & ~umask
    for rel, mode in created.items():
        if stat.S_ISLNK(mode):
            continue
        assert not mode & stat.S_IWOTH, f"{rel} is world-writable ({mode:o})"
        assert not stat.S_IMODE(mode) & ~allowed, (
            f"{rel}: {stat.S_IMODE(mode):o} vs umask {umask:03o}"
        )
    results = [p for p in created if p.startswith("exp/results/raw_results/")]
    assert len({p.split("/")[3] for p in results}) == 2  # two experiment folders, by ID only
