"""End to end in a real headless Chromium (Debian's, driven by Playwright): start a sim run with the tiny
model, watch the live screen and the action log update, stop it, open its trace.

The tiny model is the real shipped checkpoint behind `ThrottledEngine` (each streamed delta delayed 0.3 s): the
trained model answers a step in about a second, and the run must still be going when the reloaded page stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.dashboard import (CHROMIUM, CHROMIUM_ARGS, dashboard_page, label_above_image, launched,
                                      make_dashboard, throttled_tiny)

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
    from playwright.sync_api import expect

    url, warm = page_url
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard_page(url, 1440, 1000) as page:
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
        label_above_image(page, "#vg-screen")  # the live screen's label too
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
        label_above_image(page, "#vg-trace-image")  # the label does not cover the screenshot (issue 41)
        expect(page.locator("#vg-trace-action")).to_contain_text("step 1")
        page.screenshot(path=str(ARTIFACTS / "ui_trace.png"), full_page=True)
    assert (ARTIFACTS / "ui_run_live.png").stat().st_size > 10_000


# -- model and trace text render as text (issue 42, item 5) ------------------------------------------------------

class _Listener:
    """An HTTP server on loopback that records every request it gets (the page must send it none)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.paths: list[str] = []
        seen = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen.append(self.path)
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _hostile(url: str, where: str) -> str:
    """Text that fetches `url/<where>-...` if rendered as Markdown or HTML: raw tags, Markdown images (inline
    and by reference), and a code fence closed early so the rest would be parsed."""
    return (f'<img src="{url}/{where}-html"> ![m]({url}/{where}-md) <video poster="{url}/{where}-poster"></video>\n'
            f"```\n<img src=\"{url}/{where}-fence\">\n\n![r][ref]\n\n[ref]: {url}/{where}-ref\n")


def _crafted_trace(root: Path, url: str) -> None:
    """A trace as anyone could write it: every text field hostile, newest in the listing."""
    import json

    from PIL import Image

    from visagent.core.trace import TraceWriter

    geometry = {"width": 320, "height": 200, "physical_width": 320, "physical_height": 200, "offset_x": 0,
                "offset_y": 0, "monitor": 1, "scale": 1.0}
    writer = TraceWriter(root, {"task": _hostile(url, "task"), "model": {"spec": "crafted"},
                                "executor": {"name": "sim", "platform": "desktop", "geometry": geometry}})
    writer.save_image("step_001.png", Image.new("RGB", (320, 200), "white"))
    writer.append({"type": "step", "step": 1, "screenshot": "step_001.png", "geometry": geometry,
                   "model": {"raw": _hostile(url, "raw"), "thinking": _hostile(url, "thinking"),
                             "answer": _hostile(url, "answer")},
                   "actions": [{"action": "type", "text": _hostile(url, "typed"), "space": "screen"}],
                   "policy": {"decision": "allowed", "reason": _hostile(url, "policy")},
                   "result": {"ok": False, "message": _hostile(url, "result"), "changed": False},
                   "error": _hostile(url, "error")})
    with (writer.path / "trace.jsonl").open("a") as fh:  # a damaged line: the problems line shows it
        fh.write(json.dumps({"type": _hostile(url, "problem")}) + "\n")
    writer.save_image("final.png", Image.new("RGB", (320, 200), "white"))
    writer.finish("failure", _hostile(url, "reason"), 1, _hostile(url, "answer-meta"))
    meta = json.loads((writer.path / "meta.json").read_text())
    meta["started_at"] = "2099-01-01T00:00:00Z"  # the newest: the Traces tab opens it by itself
    (writer.path / "meta.json").write_text(json.dumps(meta))


def test_model_answers_and_trace_text_never_make_the_browser_fetch(tmp_path):
    """A live run whose model writes HTML and Markdown images (in its prose and in a risky action the page asks
    about), and a crafted trace with them in every field: the page shows them as text, and a listener on
    loopback gets no request from the browser (a fetch the test makes itself proves it can reach it)."""
    from playwright.sync_api import expect, sync_playwright

    from tests.agent_helpers import DONE, xml
    from ui.engines import ModelChoice
    from ui.runs import RunRequest
    from visagent.loop.scripted import ScriptedEngine

    listener = _Listener()
    url = listener.url
    # the question quotes the action's summary, cut at 57 characters: a Markdown image, then a tag (cut off)
    risky = xml("type", text=f"rm -rf x ![m]({url}/c) <img src={url}/confirm-html>")
    outputs = [_hostile(url, "prose") + "\n" + risky, _hostile(url, "prose2") + "\n" + DONE]
    dash = make_dashboard(tmp_path / "runs",
                          scripts={"scripted": lambda: ScriptedEngine(outputs, piece=12, delay_s=0.05)})
    _crafted_trace(tmp_path / "runs", url)
    try:
        with launched(dash) as page_url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                run = dash.runs.start(RunRequest(_hostile(url, "live-task"), ModelChoice("checkpoint", "scripted"),
                                                 scenario="desktop-settings-dark-mode"))
                page.goto(page_url)  # attaches to the run going on
                confirm = page.locator("#vg-confirm-text")
                expect(confirm).to_contain_text(f"rm -rf x ![m]({url}/c) <img src=", timeout=60_000)
                page.click("#vg-deny")
                page.wait_for_function(
                    "(document.querySelector('#vg-log textarea')?.value ?? '').includes('finished:')", timeout=60_000)
                assert run.snapshot().status == "success"
                page.get_by_role("tab", name="Traces").click()
                summary = page.locator("#vg-trace-summary")
                expect(summary).to_contain_text(f'<img src="{url}/task-html">', timeout=30_000)
                expect(summary).to_contain_text(f"[ref]: {url}/reason-ref")
                expect(summary).to_contain_text("trace.jsonl line 2")
                action = page.locator("#vg-trace-action")
                expect(action).to_contain_text(f'<img src="{url}/answer-html">')
                expect(action).to_contain_text(f"![m]({url}/result-md)")
                page.wait_for_timeout(1500)  # time for any image the page would load
                assert page.locator("#vg-trace-summary img, #vg-trace-action img, #vg-status img, "
                                    "#vg-confirm-text img").count() == 0
                assert listener.paths == [], listener.paths
                page.evaluate(f"fetch('{url}/control').catch(() => null)")
                page.wait_for_timeout(500)
                assert listener.paths == ["/control"]  # the browser could reach it: the silence above is real
            finally:
                browser.close()
    finally:
        listener.close()
