"""Model revision: the hub cache's commit, or a fingerprint that never reads the weights."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from joulebench.results.model_revision import local_fingerprint, model_revision
from joulebench.results.provenance import collect, git_dirty

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(root: Path, repo_id: str, refs: dict[str, str], snapshots: list[str]) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs,snapshots}."""
    folder = root / f"models--{repo_id.replace('/', '--')}"
    for name, commit in refs.items():
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / name).write_text(commit)
    for commit in snapshots:
        (folder / "snapshots" / commit).mkdir(parents=True)
    return root


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)  # so "org/name" is not a folder here
    return tmp_path / "hub"


def test_a_hub_model_gets_the_commit_its_main_ref_points_at(hub_cache: Path) -> None:
    _hub_cache(hub_cache, "org/model", {"main": COMMIT + "\n"}, [COMMIT, "f" * 40])
    got = model_revision("org/model")
    assert (got.revision, got.source) == (COMMIT, "hub_cache")


def test_without_a_ref_only_a_single_snapshot_is_trusted(hub_cache: Path) -> None:
    _hub_cache(hub_cache, "org/one", {}, [COMMIT])
    _hub_cache(hub_cache, "org/two", {}, [COMMIT, "f" * 40])
    assert model_revision("org/one").revision == COMMIT
    two, absent = model_revision("org/two"), model_revision("org/absent")
    assert (two.revision, two.source) == (None, "unknown")
    assert (absent.revision, absent.source) == (None, "unknown")


def test_a_local_folder_fingerprint_follows_config_and_weight_layout(
    tiny_model: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    first = model_revision(str(copy))
    assert first.source == "local_fingerprint" and first.revision is not None
    assert first.revision.startswith("local:") and len(first.revision) == 6 + 16
    assert first.revision == local_fingerprint(tiny_model)  # a copy is the same model

    config = json.loads((copy / "config.json").read_text())
    config["rope_theta"] = 1234.0
    (copy / "config.json").write_text(json.dumps(config))
    second = local_fingerprint(copy)
    assert second != first.revision

    (copy / "extra.bin").write_bytes(b"\0" * 10)
    assert local_fingerprint(copy) not in (first.revision, second)


def _safetensors(path: Path, header: dict[str, object], data_bytes: int) -> None:
    raw = json.dumps(header).encode()
    with path.open("wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        handle.truncate(8 + len(raw) + data_bytes)  # sparse: no disk, still read as bytes


def _bytes_read() -> int:
    return int(
        dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())["rchar"]
    )


def test_a_safetensors_file_is_read_to_its_header_and_no_further(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [8192, 8192], "data_offsets": [0, 1 << 28]}}
    _safetensors(tmp_path / "model.safetensors", header, 1 << 28)
    (tmp_path / "config.json").write_text("{}")
    before = _bytes_read()
    first = local_fingerprint(tmp_path)
    assert _bytes_read() - before < 1 << 20  # 256 MiB of weights, well under 1 MiB read

    header["w"]["dtype"] = "BF16"  # same file size, another layout
    _safetensors(tmp_path / "model.safetensors", header, 1 << 28)
    assert local_fingerprint(tmp_path) != first


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_git_dirty_counts_changed_tracked_files_not_untracked_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert git_dirty() is None  # not a git work tree
    _git(tmp_path, "init", "-q")
    (tmp_path / "suite.yaml").write_text("a: 1\n")
    _git(tmp_path, "add", "suite.yaml")
    _git(tmp_path, "commit", "-qm", "x")
    (tmp_path / "results.csv").write_text("untracked\n")
    assert git_dirty() is False
    (tmp_path / "suite.yaml").write_text("a: 2\n")
    assert git_dirty() is True
    assert not (tmp_path / ".git" / "index.lock").exists()

    prov = collect(str(tmp_path))
    assert prov["git_dirty"] is True and prov["model_revision_source"] == "local_fingerprint"
