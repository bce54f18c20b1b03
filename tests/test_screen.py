"""The screen seam (visagent.screen.seam.Screen): its rules hold for every caller, not only the agent loop.

A backend that hangs, breaks or is closed ends as one line within the call limit, and every call runs on one
worker thread, whether it comes from the loop, a take-over click on the dashboard, replay, `visagent do` or
the MCP server. The backends are the real SimExecutor, with a switch that makes a call block.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.fixtures.dashboard import wait_until
from visagent.core.actions import Action
from visagent.core.errors import ConfigError, ExecutorError
from visagent.screen.seam import Screen
from visagent.screen.simulated import SimExecutor
from visagent.sim.scenarios import get_scenario
from visagent.screen.settle import SettleDetector
from visagent.sim.world import SimWorld

SCENARIO = "desktop-settings-wifi-off"
TRACES = Path(__file__).resolve().parent.parent / "scenarios" / "traces"


class BlockingSim(SimExecutor):
    """The real SimExecutor; with `block` set, execute() waits until `release` is set (a hung display);
    `boom` makes execute raise a bug's exception. Notes the threads of its calls."""

    def __init__(self, world: SimWorld, scale: float = 1.0) -> None:
        super().__init__(world, scale=scale)
        self.block = False
        self.boom: Exception | None = None
        self.release = threading.Event()
        self.threads: set[int] = set()
        self.executed = 0
        self.captures = 0

    def screenshot(self):
        self.threads.add(threading.get_ident())
        self.captures += 1
        return super().screenshot()

    def execute(self, action):
        self.threads.add(threading.get_ident())
        self.executed += 1
        if self.boom is not None:
            raise self.boom
        if self.block:
            self.release.wait(30)
        return super().execute(action)


@pytest.fixture
def blocking():
    made: list[BlockingSim] = []

    def make(scenario: str = SCENARIO, seed: int | None = 0) -> BlockingSim:
        ex = BlockingSim(get_scenario(scenario).make_world(seed))
        made.append(ex)
        return ex

    yield make
    for ex in made:  # let abandoned worker threads finish
        ex.release.set()


def click_somewhere() -> Action:
    return Action("left_click", coordinate=(10, 10), space="screen")


# -- the rules, on the seam itself --------------------------------------------------------------------------------


def test_calls_from_any_thread_run_on_one_worker_thread(blocking):
    ex = blocking()
    screen = Screen(ex)
    screen.observe()
    other = threading.Thread(target=lambda: screen.act(click_somewhere()))
    other.start()
    other.join(30)
    screen.configured(settle=False).screenshot()  # a view shares the worker
    assert len(ex.threads) == 1
    assert threading.get_ident() not in ex.threads and other.ident not in ex.threads


def test_a_hung_backend_ends_in_one_line_after_the_limit_and_the_next_call_works(blocking):
    ex = blocking()
    screen = Screen(ex, timeout_s=0.3)
    ex.block = True
    with pytest.raises(ExecutorError) as err:
        screen.act(click_somewhere())
    assert str(err.value) == "sim: executing left_click did not finish within 0.3 s; is the screen / device responsive?"
    ex.block = False
    ex.release.set()
    assert screen.screenshot().image.size == (1280, 800)  # on a fresh worker thread
    assert len(ex.threads) == 2


def test_a_backend_bug_becomes_one_executor_error_line(blocking):
    ex = blocking()
    ex.boom = RuntimeError("index out of range\n  in the widget tree")
    with pytest.raises(ExecutorError) as err:
        Screen(ex).act(click_somewhere())
    assert str(err.value) == ("sim: executing left_click failed: RuntimeError: index out of range in the widget "
                              "tree")


def test_a_closed_screen_or_backend_refuses_every_call_without_touching_it(blocking):
    ex = blocking()
    screen = Screen(ex)
    screen.close()
    assert ex.closed and screen.closed
    with pytest.raises(ExecutorError, match=r"^the sim screen is closed; open a new one$"):
        screen.act(click_somewhere())
    with pytest.raises(ExecutorError, match="closed"):
        screen.configured(settle=False).screenshot()
    other = blocking()
    other_screen = Screen(other)
    other.close()  # closed behind the seam's back (the dashboard closes its executor when a run ends)
    with pytest.raises(ExecutorError, match=r"^the sim screen is closed"):
        other_screen.act(click_somewhere())
    assert ex.executed == other.executed == 0 and ex.captures == other.captures == 0


def test_bad_settings_are_refused():
    world = SimWorld("desktop", seed=0)
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="timeout"):
            Screen(SimExecutor(world), timeout_s=bad)
    with pytest.raises(ConfigError, match="settle"):
        Screen(SimExecutor(world), settle="yes")  # type: ignore[arg-type]


def test_an_action_settles_once_with_the_backends_own_parameters(blocking):
    ex = blocking()
    ex.settle = SettleDetector(consecutive=6, interval_s=0.05)  # what a desktop / phone backend declares
    screen = Screen(ex)
    screen.screenshot()  # the screen the action is decided on (else the seam captures one to compare with)
    ex.captures = 0
    wait = screen.act(Action("wait", time=0.1, space="screen"))
    assert wait.observation is not None and wait.changed is False
    assert ex.captures == 1 + 6  # the first frame and 6 quiet comparisons: one settle, with the backend's count
    ex.captures = 0
    screen.configured(settle=SettleDetector(consecutive=2)).act(Action("wait", time=0.1, space="screen"))
    assert ex.captures == 1 + 2  # a detector given to the screen wins
    ex.captures = 0
    assert screen.configured(settle=False).act(Action("wait", time=0.1, space="screen")).observation is None
    assert ex.captures == 0


# -- every caller gets them ---------------------------------------------------------------------------------------


def test_visagent_do_on_a_hung_screen_stops_at_its_timeout_with_one_line(blocking, clean_env, monkeypatch, capsys):
    import visagent.screen
    from visagent.cli import main

    ex = blocking()
    ex.block = True
    monkeypatch.setattr(visagent.screen, "open_executor", lambda kind, **kw: ex)
    code = main(["do", "--executor", "sim", "--scenario", SCENARIO, "--timeout", "0.5",
                 "--action", '{"action": "left_click", "coordinate": [10, 10]}'])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == ("visagent: error: sim: executing left_click did not finish within 0.5 s; "
                           "is the screen / device responsive?")
    assert ex.closed  # closed on the way out all the same


def test_visagent_do_refuses_a_bad_timeout(clean_env, capsys):
    from visagent.cli import main

    assert main(["do", "--executor", "sim", "--timeout", "0", "--action", '{"action": "wait"}']) == 2
    assert "--timeout must be a positive number" in capsys.readouterr().err


def test_replay_on_a_hung_screen_stops_at_the_limit_with_one_line(blocking):
    from visagent.traces.replay import replay_trace
    from visagent.core.trace import read_trace

    trace = TRACES / "desktop-settings-wifi-off-s0"
    meta = read_trace(trace).meta["executor"]
    ex = blocking(meta["scenario"], meta["seed"])
    ex.block = True
    with pytest.raises(ExecutorError, match=r"^sim: executing \w+ did not finish within 0.3 s"):
        replay_trace(trace, executor=Screen(ex, timeout_s=0.3))
    assert not ex.closed  # an executor passed in stays open


def test_replay_refuses_a_closed_executor_in_one_line(blocking):
    from visagent.traces.replay import replay_trace

    ex = blocking()
    ex.close()
    with pytest.raises(ExecutorError, match=r"^the sim screen is closed"):
        replay_trace(TRACES / "desktop-settings-wifi-off-s0", executor=ex)


def test_an_mcp_act_on_a_hung_screen_is_an_error_and_the_step_records_it(blocking, tmp_path):
    from visagent.mcp_server import McpSession
    from visagent.core.settings import Settings
    from visagent.core.trace import read_trace

    ex = blocking()
    session = McpSession(Settings(trace_dir=str(tmp_path)), lambda scenario, seed: ex, kind="sim",
                         scenario=SCENARIO)
    session.screen = session.screen.configured(timeout_s=0.3)
    ex.block = True
    with pytest.raises(ExecutorError, match="did not finish within 0.3 s"):
        session.act({"action": "left_click", "coordinate": [10, 10]})
    ex.block = False
    ex.release.set()
    path = session.close()
    step = read_trace(path).steps[0]
    assert "did not finish within 0.3 s" in step["error"] and step["result"] is None


def test_a_take_over_click_on_a_hung_or_closed_screen_is_one_line(tmp_path):
    from tests.fixtures.dashboard import distinct_waits
    from ui.engines import EngineCache, ModelChoice
    from ui.runs import RunManager, RunRequest
    from visagent.loop.scripted import ScriptedEngine
    from visagent.core.settings import Settings

    engines = EngineCache(loader=lambda spec, **_: ScriptedEngine(distinct_waits(), piece=8, delay_s=0.02))
    runs = RunManager(Settings(trace_dir=str(tmp_path)), engines=engines)
    run = runs.start(RunRequest(task="Turn Wi-Fi off.", model=ModelChoice("checkpoint", "scripted"), executor="sim",
                                scenario=SCENARIO, max_steps=30))
    wait_until(lambda: run.snapshot().answer, 30, "the model's first words")
    run.control("takeover")
    wait_until(lambda: (s := run.snapshot()).state == "taken_over" and len(s.timings) == s.step and s,
               30, "the take-over after the step in progress")
    agent = run.agent
    backend = agent.screen.backend
    release = threading.Event()
    real_execute = backend.execute
    backend.execute = lambda action: (release.wait(30), real_execute(action))[1]  # the screen hangs
    agent.screen.timeout_s = 0.3
    try:
        line = run.human_click(10, 10)
    finally:
        release.set()
    assert line == ("the click did not reach the screen: sim: executing left_click did not finish within 0.3 s; "
                    "is the screen / device responsive?")
    backend.execute = real_execute
    backend.close()
    assert run.human_click(10, 10) == "the click did not reach the screen: the sim screen is closed; open a new one"
    run.control("stop")
    wait_until(lambda: run.snapshot().status, 60, "the run to end")
    assert "[you]" not in "\n".join(run.snapshot().log)  # no click was reported as done
