"""Run controls, driven from another thread while the loop runs on the real sim world:
stop, pause / resume, step_once, take_over / hand_back, call_user, approve / deny."""

from __future__ import annotations

import threading
import time

from tests.agent_helpers import DONE, EventLog, sim, texts_of, xml
from visagent.loop import events as E
from visagent.loop.agent import Agent, AgentConfig
from visagent.loop.agent import NO_USER_NOTE
from visagent.loop.scripted import ScriptedEngine
from visagent.core.trace import read_trace

CLICKS = [xml("left_click", coordinate=(100 + 100 * i, 950)) for i in range(4)]
RISKY = xml("key", keys=["alt", "f4"])


class Running:
    """An Agent running in a background thread, with its events."""

    def __init__(self, outputs, tmp_path, config=None, hooks=(), **engine_kw) -> None:
        _, self.executor = sim()
        self.engine = ScriptedEngine(outputs, **engine_kw)
        self.log = EventLog()
        self.log.hooks.extend(lambda e, h=h: h(self.agent, e) for h in hooks)
        self.agent = Agent(self.engine, self.executor, config or AgentConfig(), trace_root=tmp_path,
                           on_event=self.log)
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()  # hooks reach the agent through self, which is complete by now

    def _run(self) -> None:
        self.result = self.agent.run("Turn off Wi-Fi in Settings.")

    def wait_state(self, state: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.agent.state != state:
            assert time.monotonic() < deadline, f"state stayed {self.agent.state!r}, expected {state!r}"
            time.sleep(0.005)

    def finish(self, timeout: float = 60.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"
        return self.result

    def controls_in_trace(self) -> list[tuple[str, str]]:
        trace = read_trace(self.result.trace_dir)
        return [(r["control"], r["note"]) for r in trace.records if r["type"] == "control"]


def on_step(n: int, control: str):
    """A hook calling `agent.<control>()` right after step n (from the loop's thread)."""
    return lambda agent, e: getattr(agent, control)() if isinstance(e, E.StepFinished) and e.step == n else None


def test_stop_cancels_the_generation_in_flight(tmp_path):
    long_answer = "x" * 400 + DONE

    def stop_on_first_delta(agent, e):
        if isinstance(e, E.ModelDelta):
            agent.stop()

    run = Running([long_answer], tmp_path, hooks=[stop_on_first_delta], piece=1, delay_s=0.01)
    result = run.finish()
    assert result.status == "stopped" and result.steps == 1
    step = read_trace(result.trace_dir).steps[0]
    assert step["model"]["finish_reason"] == "cancelled" and len(step["model"]["raw"]) < len(long_answer)
    assert step["error"] == "stopped by the user"
    assert ("stop", "") in run.controls_in_trace()
    assert run.agent.state == "finished"


def test_stop_while_paused_ends_the_run(tmp_path):
    run = Running(CLICKS, tmp_path, hooks=[on_step(1, "pause")])
    run.wait_state("paused")
    run.agent.stop()
    result = run.finish()
    assert (result.status, result.steps, len(run.engine.calls)) == ("stopped", 1, 1)


def test_pause_step_once_resume(tmp_path):
    run = Running(CLICKS + [DONE], tmp_path, hooks=[on_step(1, "pause")])
    run.wait_state("paused")
    assert len(run.engine.calls) == 1  # paused: no model call until told
    run.agent.step_once()
    run.log.wait_for(lambda e: isinstance(e, E.StepFinished) and e.step == 2)
    run.wait_state("paused")
    assert len(run.engine.calls) == 2  # exactly one more step, then paused again
    run.agent.resume()
    result = run.finish()
    assert result.status == "success" and result.steps == 5
    assert [c for c, _ in run.controls_in_trace()] == ["pause", "step", "resume"]
    assert [e.control for e in run.log.of(E.ControlEvent)] == ["pause", "step", "resume"]


def test_take_over_and_hand_back_tell_the_model(tmp_path):
    run = Running([CLICKS[0], CLICKS[1], DONE], tmp_path, hooks=[on_step(1, "take_over")])
    run.wait_state("taken_over")
    assert len(run.engine.calls) == 1
    run.agent.hand_back("I closed the popup for you")
    result = run.finish()
    assert result.status == "success"
    assert "I closed the popup for you" in texts_of(run.engine.calls[1]["messages"][-1:])
    assert [c for c, _ in run.controls_in_trace()] == ["takeover", "handback"]


def test_call_user_waits_for_the_human_and_passes_the_note(tmp_path):
    ask = xml("call_user", text="please log in for me")
    run = Running([ask, DONE], tmp_path, AgentConfig(human_in_loop=True))
    event = run.log.wait_for(lambda e: isinstance(e, E.ControlEvent) and e.control == "takeover")
    assert event.note == "please log in for me"
    run.wait_state("taken_over")
    assert len(run.engine.calls) == 1
    run.agent.hand_back("logged in")
    result = run.finish()
    assert result.status == "success"
    assert "logged in" in texts_of(run.engine.calls[1]["messages"][-1:])
    assert run.controls_in_trace() == [("takeover", "please log in for me"), ("handback", "logged in")]
    assert run.executor.executed == []


def test_call_user_without_a_human_carries_on_at_once(tmp_path):
    run = Running([xml("call_user", text="help"), DONE], tmp_path)
    result = run.finish()
    assert result.status == "success"
    assert NO_USER_NOTE in texts_of(run.engine.calls[1]["messages"][-1:])


def test_approve_a_pending_risky_action(tmp_path):
    run = Running([RISKY, DONE], tmp_path, AgentConfig(human_in_loop=True))
    ask = run.log.wait_for(lambda e: isinstance(e, E.NeedsConfirmation))
    assert ask.action.keys == ("alt", "f4")
    run.wait_state("waiting_confirmation")
    assert run.executor.executed == []
    run.agent.approve()
    result = run.finish()
    assert [a.keys for a in run.executor.executed] == [("alt", "f4")]
    assert read_trace(result.trace_dir).steps[0]["policy"]["decision"] == "approved"


def test_deny_a_pending_risky_action(tmp_path):
    run = Running([RISKY, DONE], tmp_path, AgentConfig(human_in_loop=True))
    run.log.wait_for(lambda e: isinstance(e, E.NeedsConfirmation))
    run.agent.deny()
    result = run.finish()
    assert result.status == "success" and run.executor.executed == []
    step = read_trace(result.trace_dir).steps[0]
    assert step["policy"]["decision"] == "denied" and "denied" in step["policy"]["reason"]
    assert "not executed" in texts_of(run.engine.calls[1]["messages"][-1:])
    assert run.log.of(E.Blocked)


def test_unanswered_confirmation_is_denied_after_the_human_timeout(tmp_path):
    run = Running([RISKY, DONE], tmp_path, AgentConfig(human_in_loop=True, human_timeout_s=0.2))
    result = run.finish()
    assert run.executor.executed == []
    assert "no answer from the user" in read_trace(result.trace_dir).steps[0]["policy"]["reason"]


def test_answer_given_synchronously_inside_the_event_handler_counts(tmp_path):
    hook = lambda agent, e: agent.approve() if isinstance(e, E.NeedsConfirmation) else None  # noqa: E731
    run = Running([RISKY, DONE], tmp_path, hooks=[hook])
    run.finish()
    assert [a.keys for a in run.executor.executed] == [("alt", "f4")]


def test_take_over_during_the_model_call_cancels_it_and_drops_its_answer(tmp_path):
    slow_click = "x" * 200 + CLICKS[0]

    def take_over_on_first_delta(agent, e):
        if isinstance(e, E.ModelDelta) and agent.controls.takeovers == 0:
            agent.take_over()

    run = Running([slow_click, DONE], tmp_path, hooks=[take_over_on_first_delta], piece=1, delay_s=0.005)
    run.wait_state("taken_over")
    run.agent.hand_back("")  # possibly before the cancelled call returned: its answer is dropped all the same
    result = run.finish()
    assert result.status == "success" and run.executor.executed == []
    first = read_trace(result.trace_dir).steps[0]
    assert first["model"]["finish_reason"] == "cancelled"
    assert first["policy"] == {"decision": "blocked", "reason": "the user took over"} and first["actions"] == []
    assert "handed it back" in texts_of(run.engine.calls[1]["messages"][-1:])


def test_take_over_after_the_capture_but_before_the_model_call_drops_that_step(tmp_path):
    # The screenshot the model would see is stale once the human has the screen, even though no model call was
    # in flight to cancel; the step must be dropped, not parsed (an empty/cancelled answer is no parse error).
    def take_over_on_screenshot(agent, e):
        if isinstance(e, E.Screenshot) and agent.controls.takeovers == 0:
            agent.take_over()

    run = Running([CLICKS[0], DONE], tmp_path, hooks=[take_over_on_screenshot])
    run.wait_state("taken_over")
    run.agent.hand_back("")
    result = run.finish()
    assert result.status == "success", result.reason
    assert run.executor.executed == []
    first = read_trace(result.trace_dir).steps[0]
    assert first["policy"] == {"decision": "blocked", "reason": "the user took over"} and first["actions"] == []
