"""Which exact model a result came from, found without reading its weights.

A hub model's revision is the commit its cache snapshot holds. A local folder has no
commit, so it gets a fingerprint of what is cheap to read and changes whenever the model
does in practice: the config and tokenizer files, every weight file's name and size, and
the safetensors headers (tensor names, dtypes, shapes, offsets). A weight file is never
read past its header: a 70B checkpoint fingerprints as fast as a tiny one. Weights changed
in place with the same names, sizes and layout keep the fingerprint; that is the price.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCAL_PREFIX = "local:"
HASHED_WHOLE = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack")
# Real safetensors headers are kilobytes to a few MB; a larger length prefix means the
# file is not what its name says, and reading it would defeat the point.
MAX_HEADER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ModelRevision:
    revision: str | None  # hub commit hash, "local:<sha256 prefix>", or None if unknown
    source: str  # "hub_cache", "local_fingerprint" or "unknown"


def model_revision(model: str, hub_revision: str = "main") -> ModelRevision:
    """The revision of ``model`` as transformers resolves it: a folder first, else the hub."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        try:
            return ModelRevision(local_fingerprint(folder), "local_fingerprint")
        except OSError as exc:
            log.warning("model %s: no fingerprint (%s)", model, exc)
            return ModelRevision(None, "unknown")
    commit = hub_cache_commit(model, hub_revision)
    return ModelRevision(commit, "hub_cache" if commit else "unknown")


def hub_cache_commit(repo_id: str, revision: str = "main") -> str | None:
    """The commit ``refs/<revision>`` points at in the local hub cache, if it is there.

    Layout: <cache>/models--org--name/{refs/<revision>, snapshots/<commit>/}. With no ref
    (a cache filled by hand or by a revision pin) a single snapshot is unambiguous.
    """
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    try:
        commit = (folder / "refs" / revision).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        commit = ""
    if commit:
        return commit
    try:
        snapshots = [p.name for p in (folder / "snapshots").iterdir() if p.is_dir()]
    except OSError:
        return None
    return snapshots[0] if len(snapshots) == 1 else None


def local_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        name = path.name
        if name in HASHED_WHOLE or name.endswith(".index.json"):
            digest.update(f"file {name}\n".encode())
            digest.update(path.read_bytes())
        elif name.endswith(WEIGHT_SUFFIXES) and path.is_file():
            digest.update(f"weights {name} {path.stat().st_size}\n".encode())
            if name.endswith(".safetensors"):
                digest.update(_safetensors_header(path))
    return LOCAL_PREFIX + digest.hexdigest()[:16]


def _safetensors_header(path: Path) -> bytes:
    """The JSON header: 8-byte little-endian length, then that many bytes."""
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return b""
        length = int.from_bytes(prefix, "little")
        if length > MAX_HEADER_BYTES:
            return b""
        return handle.read(length)
