"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): live
progress without a reload, a drawn power timeline, no console errors."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import NINTH, TOKEN, Server, start_server, submit

pytestmark = pytest.mark.e2e


def chromium() -> str:
    """Same rule as tests/results/test_report_html.py: skip without a browser, except in
    CI (JB_REQUIRE_CHROMIUM), where a skipped browser test would pass silently."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("JB_REQUIRE_CHROMIUM"):
        pytest.fail("JB_REQUIRE_CHROMIUM is set but chromium is not installed")
    pytest.skip("chromium not installed (apt-get install chromium)")


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("JB_REQUIRE_CHROMIUM"):
            pytest.fail("JB_REQUIRE_CHROMIUM is set but playwright is not installed")
        pytest.skip("playwright not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.console_errors = errors
    yield opened
    context.close()


@pytest.fixture
def live(checkout_copy: Path) -> Iterator[Server]:
    yield from start_server(checkout_copy)


def test_demo_page_goes_from_8_to_9_done_without_a_reload(live: Server, page: Any) -> None:
    page.goto(f"{live.url}/?token={TOKEN}")
    progress = page.locator("#suite-demo h2 .progress-text")
    progress.wait_for(timeout=30_000)
    assert progress.inner_text() == "8/8 done"
    assert page.url == f"{live.url}/"  # the token left the address bar (a cookie holds it)
    marker = page.evaluate("() => { window.__noReload = 1; return window.__noReload; }")
    assert marker == 1

    suite = live.root / "configs" / "suites" / "demo.yaml"
    suite.write_text(suite.read_text() + NINTH)
    ninth = submit(live.root, "--cycles", "1")  # the real executor: one more experiment
    assert ninth.returncode == 0, ninth.stdout + ninth.stderr

    page.wait_for_function(
        "() => document.querySelector('#suite-demo h2 .progress-text').textContent === '9/9 done'",
        timeout=30_000,
    )
    assert page.evaluate("() => window.__noReload") == 1  # same document: no reload
    assert page.console_errors == []


def test_suite_page_sorts_results_and_draws_plots(live: Server, page: Any) -> None:
    page.goto(f"{live.url}/suites/demo?token={TOKEN}")
    page.locator("#results").wait_for(timeout=30_000)
    ids = page.locator("#results tr td:nth-child(3)").all_inner_texts()
    assert ids == [f"{i:04d}" for i in range(1, 9)]
    page.locator("#results th[data-key=experiment_id]").click()
    assert page.locator("#results tr td:nth-child(3)").all_inner_texts() == ids[::-1]
    page.locator("#results th[data-key=throughput_output_tokens_per_s]").click()
    speeds = [float(t) for t in page.locator("#results tr td:nth-child(6)").all_inner_texts()]
    assert speeds == sorted(speeds)
    assert page.console_errors == []


def test_experiment_page_draws_its_power_timeline(live: Server, page: Any) -> None:
    page.goto(f"{live.url}/experiments/0001?token={TOKEN}")
    chart = page.locator("#timeline svg")
    chart.wait_for(timeout=30_000)
    assert page.locator("#timeline path.series").count() >= 1  # one line per device
    d = page.locator("#timeline path.series").first.get_attribute("d")
    assert re.match(r"^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+)+$", d or "")
    assert page.locator("#timeline line.marker").count() == 2  # window start and end
    assert "energy per output token" in page.locator("dl.figures").inner_text()
    page.locator("a", has_text="0001_7_global_energy_results.json").wait_for()
    assert page.console_errors == []


def test_a_damaged_tracker_shows_what_tracker_check_says(live: Server, page: Any) -> None:
    (live.root / "persistent_progress_trackers" / "journal.jsonl").write_text("garbage\n")
    live.cache.refresh()
    page.goto(f"{live.url}/?token={TOKEN}")
    error = page.locator("#tracker-error")
    error.wait_for(timeout=30_000)
    assert "joulebench tracker repair" in error.inner_text()
    assert page.console_errors == [] or all("503" in e for e in page.console_errors)
