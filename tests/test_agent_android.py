"""The agent loop driving an Android phone over adb: the AndroidExecutor runs real `adb` command lines against
a FAKE adb program that emulates the phone from the sim world (no emulator can run here)."""

from __future__ import annotations

import pytest

from tests.fixtures.fake_adb import use_fake_adb
from visagent.loop.agent import Agent, AgentConfig
from visagent.screen.android import AndroidExecutor
from visagent.sim.scenarios import get_scenario
from visagent.loop.scripted import OracleEngine
from visagent.core.trace import read_trace


@pytest.fixture
def fake_phone(tmp_path, monkeypatch):
    return use_fake_adb(tmp_path, monkeypatch).world  # the phone's world as the fake rebuilds it


def test_oracle_solves_a_phone_scenario_over_adb(fake_phone, monkeypatch, tmp_path):
    scenario = get_scenario("phone-settings-bluetooth-on")
    monkeypatch.setenv("FAKE_ADB_SCENARIO", scenario.id)
    monkeypatch.setenv("FAKE_ADB_SEED", "0")
    # No settling: every adb call already advances the fake phone's clock by 1 s, so animations end between
    # calls, and each call is a process that replays the phone's events (slow on a loaded CPU).
    executor = AndroidExecutor(settle=False)
    try:
        engine = OracleEngine(scenario, fake_phone, geometry=executor.geometry)
        config = AgentConfig(max_steps=scenario.max_steps * 3, loop_limit=6, settle=False)
        result = Agent(engine, executor, config, trace_root=tmp_path / "runs").run(scenario.instruction_for())
    finally:
        executor.close()
    assert result.status == "success", result.reason
    assert scenario.is_success(fake_phone())
    trace = read_trace(result.trace_dir)
    assert trace.problems == [] and trace.meta["executor"]["platform"] == "phone"
    assert engine.calls[0]["tools"][0]["function"]["name"] == "mobile_use"
    taps = [s["actions"][0] for s in trace.steps if s["actions"][0]["action"] == "click"]
    assert taps and all(t["space"] == "screen" for t in taps)
