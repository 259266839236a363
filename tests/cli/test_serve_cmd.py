"""`joulebench serve` as a user starts it: the URL with its token, refusals, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import REPO
from tests.serve.conftest import free_port


def jb(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joulebench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_help_imports_neither_the_web_stack_nor_torch() -> None:
    probe = (
        "import sys\nfrom joulebench.cli.main import cli\n"
        "try:\n    cli(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'starlette', 'uvicorn') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    ).stdout
    assert "ssh -L" in out and "Example" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_no_token_off_loopback_is_refused_in_one_line(tmp_path: Path) -> None:
    result = jb("serve", "--host", "0.0.0.0", "--no-token", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("Error: --host 0.0.0.0 with --no-token")
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []


def test_a_taken_port_is_refused_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = jb("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"--port {port}: cannot listen there" in result.stderr
    assert "pick another with --port" in result.stderr and "Traceback" not in result.stderr


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _start(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "joulebench", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "joulebench dashboard (read-only), Ctrl-C to stop:"
    return proc, proc.stdout.readline().strip()


def _wait_up(url: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while True:
        try:
            _get(url)
            return
        except OSError:
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)


def test_it_prints_one_url_with_a_token_serves_it_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc, url = _start(tmp_path, "--port", str(port))
    try:
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        assert len(url.split("token=")[1]) >= 24
        _wait_up(url)
        assert _get(url) == 200
        assert _get(f"http://127.0.0.1:{port}/api/suites") == 401
        assert _get(url.replace("/?token=", "/metrics?token=")) == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_no_token_on_loopback_warns_and_serves(tmp_path: Path) -> None:
    port = free_port()
    proc, url = _start(tmp_path, "--port", str(port), "--no-token")
    try:
        assert url == f"http://127.0.0.1:{port}/"
        _wait_up(url)
        assert _get(url + "metrics") == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "Warning: --no-token" in (proc.stderr.read() if proc.stderr else "")


def test_a_tracker_dir_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "tracker").write_text("not a folder")
    result = jb("serve", "--tracker-dir", "tracker", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("Error: --tracker-dir tracker: is a file")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracker"]


def test_the_token_can_come_from_the_environment_and_stays_out_of_ps(tmp_path: Path) -> None:
    token = "env-token_0123456789"
    port = free_port()
    proc, url = _start(tmp_path, "--port", str(port), env={"JOULEBENCH_TOKEN": token})
    try:
        assert url == f"http://127.0.0.1:{port}/?token={token}"
        _wait_up(url)
        assert _get(url.replace("/?token=", "/metrics?token=")) == 200
        assert _get(f"http://127.0.0.1:{port}/metrics?token=other-token-0123") == 401
        assert token.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_no_token_wins_over_a_token_in_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {"JOULEBENCH_TOKEN": "env-token_0123456789"}
    proc, url = _start(tmp_path, "--port", str(port), "--no-token", env=env)
    try:
        assert url == f"http://127.0.0.1:{port}/"
        _wait_up(url)
        assert _get(url + "metrics") == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_a_token_with_other_characters_is_refused_in_one_line(tmp_path: Path) -> None:
    for args, env in (
        (("--token", "bad token/+=0123"), None),
        ((), {"JOULEBENCH_TOKEN": "bad;token=0123"}),
    ):
        result = jb("serve", "--port", str(free_port()), *args, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert result.stderr.startswith("Error: --token (or JOULEBENCH_TOKEN): only letters")
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_printed_url_quotes_the_token() -> None:
    from joulebench.serve.server import ServeOptions, url

    assert url(ServeOptions(port=9000, token="a+b/c=d&e")) == (
        "http://127.0.0.1:9000/?token=a%2Bb%2Fc%3Dd%26e"
    )
