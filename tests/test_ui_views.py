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
from visagent.errors import ConfigError
from visagent.scripted import ScriptedEngine
from visagent.trace import read_trace


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
    root, trace = oracle_trace
    rows = traces_view.trace_rows(root)
    assert rows[0][0] == trace.run_id and rows[0][2] == "success" and rows[0][3] == len(trace.steps)
    assert traces_view.trace_choices(root)[0][1] == str(trace.path)
    summary = traces_view.trace_summary(trace)
    assert "status **success**" in summary and "oracle" in summary and f"{SCENARIO} (seed 5)" in summary


def test_suite_traces_are_listed_with_their_suite(oracle_trace, tmp_path):
    import shutil

    root, trace = oracle_trace
    suite = tmp_path / "runs" / "eval-20261129-010000"
    shutil.copytree(trace.path, suite / trace.path.name)
    shutil.copytree(trace.path, tmp_path / "runs" / "not-a-trace", ignore=shutil.ignore_patterns("meta.json"))
    rows = traces_view.trace_rows(tmp_path / "runs")
    assert [(r[0], r[5]) for r in rows] == [(trace.run_id, "eval-20261129-010000")]


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
    from visagent.trace import TraceWriter

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
