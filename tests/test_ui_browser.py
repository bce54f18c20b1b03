"""End to end in a real headless Chromium (Debian's, driven by Playwright): start a sim run with the tiny
model, watch the live screen and the action log update, stop it, open its trace.

The tiny model is the real shipped checkpoint behind `ThrottledEngine` (each streamed delta delayed 0.3 s): the
trained model answers a step in about a second, and the run must still be going when the reloaded page stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.dashboard import CHROMIUM, CHROMIUM_ARGS, launched, make_dashboard, throttled_tiny

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
# gradio's queue builds pandas frames with options pandas 3 deprecates: its noise, not ours
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


@pytest.fixture
def page_url(tmp_path):
    dash = make_dashboard(tmp_path / "runs", scripts={"tiny": throttled_tiny()})
    warm = dash.runs.warm(dash.default_model)  # the tiny model loads while the page opens
    with launched(dash) as url:
        yield url, warm


def log_text(page) -> str:
    return page.locator("#vg-log textarea").input_value()


def test_tiny_run_live_then_stopped_then_its_trace(page_url):
    from playwright.sync_api import expect, sync_playwright

    url, warm = page_url
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            # the embedded default: a sim desktop scenario with its task, the tiny model
            expect(page.locator("#vg-task textarea")).to_have_value("Switch the system to dark mode.")
            # before Start the screen shows the scenario's first screen
            expect(page.locator("#vg-screen")).to_contain_text("The scenario's first screen (before Start)")
            expect(page.locator("#vg-screen img")).to_have_count(1)
            warm.join(120)
            page.click("#vg-start")
            expect(page.locator("#vg-screen")).to_contain_text("Live screen", timeout=60_000)  # the live screen arrived
            page.wait_for_function("(document.querySelector('#vg-log textarea')?.value ?? '').includes('step 1')",
                                   timeout=30_000)
            assert "started: Switch the system to dark mode." in log_text(page)
            expect(page.locator("#vg-status")).to_contain_text("model tiny")
            # the model's answer streams into the page while the step is still going
            page.wait_for_function("(document.querySelector('#vg-answer textarea')?.value ?? '').length > 0",
                                   timeout=180_000)
            expect(page.locator("#vg-status")).to_contain_text("running")
            page.screenshot(path=str(ARTIFACTS / "ui_run_live.png"), full_page=True)
            page.reload()  # a reloaded page attaches to the run still going, and can stop it
            # (the predicates read a missing textarea as empty: right after a reload the page is still building)
            page.wait_for_function("(document.querySelector('#vg-log textarea')?.value ?? '').includes('step 1')",
                                   timeout=30_000)
            expect(page.locator("#vg-screen img")).to_have_count(1, timeout=30_000)
            page.click("#vg-stop")
            # a generation in flight ends at its next token
            page.wait_for_function(
                "(document.querySelector('#vg-log textarea')?.value ?? '').includes('finished: stopped')",
                timeout=60_000)
            expect(page.locator("#vg-status")).to_contain_text("stopped")
            page.get_by_role("tab", name="Traces").click()
            expect(page.locator("#vg-trace-summary")).to_contain_text("status stopped", timeout=30_000)
            expect(page.locator("#vg-trace-summary")).to_contain_text("Switch the system to dark mode.")
            expect(page.locator("#vg-trace-image img")).to_have_count(1, timeout=30_000)  # step 1's screenshot
            expect(page.locator("#vg-trace-action")).to_contain_text("step 1")
            page.screenshot(path=str(ARTIFACTS / "ui_trace.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "ui_run_live.png").stat().st_size > 10_000
