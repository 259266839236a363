"""Real results to serve (a small suite through the real local executor) and a real
uvicorn server on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

TOKEN = "test-token-0123456789"
# Four named configs x 2 cycles = the demo's 8 experiments, at the smallest settings
# that still run every step (2 cores are shared: seconds, not minutes).
SUITE = """\
models: [tiny-demo]
overrides:
  num_prompts: 4
  batch_size: 2
  max_input_tokens: 64
  max_output_tokens: 4
  min_output_tokens: 4
  num_processes: 1
  warmup_iterations: 0
  energy_meter: codecarbon
  idle_baseline_s: 0
configs:
  batch_1: {batch_size: 1}
  batch_2: {batch_size: 2}
  batch_4: {batch_size: 4}
  sampling: {decoder: {mode: sampling, temperature: 0.7}}
"""
NINTH = "  batch_3: {batch_size: 3}\n"


def submit(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "joulebench", "submit-suite", "demo", "--executor", "local", *args],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="session")
def demo_checkout(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A checkout holding 8 finished experiments of suite 'demo' (read-only: copy it)."""
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(REPO / "configs", root / "configs")
    (root / "models").mkdir()
    (root / "models" / "tiny-llama").symlink_to(tiny_model)
    (root / "configs" / "suites" / "demo.yaml").write_text(SUITE)
    done = submit(root, "--cycles", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 run, 0 failed" in done.stdout
    return root


@pytest.fixture
def checkout_copy(demo_checkout: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "checkout"
    shutil.copytree(demo_checkout, copy, symlinks=True)
    return copy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    root: Path
    url: str
    app: Any
    cache: Any

    def get(
        self, path: str, token: str | None = TOKEN, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, _, body = self.get(path, **kwargs)
        return status, json.loads(body) if body else None


def start_server(root: Path, token: str | None = TOKEN) -> Iterator[Server]:
    import uvicorn

    from joulebench.api import Paths
    from joulebench.serve.app import build_app
    from joulebench.serve.state import StateCache

    paths = Paths(root / "configs", root / "persistent_progress_trackers", root / "results")
    cache = StateCache(paths, use_sacct=False)
    app = build_app(paths, token, cache=cache)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Server(root, f"http://127.0.0.1:{port}", app, cache)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served(checkout_copy: Path) -> Iterator[Server]:
    yield from start_server(checkout_copy)
