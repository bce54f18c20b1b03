"""The dashboard tells a newcomer what happened (issue 41), in a real headless Chromium: the verdict badge and
the model's claim in the Run status, the run named by its trace id with links to its trace and HTML report, the
action log following its newest line, the Traces table's verdict column and filters."""

from __future__ import annotations

import io
import re
import urllib.parse
import urllib.request

import pytest

from tests.fixtures.dashboard import dashboard_page, image_loaded, label_above_image, launched, make_dashboard
from visagent.core.trace import read_trace

LONG_SCENARIO = "desktop-contacts-add"
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


@pytest.fixture
def page_url(tmp_path):
    # a scenario whose oracle takes several steps: its action log is longer than the log box
    dash = make_dashboard(tmp_path / "runs", scenario=LONG_SCENARIO)
    with launched(dash) as url:
        yield url, dash


def test_an_oracle_run_ends_with_badge_claim_links_and_the_log_at_its_end(page_url):
    from playwright.sync_api import expect

    url, dash = page_url
    with dashboard_page(url) as page:
        expect(page.locator("#vg-task textarea")).not_to_have_value("")
        # the model panel is open and says what the selected model is
        expect(page.locator("#vg-model-note")).to_contain_text("does not solve tasks")
        oracle = page.get_by_label("Scripted oracle (scenarios only, no model)")
        oracle.check()
        expect(page.locator("#vg-model-note")).to_contain_text("known solution")
        expect(page.locator("#vg-legend")).to_contain_text("where the action landed")
        page.click("#vg-start")
        status = page.locator("#vg-status")
        badge = status.locator(".vg-verdict")
        expect(badge).to_have_attribute("data-verdict", "met", timeout=60_000)
        expect(badge).to_contain_text("goal met")
        expect(status.locator(".vg-claim")).to_contain_text("model claimed success")
        run_id = status.locator(".vg-run-id").inner_text()
        assert len(run_id) == len("20261204-133029-e9bc55") and run_id.count("-") == 2
        expect(page.locator("#vg-message")).to_contain_text(run_id)
        expect(status.locator(".vg-trace-path")).to_contain_text(run_id)
        link = status.locator("a.vg-report-link")
        expect(link).to_have_count(1)
        href = link.get_attribute("href")
        with urllib.request.urlopen(url + href, timeout=30) as resp:  # the link serves the run's report
            body = resp.read().decode("utf-8")
        assert resp.status == 200 and 'data-verdict="met"' in body and run_id in body
        # the log's last lines (finished, world check) are in view: its textarea is scrolled to the end
        page.wait_for_function("(document.querySelector('#vg-log textarea')?.value ?? '').includes('world check')",
                               timeout=30_000)
        page.wait_for_function(
            "(() => { const t = document.querySelector('#vg-log textarea');"
            " return t && t.scrollHeight > t.clientHeight && t.scrollTop + t.clientHeight >= t.scrollHeight - 2;"
            " })()", timeout=10_000)
        # the Traces table: verdict and claim columns, and its filters
        page.get_by_role("tab", name="Traces").click()
        table = page.locator("#vg-trace-table")
        expect(table).to_contain_text("✔ goal met", timeout=30_000)
        expect(table).to_contain_text("model claimed success")
        expect(table).to_contain_text(run_id)
        page.locator("#vg-trace-find input, #vg-trace-find textarea").first.fill("no such run anywhere")
        expect(table).not_to_contain_text(run_id, timeout=10_000)
        page.locator("#vg-trace-find input, #vg-trace-find textarea").first.fill(run_id[-6:])
        expect(table).to_contain_text(run_id, timeout=10_000)
        # the one marker style's legend under the screens, and the run as an animated GIF
        expect(page.locator("#vg-trace-legend")).to_contain_text("where the model pointed")
        expect(page.locator("#vg-trace-summary")).to_contain_text(f"run {run_id}", timeout=30_000)
        page.click("#vg-gif")
        expect(page.locator("#vg-replay-out")).to_contain_text("run.gif", timeout=30_000)
        gif_link = page.locator("#vg-report-file a").first
        expect(gif_link).to_be_visible(timeout=10_000)
        with urllib.request.urlopen(urllib.parse.urljoin(url, gif_link.get_attribute("href")), timeout=30) as resp:
            data = resp.read()
        from PIL import Image

        with Image.open(io.BytesIO(data)) as gif:
            steps = len(read_trace(dash.trace_root / run_id).steps)
            assert gif.format == "GIF" and gif.n_frames == steps + 1


def test_the_scenario_is_shown_before_start_and_one_click_watches_it_solved(page_url):
    from playwright.sync_api import expect

    from ui.forms import scenario_preview

    url, dash = page_url
    with dashboard_page(url) as page:
        screen = page.locator("#vg-screen")
        expect(screen).to_contain_text("The scenario's first screen (before Start)")
        image = screen.locator("img")
        expect(image).to_have_count(1)
        size = image_loaded(page, "#vg-screen img")  # (the browser decodes it after it is in the page)
        assert size == scenario_preview(LONG_SCENARIO, None).size  # the scenario's own screen
        # a new seed shows that seed's screen (the preview follows the form)
        first = image.get_attribute("src")
        page.locator("#vg-seed input").fill("11")
        page.locator("#vg-seed input").press("Enter")
        expect(image).not_to_have_attribute("src", first, timeout=15_000)
        page.click("#vg-watch")  # the tiny model is selected: one click plays the oracle instead
        badge = page.locator("#vg-status .vg-verdict")
        expect(badge).to_have_attribute("data-verdict", "met", timeout=60_000)
        expect(screen).to_contain_text("Live screen")
        expect(page.locator("#vg-message")).to_contain_text("scripted oracle plays")


@pytest.mark.x11
def test_a_real_desktop_scenario_is_picked_and_watched_solved(page_url, tmp_path, monkeypatch):
    # issue 38: the picker offers the real-desktop scenarios; picking one fills its task, hides the seed, says
    # what Start starts; one click plays its oracle on a display of its own, judged on the real state
    from playwright.sync_api import expect

    from visagent.realworld.registry import get_real_scenario

    monkeypatch.setenv("VISAGENT_REAL_STATE", str(tmp_path / "state"))  # the dashboard runs in this process
    url, _ = page_url
    with dashboard_page(url) as page:
        expect(page.locator("#vg-seed")).to_be_visible()
        page.locator("#vg-scenario input").click()
        page.get_by_role("option", name="real-desktop · xterm-write-file").click()
        expect(page.locator("#vg-task textarea")).to_have_value(get_real_scenario("xterm-write-file").instruction)
        expect(page.locator("#vg-seed")).to_be_hidden()
        expect(page.locator("#vg-screen")).to_contain_text("appears once Start has started its display")
        expect(page.locator("#vg-screen img")).to_have_count(0)
        expect(page.get_by_text("Start starts a private Xvfb 1280x800 with xterm")).to_be_visible()
        page.click("#vg-watch")
        status = page.locator("#vg-status")
        expect(status.locator(".vg-verdict")).to_have_attribute("data-verdict", "met", timeout=90_000)
        expect(status).to_contain_text("real-desktop · xterm-write-file")
        expect(page.locator("#vg-screen img")).to_have_count(1)  # the real display's live screen
    assert list((tmp_path / "state").glob("world-*.json")) == []  # its world was closed


def test_start_is_disabled_with_the_reason_when_the_executor_cannot_work(page_url, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.delenv("DISPLAY", raising=False)  # no X server: the desktop executor cannot work
    url, _ = page_url
    with dashboard_page(url) as page:
        start = page.locator("#vg-start")
        expect(start).to_be_enabled()
        page.locator("#vg-executor").get_by_label("desktop").check()
        expect(start).to_be_disabled(timeout=15_000)
        expect(page.get_by_text("Start is disabled: no display")).to_be_visible()
        page.locator("#vg-executor").get_by_label("sim").check()
        expect(start).to_be_enabled(timeout=15_000)


def test_a_suite_shows_goal_and_claim_columns_and_a_per_tag_chart(page_url):
    from playwright.sync_api import expect

    url, _ = page_url
    with dashboard_page(url) as page:
        page.get_by_role("tab", name="Scenarios").click()
        page.get_by_label("Tags (any of, comma-separated)").fill("app:calculator")
        page.click("#vg-suite-run")  # the scripted oracle is the suite's default policy
        chart = page.locator("#vg-suite-chart")
        row = chart.locator('.vg-tag-row[data-tag="app:calculator"]')
        expect(row).to_have_attribute("data-rate", "100", timeout=120_000)
        expect(page.locator("#vg-suite-message")).to_contain_text("done", timeout=120_000)
        results = page.locator("#vg-suite-results")
        expect(results).to_contain_text("goal (world check)")
        expect(results).to_contain_text("✔ goal met")
        expect(results).to_contain_text("model claimed success")
        expect(results).not_to_contain_text("✘")
        link = results.locator('a[href*="report.html"]:visible').first  # each row links its episode's report
        expect(link).to_be_visible()
        with urllib.request.urlopen(urllib.parse.urljoin(url, link.get_attribute("href")), timeout=30) as resp:
            body = resp.read().decode("utf-8")
        assert resp.status == 200 and 'data-verdict="met"' in body and link.inner_text() in body


def test_screenshot_labels_sit_above_the_picture_and_the_model_section_connects_a_server(page_url):
    from playwright.sync_api import expect

    url, _ = page_url
    with dashboard_page(url) as page:
        expect(page.locator("#vg-screen img")).to_have_count(1, timeout=15_000)
        expect(page.locator('#vg-screen label[data-testid="block-label"]')).to_contain_text("first screen")
        label_above_image(page, "#vg-screen")
        # the Model section: a preset fills URL, model name and provider; the key field hides what is typed
        page.locator("#vg-model-kind").get_by_label("OpenAI-compatible server").check()
        page.locator("#vg-preset input").click()
        page.get_by_role("option", name="Ollama").click()
        expect(page.locator("#vg-url textarea, #vg-url input").first).to_have_value("http://127.0.0.1:11434/v1")
        expect(page.locator("#vg-model-name textarea, #vg-model-name input").first).to_have_value("qwen3.5:35b-a3b")
        expect(page.locator("#vg-api-key input")).to_have_attribute("type", "password")
        # Test connection: doctor's checks against a loopback vLLM-like server, one line per check
        from tests.fixtures.provider_fakes import ProviderFake

        with ProviderFake("vllm") as fake:
            page.locator("#vg-url textarea, #vg-url input").first.fill(fake.url)
            page.locator("#vg-model-name textarea, #vg-model-name input").first.fill("")
            page.locator("#vg-provider input").fill("vllm")
            page.locator("#vg-provider input").press("Enter")
            page.click("#vg-test-connection")
            result = page.locator("#vg-connection textarea")
            expect(result).to_have_value(re.compile(r"^ok    models:.*\nok    image limit:.*\nall checks passed$",
                                                    re.S), timeout=30_000)
        assert fake.chats()  # the page's check asked the server
        # Grounding: its own model picker, and both screenshot labels above their pictures
        page.click("#vg-tab-grounding-button")
        page.locator("#vg-ground-model .label-wrap").click()
        picker = page.locator("#vg-ground-model-kind")
        expect(picker.get_by_label("OpenAI-compatible server")).to_have_count(1)
        expect(picker.get_by_label("Scripted oracle (scenarios only, no model)")).to_have_count(0)  # needs a model
        page.get_by_role("button", name="Use a sim screen").click()
        expect(page.locator("#vg-ground-input img")).to_have_count(1, timeout=15_000)
        label_above_image(page, "#vg-ground-input")
