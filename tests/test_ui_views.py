"""The functions behind the dashboard's views: trace browsing, report, replay, grounding, device pickers."""

from __future__ import annotations

import re

import pytest

from tests.agent_helpers import xml
from tests.fixtures.dashboard import SCENARIO, make_dashboard, wait_until
from ui import forms
from ui.engines import ModelChoice
from ui.overlay import CLICK_COLOR, MODEL_COLOR
from ui.runs import RunRequest
from ui.views import playground_view, traces_view
from visagent.core.errors import ConfigError
from visagent.loop.scripted import ScriptedEngine
from visagent.core.trace import read_trace


@pytest.fixture(scope="module")
def oracle_trace(tmp_path_factory):
    """A finished oracle run of the dark-mode scenario, recorded by the dashboard's run manager."""
    dash = make_dashboard(tmp_path_factory.mktemp("ui-views-runs"))
    run = dash.runs.start(RunRequest("Switch the system to dark mode.", ModelChoice("oracle", ""), scenario=SCENARIO))
    snap = wait_until(lambda: (s := run.snapshot()).status and s, 60, "the oracle run")
    assert snap.status == "success", snap.reason
    dash.close()
    return dash.trace_root, read_trace(snap.trace_dir)


def test_trace_list_and_summary(oracle_trace):
    from ui.text import code as md_code  # run ids as escaped code spans (model text never renders as Markdown)

    root, trace = oracle_trace
    rows = traces_view.trace_rows(root)
    assert rows[0][0] == trace.run_id and rows[0][2] == "model claimed success" and rows[0][3] == len(trace.steps)
    assert rows[0][1] == "✔ goal met" and rows[0][4] == trace.meta["model"]["spec"] and rows[0][7] == "Switch the system to dark mode."
    assert traces_view.trace_choices(root)[0][1] == str(trace.path)
    summary = traces_view.trace_summary(trace)
    assert "status **success**" in summary and f"✔ goal met · model claimed success · run {md_code(trace.run_id)}" in summary and "oracle" in summary and f"{SCENARIO} (seed 5)" in summary


def test_suite_traces_are_listed_with_their_suite(oracle_trace, tmp_path):
    import shutil

    root, trace = oracle_trace
    suite = tmp_path / "runs" / "eval-20261129-010000"
    shutil.copytree(trace.path, suite / trace.path.name)
    shutil.copytree(trace.path, tmp_path / "runs" / "not-a-trace", ignore=shutil.ignore_patterns("meta.json"))
    rows = traces_view.trace_rows(tmp_path / "runs")
    assert [(r[0], r[6]) for r in rows] == [(trace.run_id, "eval-20261129-010000")]


def test_step_view_draws_the_model_point_and_the_landed_click(oracle_trace):
    _, trace = oracle_trace
    record = trace.steps[0]
    image, thinking, action, timing = traces_view.step_view(trace, 1)
    x, y = record["actions"][0]["coordinate"]
    assert image.getpixel((int(x), int(y) - 10)) == CLICK_COLOR
    assert trace.image(1).getpixel((int(x), int(y) - 10)) != CLICK_COLOR
    around = {image.getpixel((int(x) + dx, int(y) + dy)) for dx in range(-20, 21) for dy in range(-20, 21)}
    assert MODEL_COLOR in around  # the model's point (the oracle points where it clicks)
    assert "left_click" in action and "policy: allowed" in action and "total" in timing


def test_the_last_slider_position_is_the_final_screen(oracle_trace):
    _, trace = oracle_trace
    image, _, action, _ = traces_view.step_view(trace, len(trace.steps) + 1)
    assert image.size == trace.final_image().size and "final screen" in action


def test_report_and_replay_of_an_opened_trace(oracle_trace):
    _, trace = oracle_trace
    out, text = traces_view.report_for(str(trace.path))
    assert out.is_file() and "<html" in out.read_text(encoding="utf-8").lower() and "report written" in text
    assert traces_view.replay_message(str(trace.path)).startswith("✔ replay matched")
    assert traces_view.report_for(None) == (None, "open a run first")
    assert "does not exist" in traces_view.replay_message(str(trace.path / "missing"))


def test_grounding_draws_the_predicted_point(tmp_path):
    dash = make_dashboard(tmp_path, {"scripted-click": lambda: ScriptedEngine([xml("left_click", coordinate=[500, 250])])})
    image = playground_view.sim_screen(SCENARIO)
    drawn, text = playground_view.ground_image(dash, image, "the Display item", "desktop",
                                               ModelChoice("checkpoint", "scripted-click"))
    x, y = image.width * 0.5, image.height * 0.25
    assert "image (640, 200) px" in text and "norm1000 (500, 250)" in text
    assert drawn.getpixel((int(x), int(y))) == MODEL_COLOR  # the ring's centre dot
    assert image.getpixel((int(x), int(y))) != MODEL_COLOR
    with pytest.raises(ConfigError, match="the instruction is empty"):
        playground_view.ground_image(dash, image, "  ")
    with pytest.raises(ConfigError, match="upload a screenshot first"):
        playground_view.ground_image(dash, None, "the Display item")
    dash.close()


def test_scenario_task_is_filled_for_the_seed():
    assert forms.scenario_task(SCENARIO, None) == "Switch the system to dark mode."
    assert forms.default_scenario_id() == SCENARIO
    ids = [value for _, value in forms.scenario_choices()[0]]
    assert SCENARIO in ids and len(ids) == len(set(ids))


def test_the_scenario_picker_offers_the_real_desktop_scenarios():
    from visagent.realworld.registry import real_scenarios
    from visagent.sim.scenarios import load_scenarios

    choices, error = forms.scenario_choices()
    assert error is None
    real = [s.id for s in real_scenarios()]
    assert [(label, value) for label, value in choices if value in real] == [(f"real-desktop · {i}", i) for i in real]
    assert (f"sim · {SCENARIO}", SCENARIO) in choices
    assert len(choices) == len(real) + len(load_scenarios())
    todo = next(s for s in real_scenarios() if s.id == "chromium-todo-done")
    assert forms.scenario_task(todo.id, None) == todo.instruction
    assert forms.scenario_seed(todo.id) is None  # no seeds
    assert forms.scenario_preview(todo.id, None) is None  # no first screen before Start
    assert forms.scenario_max_steps(todo.id, 50) == todo.max_steps
    note, usable = forms.scenario_note(todo.id)
    assert usable and note.startswith("real-desktop · chromium-todo-done: Start starts a private Xvfb 1280x800")
    assert forms.scenario_note(SCENARIO) == ("", True)
    # the seed field is ignored for a real-desktop scenario; the sim scenario keeps it
    args = ("t", "sim", todo.id, 5, "oracle", "", "", "", False, 3, 4, True)
    assert forms.run_request(*args).seed is None
    assert forms.run_request("t", "sim", SCENARIO, 5, *args[4:]).seed == 5


def test_the_run_view_starts_on_a_real_desktop_scenario_without_a_preview(tmp_path):
    from ui.app import build_app
    from ui.views.run_view import REAL_PREVIEW_LABEL
    from visagent.realworld.registry import get_real_scenario

    dash = make_dashboard(tmp_path, scenario="chromium-todo-done")
    try:
        config = build_app(dash).config
    finally:
        dash.close()
    props = {c["props"].get("elem_id"): c["props"] for c in config["components"] if c["props"].get("elem_id")}
    assert props["vg-scenario"]["value"] == "chromium-todo-done"
    assert ("real-desktop · xterm-write-file", "xterm-write-file") in map(tuple, props["vg-scenario"]["choices"])
    assert props["vg-seed"]["visible"] is False
    assert props["vg-screen"]["label"] == REAL_PREVIEW_LABEL and props["vg-screen"].get("value") is None
    assert props["vg-task"]["value"] == get_real_scenario("chromium-todo-done").instruction
    assert props["vg-start"].get("interactive") is not False  # chromium is installed: Start is usable


@pytest.mark.x11
def test_monitor_picker_lists_the_x_screen(xserver, monkeypatch):
    monkeypatch.setenv("DISPLAY", xserver.display)
    choices, note = forms.monitor_choices()
    assert note == "" and choices and choices[0][1] == 1 and "2560×1024" in choices[0][0]


def test_device_picker_says_why_there_is_none(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb on PATH
    choices, note = forms.device_choices()
    assert choices == [] and "adb" in note


def test_untrusted_text_is_escaped_for_markdown():
    """ui/text.py: no raw tag, image, link or autolink survives; code fences cannot be closed from inside
    (what Chromium makes of it is in tests/test_ui_browser.py)."""
    import re

    from ui import text

    hostile = '<img src="http://x/a"> ![m](http://x/b) [r]: http://x/c\n# h\n1. i\n- j'
    escaped = text.text(hostile)
    assert not re.search(r"(?<!\\)[<!\[\]#:]", escaped)  # every syntax character carries its backslash
    assert "\\# h" in escaped and "1\\. i" in escaped and "\\- j" in escaped
    fenced = text.block("a\n```\n<img src=x>\n````")
    fence = fenced.split("\n")[0].removesuffix("text")
    assert fence == "`" * 5 and fenced.endswith("\n" + fence)
    assert text.code("a `` b") == "``` a `` b ```"


def test_a_hostile_trace_is_shown_as_text_in_the_step_view(tmp_path):
    from visagent.core.trace import TraceWriter

    hostile = '<img src="http://127.0.0.1:9/x"> ![m](http://127.0.0.1:9/y)'
    writer = TraceWriter(tmp_path, {"task": hostile, "model": {"spec": hostile}})
    writer.append({"type": "step", "step": 1, "model": {"answer": hostile + "\n```\n" + hostile},
                   "actions": [{"action": "type", "text": hostile + "`", "space": "screen"}],
                   "policy": {"decision": "allowed", "reason": hostile}, "result": {"ok": True, "message": hostile},
                   "error": hostile})
    writer.finish("failure", hostile, 1, hostile)
    trace = read_trace(writer.path)
    _, _, action, _ = traces_view.step_view(trace, 1)
    summary = traces_view.trace_summary(trace)
    for page in (action, summary):
        outside_code = re.sub(r"(`{3,})text\n.*?\n\1|(`+) .*? \2", "", page, flags=re.S)
        assert not re.search(r"(?<!\\)<img|(?<!\\)!(?<!\\)\[", outside_code), page
        assert "\\<img" in outside_code  # it is there, as text
def test_trace_rows_filter_by_text_status_verdict_and_model(oracle_trace, tmp_path):
    import json
    import shutil

    root, trace = oracle_trace
    runs = tmp_path / "runs"
    shutil.copytree(trace.path, runs / "a-solved")
    shutil.copytree(trace.path, runs / "b-claimed")
    meta_path = runs / "b-claimed" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(run_id="b-claimed", task="Open the calculator <b>now</b>", verdict={"success": False, "by": "x"},
                model={"spec": "http://gpu:8000/v1"})
    meta_path.write_text(json.dumps(meta))
    meta_path = runs / "a-solved" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(run_id="a-solved", status="max_steps")
    meta.pop("verdict", None)
    meta_path.write_text(json.dumps(meta))

    def ids(**filters):
        return sorted(r[0] for r in traces_view.trace_rows(runs, **filters))

    assert ids() == ["a-solved", "b-claimed"]
    assert ids(text="CALCULATOR") == ["b-claimed"] and ids(text="a-solv") == ["a-solved"]
    assert ids(status="max_steps") == ["a-solved"] and ids(status="success") == ["b-claimed"]
    assert ids(verdict="not_met") == ["b-claimed"] and ids(verdict="none") == ["a-solved"] and ids(verdict="met") == []
    assert ids(model="http://gpu:8000/v1") == ["b-claimed"]
    assert traces_view.model_choices(runs)[0] == "any" and "http://gpu:8000/v1" in traces_view.model_choices(runs)
    row = {r[0]: r for r in traces_view.trace_rows(runs)}["b-claimed"]
    assert row[1] == "✘ goal NOT met" and row[2] == "model claimed success"


def test_status_html_escapes_model_text_and_shows_verdict_claim_and_links(tmp_path):
    import dataclasses

    from ui.live import RunSnapshot

    snap = RunSnapshot(id="20261204-133029-e9bc55", task="t", executor="sim · x", model="tiny", state="finished",
                       phase="", status="success", reason="said </tool_call><img src=x onerror=alert(1)>", step=3,
                       screenshot=None, markers=None, screen_version=0, thinking="", answer="", log=(), log_version=0,
                       confirmation=None, timings=(), trace_dir=str(tmp_path / "run"), final_answer=None, started=0.0,
                       elapsed=4.0, verdict="not_met", report=str(tmp_path / "run" / "report.html"))
    page = forms.status_html(snap, 15)
    assert "&lt;/tool_call&gt;&lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page
    assert 'data-verdict="not_met"' in page and "goal NOT met" in page and "model claimed success" in page
    assert "run <code class=\"vg-run-id\">20261204-133029-e9bc55</code>" in page
    assert 'class="vg-report-link" href="gradio_api/file=' in page and page.count("report.html") == 1
    pending = forms.status_html(dataclasses.replace(snap, verdict=None), 15)
    assert 'data-verdict="pending"' in pending
    typed = forms.status_html(dataclasses.replace(snap, verdict="none", status="max_steps"), 15)
    assert 'data-verdict="none"' in typed and "run ended max_steps" in typed
    assert "goal" not in forms.status_html(dataclasses.replace(snap, status=None, verdict=None), 15)


def test_the_dashboard_oracle_refuses_a_task_that_is_not_its_scenarios(tmp_path):
    dash = make_dashboard(tmp_path / "runs")
    try:
        run = dash.runs.start(RunRequest("Open the calculator.", ModelChoice("oracle", ""), scenario=SCENARIO))
        snap = wait_until(lambda: (s := run.snapshot()).status and s, 60, "the refusal")
        assert snap.status == "error" and "plays scenario desktop-settings-dark-mode's own task" in snap.reason
        assert snap.verdict == "none"
    finally:
        dash.close()


def test_a_dashboard_run_is_named_by_its_trace_id_and_ends_with_verdict_and_report(oracle_trace):
    root, trace = oracle_trace
    assert (trace.path / "report.html").is_file()  # written at the end of the run, for the status line's link
    assert trace.path.name == trace.run_id and trace.meta["verdict"]["success"] is True


@pytest.mark.x11
def test_a_suite_of_real_desktop_scenarios_runs_through_the_evaluation(tmp_path, monkeypatch):
    # The Scenarios tab's form with the world set to real-desktop: selected as `visagent eval --world real-desktop`
    # selects, each episode its own Xvfb and programs, played by the real scenarios' oracles.
    from pathlib import Path

    from ui.views import scenarios_view
    from visagent.realworld.registry import real_scenarios

    state = tmp_path / "state"
    monkeypatch.setenv("VISAGENT_REAL_STATE", str(state))
    dash = make_dashboard(tmp_path / "runs")
    try:
        with pytest.raises(ConfigError, match="world must be sim or real-desktop"):
            scenarios_view.suite_request(dash, "any", "", "oracle", 1, 1, None, "", "mars")
        with pytest.raises(ConfigError, match="no real-desktop scenario matches"):  # they are all held out
            dash.suites.start(scenarios_view.suite_request(dash, "train", "", "oracle", 1, 1, None, "", "real-desktop"))
        suite = dash.suites.start(scenarios_view.suite_request(dash, "any", "app:galculator", "oracle", 1, 2, None, "",
                                                               "real-desktop"))
        suite.thread.join(240)
        snap = suite.snapshot()
    finally:
        dash.close()
    want = sorted(s.id for s in real_scenarios() if s.apps == ("galculator",))
    assert snap.finished and snap.message.startswith("done: 2/2 succeeded"), snap.message
    assert sorted(row[0] for row in snap.rows) == want and all(row[2] == "✔" for row in snap.rows)
    for row in snap.rows:
        trace = read_trace(row[-1])
        assert trace.meta["executor"]["name"] == "real-desktop" and trace.meta["verdict"]["success"] is True
        assert (Path(row[-1]) / "report.html").is_file()  # each row links its report
    assert ("world:real-desktop", 2, 2) in snap.per_tag
    assert list(state.glob("world-*.json")) == []  # every episode's world was closed
