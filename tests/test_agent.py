"""The agent loop end to end on the real sim world: outcomes, robustness, safety, secrets, coordinate scaling."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from engine.api import GenerationConfig
from tests.agent_helpers import DONE, WAIT, EventLog, RecordingSimExecutor, sim, texts_of, xml
from visagent.loop import events as E
from visagent.loop.agent import Agent, AgentConfig
from visagent.core.errors import ConfigError, VisagentError
from visagent.sim.scenarios import get_scenario
from visagent.loop.scripted import OracleEngine, ScriptedEngine
from visagent.core.trace import read_trace

SECRET = "hunter2-Zq9!"


@pytest.fixture(scope="module")
def tiny_engine():
    """The embedded tiny Qwen3.5 checkpoint, loaded once for this module."""
    from engine import load_engine

    engine = load_engine("tiny")
    yield engine
    engine.close()


def run_scripted(outputs, tmp_path, config=None, task="Turn off Wi-Fi in Settings.", **engine_kw):
    scenario, executor = sim()
    engine = ScriptedEngine(outputs, **engine_kw)
    log = EventLog()
    agent = Agent(engine, executor, config or AgentConfig(), trace_root=tmp_path, on_event=log)
    result = agent.run(task)
    return result, engine, executor, log


def assert_valid_trace(result):
    trace = read_trace(result.trace_dir)
    assert trace.problems == []
    assert trace.meta["status"] == result.status and trace.meta["steps"] == result.steps
    assert trace.finished is not None and trace.finished["status"] == result.status
    assert [s["step"] for s in trace.steps] == list(range(1, result.steps + 1))
    for s in trace.steps:
        assert trace.image(s["step"]).size == (s["geometry"]["physical_width"], s["geometry"]["physical_height"])
    assert trace.final_image() is not None
    return trace


# -- solving scenarios through real parsing, conversion and execution ---------------------------------

@pytest.mark.parametrize("scale,space", [(1.0, "norm1000"), (2.0, "norm1000"), (2.0, "resized")])
def test_oracle_engine_solves_scenario_end_to_end(tmp_path, scale, space):
    scenario, executor = sim(scale=scale)
    engine = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry, space=space)
    log = EventLog()
    agent = Agent(engine, executor, AgentConfig(max_steps=scenario.max_steps * 3), trace_root=tmp_path,
                  on_event=log, run_meta={"scenario": scenario.id, "seed": 0})
    result = agent.run(scenario.instruction_for(executor.world))
    assert result.status == "success", result.reason
    assert scenario.is_success(executor.world)
    trace = assert_valid_trace(result)
    assert trace.meta["executor"]["scenario"] == scenario.id
    assert trace.meta["executor"]["geometry"]["scale"] == scale
    clicks = [s["actions"][0] for s in trace.steps if s["actions"][0]["action"] == "left_click"]
    assert clicks and all(c["space"] == "screen" and c["mapping"]["space"] == space for c in clicks)
    # The click landed in logical pixels although the model saw a physical (HiDPI) screenshot.
    assert [tuple(a.coordinate) for a in executor.executed if a.coordinate] == \
        [tuple(c["coordinate"]) for c in clicks]
    kinds = [type(e).__name__ for e in log.events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert {"StepStarted", "Screenshot", "ModelDelta", "ActionParsed", "Executed", "StepFinished"} <= set(kinds)


def test_tool_schema_and_images_reach_the_engine(tmp_path):
    result, engine, _, _ = run_scripted([xml("left_click", coordinate=(10, 10)), DONE], tmp_path)
    assert result.status == "success"
    call = engine.calls[0]
    assert call["tools"][0]["function"]["name"] == "computer_use"
    assert call["messages"][0]["role"] == "system"
    second = engine.calls[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[2]["content"] == engine.outputs[0]


@pytest.mark.parametrize("scenario_id,extra", [
    ("desktop-settings-wifi-off", {}),
    ("desktop-settings-dark-mode", {"thinking": True, "parse_retries": 0}),
])
def test_tiny_checkpoint_run_ends_cleanly_with_a_valid_trace(tmp_path, tiny_engine, scenario_id, extra):
    scenario, executor = sim(scenario_id)
    config = AgentConfig(**{"max_steps": 2, "parse_retries": 1, "generation": GenerationConfig(max_new_tokens=12),
                            **extra})
    result = Agent(tiny_engine, executor, config, trace_root=tmp_path).run(scenario.instruction_for(executor.world))
    assert result.status in ("success", "failure", "answered", "max_steps", "parse_error", "loop"), result.reason
    trace = assert_valid_trace(result)
    first = trace.steps[0]
    assert first["prompt"]["tokens"] > 0 and first["prompt"]["visual_tokens"] > 0
    assert first["model"]["generated_tokens"] > 0 and first["attempts"] >= 1
    assert trace.meta["model"]["spec"] == "tiny" and trace.meta["model"]["model_type"].startswith("qwen3_5")


# -- limits and outcomes ----------------------------------------------------------------------------

def test_answer_ends_with_status_answered_and_the_answer(tmp_path):
    result, *_ = run_scripted([xml("answer", text="42")], tmp_path)
    assert (result.status, result.answer) == ("answered", "42")
    assert read_trace(result.trace_dir).meta["answer"] == "42"


def test_terminate_failure(tmp_path):
    result, *_ = run_scripted([xml("terminate", status="failure")], tmp_path)
    assert result.status == "failure"


def test_max_steps(tmp_path):
    outputs = [xml("left_click", coordinate=(100 + 50 * i, 900)) for i in range(5)]
    result, engine, *_ = run_scripted(outputs, tmp_path, AgentConfig(max_steps=3))
    assert (result.status, result.steps, len(engine.calls)) == ("max_steps", 3, 3)
    assert_valid_trace(result)


def test_time_limit(tmp_path):
    result, *_ = run_scripted([WAIT, WAIT, DONE], tmp_path, AgentConfig(max_seconds=1e-6))
    assert result.status == "timeout" and result.steps == 1 and "time limit" in result.reason


# -- robustness -------------------------------------------------------------------------------------

def test_parse_error_is_fed_back_and_retried(tmp_path):
    result, engine, _, log = run_scripted(["I think I should click.", DONE], tmp_path)
    assert result.status == "success" and len(engine.calls) == 2
    assert "could not be used" in texts_of(engine.calls[1]["messages"][-1:])
    step = read_trace(result.trace_dir).steps[0]
    assert step["attempts"] == 2 and step["parse_error"] is None and len(step["parse_errors"]) == 1
    assert len(log.of(E.ErrorEvent)) == 1


def test_parse_errors_exhaust_retries_then_stop(tmp_path):
    result, engine, *_ = run_scripted(["nope"] * 5, tmp_path, AgentConfig(parse_retries=2))
    assert result.status == "parse_error" and len(engine.calls) == 3 and result.steps == 1
    assert "\n" not in result.reason
    step = assert_valid_trace(result).steps[0]
    assert step["attempts"] == 3 and step["parse_error"] and step["error"]


def test_retries_after_a_greedy_unusable_answer_sample(tmp_path):
    # greedy decoding of an unchanged prompt repeats the same unusable answer: a retry must be able to differ
    config = AgentConfig(parse_retries=2, generation=GenerationConfig(temperature=0.0, seed=7))
    result, engine, *_ = run_scripted(["nope", "nope", DONE], tmp_path, config)
    assert result.status == "success"
    temps = [c["config"].temperature for c in engine.calls]
    assert temps[0] == 0.0 and all(t > 0 for t in temps[1:])
    assert [c["config"].seed for c in engine.calls] == [7, 8, 9]  # still reproducible, but not repeated
    config = AgentConfig(parse_retries=1, generation=GenerationConfig(temperature=0.3))
    result, engine, *_ = run_scripted(["nope", DONE], tmp_path, config)
    assert [c["config"].temperature for c in engine.calls] == [0.3, 0.3]  # the user's own sampling is kept


def test_action_off_the_grid_is_a_parse_error_told_to_the_model(tmp_path):
    bad = xml("left_click", coordinate=(10, 10)).replace("[10, 10]", "[1500, 10]")
    result, engine, *_ = run_scripted([bad, DONE], tmp_path)
    assert result.status == "success"
    assert "1500" in texts_of(engine.calls[1]["messages"][-1:])


def test_no_op_is_reported_and_repeats_end_as_loop(tmp_path):
    result, engine, executor, log = run_scripted([WAIT], tmp_path, AgentConfig(loop_limit=3), repeat_last=True)
    assert result.status == "loop" and result.steps == 3 and "3 times" in result.reason
    told = texts_of(engine.calls[1]["messages"][-1:])
    assert "The screen did not change" in told
    assert "repeat it again the run stops" in texts_of(engine.calls[2]["messages"][-1:])
    assert len(executor.executed) == 2  # the third repeat is not executed
    last = assert_valid_trace(result).steps[-1]
    assert last["policy"]["decision"] == "blocked" and last["result"] is None
    assert log.of(E.Blocked)


def test_engine_error_ends_run_with_one_line_reason(tmp_path):
    result, *_ = run_scripted([], tmp_path)
    assert result.status == "error" and result.reason.startswith("engine:") and "\n" not in result.reason
    assert assert_valid_trace(result).steps[0]["error"] == result.reason


def test_engine_that_ignores_its_timeout_is_abandoned(tmp_path):
    config = AgentConfig(model_timeout_s=0.3)
    result, *_ = run_scripted([DONE], tmp_path, config, piece=1000, delay_s=5.0)
    assert result.status == "error" and "did not finish within" in result.reason


def test_executor_error_ends_run_with_one_line_reason(tmp_path):
    scenario, executor = sim()
    log = EventLog()
    log.hooks.append(lambda e: executor.close() if isinstance(e, E.StepFinished) else None)
    engine = ScriptedEngine([xml("left_click", coordinate=(10, 10)), xml("left_click", coordinate=(20, 20)), DONE])
    result = Agent(engine, executor, trace_root=tmp_path, on_event=log).run("do it")
    assert result.status == "error" and "closed" in result.reason and "\n" not in result.reason
    assert read_trace(result.trace_dir).meta["status"] == "error"


def test_bad_input_raises_before_anything_starts(tmp_path):
    _, executor = sim()
    with pytest.raises(ConfigError, match="empty"):
        Agent(ScriptedEngine([DONE]), executor, trace_root=tmp_path).run("  ")
    with pytest.raises(ConfigError, match="VISAGENT_SECRET_NOPE_X"):
        Agent(ScriptedEngine([DONE]), executor, trace_root=tmp_path).run("type {{secret:NOPE_X}}")
    assert list(tmp_path.iterdir()) == []
    agent = Agent(ScriptedEngine([DONE]), executor, trace_root=None)
    assert agent.run("go").status == "success"
    with pytest.raises(VisagentError, match="already ran"):
        agent.run("go")


# -- safety -----------------------------------------------------------------------------------------

RISKY = xml("key", keys=["alt", "f4"])


def test_risky_action_denied_when_no_one_can_confirm(tmp_path):
    result, engine, executor, log = run_scripted([RISKY, DONE], tmp_path)
    assert result.status == "success"
    assert executor.executed == []
    (ask,) = log.of(E.NeedsConfirmation)
    assert "alt+f4" in ask.reason
    assert "no one was available" in log.of(E.Blocked)[0].reason
    assert "not executed" in texts_of(engine.calls[1]["messages"][-1:])
    assert read_trace(result.trace_dir).steps[0]["policy"]["decision"] == "denied"


def test_yes_approves_risky_actions_in_advance(tmp_path):
    result, _, executor, log = run_scripted([RISKY, DONE], tmp_path, AgentConfig(auto_approve=True))
    assert [a.keys for a in executor.executed] == [("alt", "f4")]
    assert not log.of(E.NeedsConfirmation)
    assert read_trace(result.trace_dir).steps[0]["policy"]["decision"] == "approved"


# -- secrets ----------------------------------------------------------------------------------------

def test_secret_is_typed_but_never_written_shown_or_sent(tmp_path, monkeypatch):
    monkeypatch.setenv("VISAGENT_SECRET_PW", SECRET)
    typed = xml("type", text="{{secret:PW}}")
    result, engine, executor, log = run_scripted([typed, DONE], tmp_path, task="Type {{secret:PW}} and finish.")
    assert result.status == "success"
    assert [a.text for a in executor.executed] == [SECRET]  # the real value reached the executor
    for path in result.trace_dir.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name
    steps = read_trace(result.trace_dir).steps
    assert steps[0]["actions"][0]["text"] == "{{secret:PW}}"
    assert SECRET not in json.dumps([e.to_dict() for e in log.events])
    assert SECRET not in json.dumps([texts_of(c["messages"]) for c in engine.calls])
    assert "{{secret:PW}}" in texts_of(engine.calls[0]["messages"])


def test_secret_value_in_the_task_itself_is_redacted(tmp_path):
    config = AgentConfig(secrets={"PW": SECRET})
    result, engine, _, log = run_scripted([DONE], tmp_path, config, task=f"Log in with {SECRET}.")
    assert SECRET not in texts_of(engine.calls[0]["messages"])
    assert read_trace(result.trace_dir).meta["task"] == "Log in with {{secret:PW}}."
    assert log.of(E.RunStarted)[0].task == "Log in with {{secret:PW}}."


def test_a_secret_whose_value_is_risky_is_held_without_recording_it(tmp_path):
    """The policy sees the real value of a typed secret (issue 42: it saw only the placeholder)."""
    value = "rm --recursive --force /srv/data"
    config = AgentConfig(secrets={"CMD": value})
    result, _, executor, log = run_scripted([xml("type", text="{{secret:CMD}}"), DONE], tmp_path, config,
                                            task="Run {{secret:CMD}}.")
    assert executor.executed == []  # no human to confirm: denied
    step = read_trace(result.trace_dir).steps[0]
    assert step["policy"]["decision"] == "denied" and "risky pattern" in step["policy"]["reason"]
    assert value not in json.dumps(step) and value not in json.dumps([e.to_dict() for e in log.events])


# -- kill -9 ----------------------------------------------------------------------------------------

KILLED_RUN = """
import sys
from tests.agent_helpers import sim, WAIT
from visagent.loop.agent import Agent, AgentConfig
from visagent.loop.scripted import ScriptedEngine
from visagent.loop import events as E
_, executor = sim()
def tell(e):
    if isinstance(e, E.StepFinished):
        print("step", e.step, flush=True)
engine = ScriptedEngine([WAIT], repeat_last=True)
Agent(engine, executor, AgentConfig(max_steps=10000, loop_limit=10000), trace_root=sys.argv[1],
      on_event=tell).run("wait forever")
"""


def test_kill_9_during_a_run_leaves_a_trace_loading_to_the_last_complete_step(tmp_path):
    root = os.path.dirname(os.path.dirname(__file__))
    proc = subprocess.Popen([os.sys.executable, "-c", KILLED_RUN, str(tmp_path)], stdout=subprocess.PIPE,
                            cwd=root)
    try:
        for _ in range(4):
            assert proc.stdout.readline().startswith(b"step")
    finally:
        proc.kill()
        proc.wait()
    (run_dir,) = list(tmp_path.iterdir())
    trace = read_trace(run_dir)
    assert trace.meta["status"] == "running" and trace.finished is None
    numbers = [s["step"] for s in trace.steps]
    assert len(numbers) >= 4 and numbers == list(range(1, len(numbers) + 1))
    for n in numbers:
        assert trace.image(n).size == (1280, 800)
    assert all("incomplete last line" in p for p in trace.problems)


@pytest.mark.parametrize("scenario_id", [
    "desktop-contacts-add", "desktop-files-rename", "desktop-notes-write-save", "phone-calculator-add",
    "phone-messages-send", "phone-settings-device-name", "phone-files-rename-scroll",
])
def test_oracle_engine_solves_desktop_and_phone_scenarios(tmp_path, scenario_id):
    scenario, executor = sim(scenario_id, seed=3)
    engine = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)
    config = AgentConfig(max_steps=scenario.max_steps * 4 + 10, loop_limit=6)
    result = Agent(engine, executor, config, trace_root=tmp_path).run(scenario.instruction_for(executor.world))
    assert result.status == "success", result.reason
    assert scenario.is_success(executor.world)
    trace = assert_valid_trace(result)
    tool = engine.calls[0]["tools"][0]["function"]["name"]
    assert tool == ("mobile_use" if scenario.platform == "phone" else "computer_use")
    assert trace.meta["executor"]["platform"] == scenario.platform


def test_unwritable_trace_root_ends_the_run_with_error_not_a_crash(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the trace root should be")
    _, executor = sim()
    result = Agent(ScriptedEngine([DONE]), executor, trace_root=blocker).run("go")
    assert result.status == "error" and "trace directory" in result.reason and result.trace_dir is None


class ThreadNotingSimExecutor(RecordingSimExecutor):
    """The real SimExecutor, noting which thread each call came from; `hang_s` makes execute block."""

    def __init__(self, *args, hang_s: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.threads: set[int] = set()
        self.hang_s = hang_s

    def screenshot(self):
        self.threads.add(threading.get_ident())
        return super().screenshot()

    def execute(self, action):
        self.threads.add(threading.get_ident())
        time.sleep(self.hang_s)
        return super().execute(action)


def test_executor_calls_come_from_one_thread_that_is_not_the_callers(tmp_path):
    scenario = get_scenario("desktop-settings-wifi-off")
    executor = ThreadNotingSimExecutor(scenario.make_world(0))
    engine = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)
    result = Agent(engine, executor, trace_root=tmp_path).run(scenario.instruction_for(executor.world))
    assert result.status == "success"
    assert len(executor.threads) == 1 and threading.get_ident() not in executor.threads


def test_hung_executor_call_ends_the_run_with_error(tmp_path):
    scenario = get_scenario("desktop-settings-wifi-off")
    executor = ThreadNotingSimExecutor(scenario.make_world(0), hang_s=3.0)
    engine = ScriptedEngine([xml("left_click", coordinate=(10, 10)), DONE])
    result = Agent(engine, executor, AgentConfig(execute_timeout_s=0.3), trace_root=tmp_path).run("go")
    assert result.status == "error" and "did not finish within 0.3 s" in result.reason
    assert read_trace(result.trace_dir).final_image() is not None  # taken on a fresh worker thread


def test_config_from_settings_maps_fields_and_overrides_win():
    from visagent.core.settings import SafetySettings, Settings

    settings = Settings(max_steps=7, max_seconds=30.0, history_images=2, thinking=True, settle=False,
                        safety=SafetySettings(confirm_risky=False))
    config = AgentConfig.from_settings(settings, auto_approve=True, max_steps=9)
    assert (config.max_steps, config.max_seconds, config.history_images, config.thinking, config.settle) == \
        (9, 30.0, 2, True, False)
    assert config.safety.confirm_risky is False and config.auto_approve is True
    # thinking needs room before the call: each thinking call asks for the budget plus the answer's tokens
    assert (config.thinking_budget, config.answer_tokens) == (settings.thinking_budget, settings.answer_tokens)
    assert config.thinking_budget >= 1024 and config.sampling is not None and not config.sampling.greedy
    with pytest.raises(ConfigError, match="loop_limit"):
        AgentConfig(loop_limit=1)
