"""Screenshots of the dashboard for the README, in the same headless Chromium the tests use.

    cd CHECKOUT && python /path/to/docs/screenshots/take.py [EXPERIMENT_ID]

CHECKOUT is an experiments folder with results (e.g. after `make demo`); writes
suites.png, suite.png and experiment.png next to this script.
"""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from joulebench.api import Paths  # noqa: E402
from joulebench.serve.app import build_app  # noqa: E402


def main() -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    experiment = sys.argv[1] if len(sys.argv) > 1 else "0001"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(Paths(), "screenshot-token", use_sacct=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(f"{base}/?token=screenshot-token")
        page.locator(".progress-text").first.wait_for()
        page.screenshot(path=HERE / "suites.png", full_page=True)
        page.goto(f"{base}/suites/demo")
        page.locator("#results").wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=HERE / "suite.png", full_page=True)
        page.goto(f"{base}/experiments/{experiment}")
        page.locator("#timeline svg").wait_for()
        page.screenshot(path=HERE / "experiment.png", full_page=True)
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
