"""Every real-desktop scenario: its oracle solves it through the ordinary desktop executor (the check on the
real state is false before, true after), and its recorded trace under scenarios/real-desktop/traces replays
within the real-rendering tolerance with the goal met again (the regression test CI runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from visagent.loop.agent import Agent, AgentConfig
from visagent.realworld.episode import REPLAY_THRESHOLD, replay
from visagent.realworld.registry import real_scenarios
from visagent.realworld.world import RealExecutor, RealOracleEngine
from visagent.core.trace import read_trace

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "scenarios" / "real-desktop" / "traces"
SCENARIOS = real_scenarios()
RECORDED = sorted(p for p in TRACES.iterdir() if (p / "meta.json").is_file()) if TRACES.is_dir() else []
RERECORD = "if a scenario's look changed on purpose, re-record with: .venv/bin/python scripts/record_real_traces.py ID"
# needs Xvfb, openbox, wmctrl, xdotool and chromium (scripts/system-deps.sh); without them the tests fail with
# the missing package named, they do not skip
pytestmark = [pytest.mark.x11, pytest.mark.browser]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VISAGENT_REAL_STATE", str(tmp_path / "state"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_oracle_solves_the_scenario_on_its_real_state(scenario, tmp_path):
    world = scenario.make_world()
    executor = RealExecutor(world)
    try:
        assert not scenario.is_success(world), "the goal must not hold before anything is done"
        engine = RealOracleEngine(scenario, executor)
        agent = Agent(engine, executor, AgentConfig(max_steps=scenario.max_steps, auto_approve=True),
                      trace_root=tmp_path)
        result = agent.run(scenario.instruction)
        assert result.status == "success", result.reason
        assert result.steps <= scenario.max_steps
        assert scenario.is_success(world)
        assert engine.stream.dismissed == []  # nothing unexpected showed up
    finally:
        executor.close()


def test_every_scenario_has_a_recorded_trace_and_every_trace_a_scenario():
    assert {p.name for p in RECORDED} == {s.id for s in SCENARIOS}


@pytest.mark.parametrize("trace", RECORDED, ids=[p.name for p in RECORDED])
def test_recorded_trace_replays_within_the_real_rendering_tolerance(trace, tmp_path):
    copy = tmp_path / trace.name
    shutil.copytree(trace, copy)
    result, goal = replay(copy, threshold=None, out_dir=tmp_path / "diff")
    assert result.ok, f"{result.message}; {RERECORD}"
    assert result.threshold == REPLAY_THRESHOLD
    assert len(result.comparisons) == len(read_trace(copy).steps) + 1  # every step's screen and final.png
    assert goal is True, "the replayed actions no longer reach the goal"


def test_a_replay_that_clicks_elsewhere_diverges(tmp_path):
    """The tolerance still catches a wrong click: the to-do is ticked on another row."""
    import json

    copy = tmp_path / "t"
    shutil.copytree(TRACES / "chromium-todo-done", copy)
    lines = (copy / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    for k, line in enumerate(lines):
        rec = json.loads(line)
        if rec.get("type") == "step" and rec["actions"][0]["action"] == "left_click":
            x, y = rec["actions"][0]["coordinate"]
            rec["actions"][0]["coordinate"] = [x, y + 136]  # two rows further down
            lines[k] = json.dumps(rec)
            break
    (copy / "trace.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, goal = replay(copy, threshold=None, out_dir=tmp_path / "diff")
    assert not result.ok and result.divergence is not None and result.divergence.step == 1
    assert result.divergence.difference > REPLAY_THRESHOLD
    assert goal is False
