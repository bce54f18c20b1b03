"""The dashboard's run manager: runs in background threads, buffered events, controls, one run per executor."""

from __future__ import annotations

import threading

import pytest

from engine.errors import CheckpointError
from tests.agent_helpers import DONE, xml
from tests.fixtures.dashboard import SCENARIO, distinct_waits, wait_until
from ui.engines import EngineCache, ModelChoice
from ui.overlay import CLICK_COLOR, draw_markers
from ui.runs import ExecutorBusy, RunManager, RunRequest
from visagent.core.errors import ConfigError
from visagent.loop.scripted import ScriptedEngine
from visagent.core.settings import Settings
from visagent.core.trace import read_trace

ORACLE = ModelChoice("oracle", "")
SCRIPTED = ModelChoice("checkpoint", "scripted")


def manager(tmp_path, outputs=None, *, delay_s: float = 0.0, loader=None) -> RunManager:
    """A RunManager whose 'scripted' model is a fresh ScriptedEngine (a scripted test engine, not a model)."""
    def load(spec, **_):
        return ScriptedEngine(outputs or [DONE], piece=8, delay_s=delay_s)

    return RunManager(Settings(trace_dir=str(tmp_path)), engines=EngineCache(loader=loader or load))


def request(model=ORACLE, **kw) -> RunRequest:
    base = dict(task="Switch the system to dark mode.", model=model, executor="sim", scenario=SCENARIO)
    base.update(kw)
    return RunRequest(**base)


def finished(run, timeout_s: float = 60.0):
    return wait_until(lambda: (s := run.snapshot()).status and s, timeout_s, f"{run.id} to finish")


def test_oracle_run_is_buffered_for_the_page(tmp_path):
    runs = manager(tmp_path)
    run = runs.start(request())
    snap = finished(run)
    assert snap.status == "success", snap.reason
    assert snap.screenshot is not None and snap.screen_version >= snap.step
    assert any("action: left_click" in line for line in snap.log)
    assert [t.step for t in snap.timings] == list(range(1, snap.step + 1))
    assert all(t.total is not None and t.total >= 0 for t in snap.timings)
    assert "<tool_call>" in snap.answer  # the last step's streamed answer
    trace = read_trace(snap.trace_dir)
    assert trace.status == "success" and len(trace.steps) == snap.step
    assert trace.meta["executor"]["scenario"] == SCENARIO


@pytest.mark.parametrize("model, met", [(ORACLE, True), (SCRIPTED, False)], ids=["oracle", "says-done-at-once"])
def test_the_log_says_whether_the_world_meets_the_scenario_s_goal(tmp_path, model, met):
    # The finished line carries the model's own status ("success" for a model that says done at once); on the
    # sim the scenario checks the world, and the page and the trace say what it found.
    run = manager(tmp_path).start(request(model=model))
    assert finished(run).status == "success"
    want = ("world check: the scenario's goal is met" if met else
            "world check: the scenario's goal is NOT met (the status above is the model's own claim)")
    wait_until(lambda: want in run.snapshot().log, 30, "the world check line")
    assert read_trace(run.snapshot().trace_dir).meta["verdict"] == {"success": met, "by": "scenario.is_success",
                                                                     "side_effects": []}


def test_a_typed_task_gets_no_world_check(tmp_path):
    run = manager(tmp_path).start(request(model=SCRIPTED, task="Open the calculator."))
    finished(run)
    run.thread.join(30)  # the run thread has done everything it would do after the agent's loop
    snap = run.snapshot()
    assert not any(line.startswith("world check") for line in snap.log)
    assert "verdict" not in read_trace(snap.trace_dir).meta


def test_live_markers_show_the_model_point_and_the_landed_click(tmp_path):
    runs = manager(tmp_path, [xml("left_click", coordinate=[500, 250]), *distinct_waits()], delay_s=0.05)
    run = runs.start(request(SCRIPTED, max_steps=30))
    wait_until(lambda: run.snapshot().step >= 1, 30, "the first step")
    run.control("pause")  # step 1 finishes, step 2 does not start: its markers stay on the screen
    snap = wait_until(lambda: (s := run.snapshot()).state == "paused" and s.timings and s, 30,
                      "step 1 to finish, paused")
    assert snap.step == 1
    width, height = snap.screenshot.size  # the sim screen is 1280x800 at scale 1: model 0..1000 → pixels
    assert snap.markers.model == pytest.approx((500 * width / 1000, 250 * height / 1000), abs=1)
    assert snap.markers.click == pytest.approx((round(500 * width / 1000), round(250 * height / 1000)), abs=1)
    drawn = draw_markers(snap.screenshot, snap.markers)
    x, y = snap.markers.click
    assert drawn.getpixel((int(x), int(y) - 10)) == CLICK_COLOR  # the cross's vertical arm
    assert snap.screenshot.getpixel((int(x), int(y) - 10)) != CLICK_COLOR  # the live image is not drawn on
    run.control("stop")
    assert finished(run).status == "stopped"


def test_second_start_on_the_same_executor_is_refused_with_a_clear_message(tmp_path):
    runs = manager(tmp_path, distinct_waits(), delay_s=0.05)
    first = runs.start(request(SCRIPTED))
    with pytest.raises(ExecutorBusy, match=rf"sim · {SCENARIO} is already driven by run {first.id}; stop that run"):
        runs.start(request(SCRIPTED))
    other = runs.start(request(ORACLE, scenario="desktop-settings-wifi-off", task="Turn off Wi-Fi in Settings."))
    assert finished(other).status == "success"  # another scenario's world is another executor
    first.control("stop")
    assert finished(first).status == "stopped"
    again = runs.start(request(ORACLE))  # freed once the first run ended
    assert finished(again).status == "success"


def test_start_right_after_a_run_finishes_waits_for_its_cleanup(tmp_path, monkeypatch):
    # A run shows as finished when its loop ends; its thread then writes the verdict and closes the executor.
    # Start pressed in between waits for that instead of calling the executor busy.
    from visagent.screen.simulated import SimExecutor

    closing = threading.Event()
    close = SimExecutor.close

    def slow_close(self):
        closing.set()
        threading.Event().wait(0.5)
        close(self)

    monkeypatch.setattr(SimExecutor, "close", slow_close)
    runs = manager(tmp_path)
    first = finished(runs.start(request(ORACLE)))
    assert first.status == "success" and closing.wait(5)
    again = runs.start(request(ORACLE))  # within the first run's 0.5 s close
    assert finished(again).status == "success"


def test_risky_action_waits_for_approve(tmp_path):
    runs = manager(tmp_path, [xml("type", text="rm -rf /tmp/x"), DONE])
    run = runs.start(request(SCRIPTED))
    snap = wait_until(lambda: (s := run.snapshot()).confirmation and s, 30, "the confirmation prompt")
    assert "rm -rf" in snap.confirmation and snap.state == "waiting_confirmation"
    assert run.control("approve") == "approve: done"
    snap = finished(run)
    assert snap.confirmation is None
    step1 = read_trace(snap.trace_dir).steps[0]
    assert step1["policy"]["decision"] == "approved" and step1["result"] is not None


def test_risky_action_denied_is_not_executed(tmp_path):
    runs = manager(tmp_path, [xml("type", text="rm -rf /tmp/x"), DONE])
    run = runs.start(request(SCRIPTED))
    wait_until(lambda: run.snapshot().confirmation, 30, "the confirmation prompt")
    run.control("deny")
    snap = finished(run)
    step1 = read_trace(snap.trace_dir).steps[0]
    assert step1["policy"]["decision"] == "denied" and step1["result"] is None
    assert any("not executed" in line for line in snap.log)


def test_pause_step_and_stop(tmp_path):
    runs = manager(tmp_path, distinct_waits(), delay_s=0.02)
    run = runs.start(request(SCRIPTED, max_steps=30))
    wait_until(lambda: run.snapshot().step >= 1, 30, "the first step")
    run.control("pause")
    paused = wait_until(lambda: (s := run.snapshot()).state == "paused" and len(s.timings) == s.step and s, 30,
                        "the pause after the step in progress")
    n = paused.step
    assert run.snapshot().step == n  # stays paused
    run.control("step")
    wait_until(lambda: (s := run.snapshot()).step == n + 1 and s.state == "paused" and len(s.timings) == n + 1,
               30, "exactly one more step, then paused again")
    assert run.snapshot().step == n + 1
    run.control("stop")
    snap = finished(run)
    assert snap.status == "stopped"
    controls = [r["control"] for r in read_trace(snap.trace_dir).records if r["type"] == "control"]
    assert controls[:3] == ["pause", "step", "stop"]


def test_take_over_and_hand_back_with_a_note(tmp_path):
    runs = manager(tmp_path, distinct_waits(), delay_s=0.02)
    run = runs.start(request(SCRIPTED, max_steps=30))
    # taken over while the model writes (see test_after_take_over... for why not earlier)
    wait_until(lambda: run.snapshot().answer, 30, "the model's first words")
    run.control("takeover")
    wait_until(lambda: run.snapshot().state == "taken_over", 30, "the take-over")
    run.control("handback", "I closed the dialog")
    wait_until(lambda: any("[handback] I closed the dialog" in line for line in run.snapshot().log), 30,
               "the hand-back in the log")
    run.control("stop")
    assert finished(run).status == "stopped"


def test_stop_while_the_model_loads_ends_before_the_first_step(tmp_path):
    release = threading.Event()

    def slow_load(spec, **_):
        release.wait(30)
        return ScriptedEngine([DONE])

    runs = manager(tmp_path, loader=slow_load)
    run = runs.start(request(SCRIPTED))
    wait_until(lambda: run.snapshot().state == "loading the model", 30, "the model load")
    assert run.control("pause") == "the run is still starting; wait until the first screenshot"
    assert run.control("stop") == "stopping before the first step"
    release.set()
    snap = finished(run)
    assert snap.status == "stopped" and snap.step == 0 and snap.trace_dir is None


def test_a_model_that_cannot_load_ends_the_run_with_its_error(tmp_path):
    def broken(spec, **_):
        raise CheckpointError(f"model spec {spec!r} is neither 'tiny', an http(s):// URL nor an existing checkpoint directory")

    runs = manager(tmp_path, loader=broken)
    snap = finished(runs.start(request(SCRIPTED)))
    assert snap.status == "error" and "neither 'tiny'" in snap.reason
    assert runs.start(request(ORACLE))  # the executor was released


@pytest.mark.parametrize("change, message", [
    (dict(task="  "), "the task is empty"),
    (dict(executor="desktop", scenario=None), "the scripted oracle only plays sim and real-desktop scenarios"),
    (dict(scenario=None), "the sim executor needs a scenario"),
    (dict(max_steps=0), "max_steps must be at least 1"),
])
def test_bad_forms_are_refused_before_anything_starts(tmp_path, change, message):
    runs = manager(tmp_path)
    with pytest.raises(ConfigError, match=message):
        runs.start(request(**change))
    assert runs.latest() is None


def test_model_choice_from_the_form():
    assert ModelChoice.from_form("tiny") == ModelChoice("tiny", "tiny")
    assert ModelChoice.from_form("server", url=" http://127.0.0.1:8000/v1 ", model_name="qwen") == \
        ModelChoice("server", "http://127.0.0.1:8000/v1", "qwen")
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        ModelChoice.from_form("server", url="127.0.0.1:8000")
    with pytest.raises(ConfigError, match="the checkpoint path is empty"):
        ModelChoice.from_form("checkpoint", checkpoint=" ")


@pytest.mark.x11
def test_desktop_run_drives_the_real_x_screen_one_run_at_a_time(tmp_path, xserver):
    runs = manager(tmp_path, [xml("left_click", coordinate=[500, 500]), *distinct_waits()], delay_s=0.05)
    run = runs.start(request(SCRIPTED, executor="desktop", scenario=None, monitor=1, task="Click the middle.",
                             max_steps=30))
    with pytest.raises(ExecutorBusy, match="desktop · monitor 1 is already driven by run"):
        runs.start(request(SCRIPTED, executor="desktop", scenario=None, monitor=1, task="Another task."))
    wait_until(lambda: run.snapshot().step >= 1, 60, "the first desktop step")
    run.control("pause")  # step 1 finishes; its markers stay until the next step's screenshot
    snap = wait_until(lambda: (s := run.snapshot()).state == "paused" and len(s.timings) == s.step and s, 60,
                      "the pause after step 1")
    assert snap.step == 1 and snap.screenshot.size == (2560, 1024)
    assert snap.markers.click == pytest.approx((1280, 512), abs=2)  # 500/1000 of the Xvfb screen
    run.control("stop")
    snap = finished(run)
    assert snap.status == "stopped"
    assert read_trace(snap.trace_dir).meta["executor"]["name"] == "desktop"


def test_after_take_over_a_click_on_the_sim_screen_acts_as_the_human(tmp_path):
    runs = manager(tmp_path, distinct_waits(), delay_s=0.02)
    oracle = finished(runs.start(request(ORACLE)))  # its first click opens the Display page of this world
    x, y = read_trace(oracle.trace_dir).steps[0]["actions"][0]["coordinate"]
    run = runs.start(request(SCRIPTED, max_steps=30))
    # Taken over while the model writes: the loop drops that answer and waits for the hand-back. (A take-over
    # between the step's start and its model call is not seen by the loop's check today: it then feeds the
    # cancelled, empty answers to the parser until the run ends with parse_error; reported to the loop.)
    wait_until(lambda: run.snapshot().answer, 30, "the model's first words")
    assert run.human_click(x, y) == "press Take over first; until then the screen belongs to the agent"
    run.control("takeover")
    before = wait_until(lambda: (s := run.snapshot()).state == "taken_over" and len(s.timings) == s.step and s,
                        30, "the take-over after the step in progress")
    assert run.human_click(x, y) == f"clicked at [{round(x)}, {round(y)}]"
    after = run.snapshot()
    assert after.screen_version == before.screen_version + 1 and after.markers.click == (x, y)
    assert after.screenshot.tobytes() != before.screenshot.tobytes()  # the Display page opened
    assert any("[you] left_click" in line for line in after.log)
    run.control("handback", "I opened Display")
    run.control("stop")
    assert finished(run).status == "stopped"


# -- real-desktop scenarios (visagent.realworld: real Xvfb, openbox and xterm from Debian) -------------------------
REAL = "xterm-write-file"  # the quickest real scenario: a click and one typed shell command, checked on disk


@pytest.fixture
def real_state(tmp_path, monkeypatch):
    """World records of these runs in a directory of their own; every world started, with the pids it ran."""
    from visagent.realworld import procs
    from visagent.realworld.world import RealWorld

    state = tmp_path / "state"
    monkeypatch.setenv("VISAGENT_REAL_STATE", str(state))
    started: list[tuple[str, list[int]]] = []
    start = RealWorld.start

    def spied(self):  # the real start; then note the world's token and the processes that carry it
        start(self)
        started.append((self.token, procs.marked_pids(self.token)))

    monkeypatch.setattr(RealWorld, "start", spied)
    return state, started


@pytest.mark.x11
def test_a_real_desktop_scenario_runs_from_the_dashboard_and_leaves_nothing_running(tmp_path, real_state):
    # As the page submits it: the Run form's values (sim executor, a real id, the seed field ignored) -> RunRequest
    # -> RunManager -> open_run, which starts the scenario's own Xvfb and programs. Two at once: each run starts a
    # display of its own, so the second is not refused as busy.
    from ui import forms
    from visagent.realworld import procs

    state, started = real_state
    form = dict(task=forms.scenario_task(REAL, None), executor="sim", scenario=REAL, seed=7, model_kind="oracle",
                checkpoint="", url="", model_name="", thinking=False, max_steps=6, history=4, settle=True)
    runs = manager(tmp_path / "runs")
    first, second = runs.start(forms.run_request(**form)), runs.start(forms.run_request(**form))
    for run in (first, second):
        snap = finished(run, 120)
        run.thread.join(60)  # the run thread has judged the world and closed it
        snap = run.snapshot()
        assert snap.status == "success", snap.reason
        assert snap.executor == f"real-desktop · {REAL}" and snap.verdict == "met"
        assert "world check: the scenario's goal is met (real state)" in snap.log
        assert f"starting {REAL}: Xvfb 1280x800, xterm" in snap.log
        meta = read_trace(snap.trace_dir).meta
        assert meta["executor"]["name"] == "real-desktop" and meta["executor"]["scenario"] == REAL
        assert meta["verdict"]["success"] is True
    displays = {read_trace(r.snapshot().trace_dir).meta["executor"]["display"] for r in (first, second)}
    assert len(displays) == 2  # one display each
    assert len(started) == 2
    for token, pids in started:
        assert len(pids) >= 3  # Xvfb, openbox, xterm ran, marked with the world's token
        assert procs.marked_pids(token) == [] and not any(procs.start_time(p) for p in pids)
    assert list(state.glob("world-*.json")) == []  # no world record left for a later cleanup


def test_a_missing_debian_program_is_one_line_at_start(tmp_path, monkeypatch, real_state):
    import os
    import shutil

    from ui import forms
    from visagent.realworld.errors import MissingProgram

    bin_dir = tmp_path / "bin"  # the X server and window tools, but no xterm
    bin_dir.mkdir()
    for name in ("Xvfb", "openbox", "xdotool", "wmctrl", "setpriv"):
        if shutil.which(name):
            os.symlink(shutil.which(name), bin_dir / name)
    monkeypatch.setenv("PATH", str(bin_dir))
    want = "xterm is not installed (Debian package xterm); run `bash scripts/system-deps.sh`"
    assert forms.scenario_note(REAL) == (want, False)  # the picker says it and Start is disabled
    runs = manager(tmp_path / "runs")
    with pytest.raises(MissingProgram) as caught:
        runs.start(request(ORACLE, scenario=REAL, task=forms.scenario_task(REAL, None)))
    assert str(caught.value) == want and "\n" not in str(caught.value)
    assert runs.latest() is None and real_state[1] == []  # nothing started


def test_a_real_desktop_request_has_no_seed_and_is_never_busy():
    from ui import forms

    req = request(ORACLE, scenario=REAL, task=forms.scenario_task(REAL, None))
    assert req.executor_key is None and req.executor_label == f"real-desktop · {REAL}"
    assert req.where()["scenario"].id == REAL and set(req.where()) == {"scenario"}
    with pytest.raises(ConfigError, match=f"real-desktop scenario {REAL} has no seeds"):
        request(ORACLE, scenario=REAL, seed=3).validate()
    desktop = request(ORACLE, executor="desktop", scenario=REAL)  # another executor: the id does not apply
    assert desktop.real_scenario() is None and desktop.executor_key == "desktop"
