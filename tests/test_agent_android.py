"""The agent loop driving an Android phone over adb: the AndroidExecutor runs real `adb` command lines against
a FAKE adb program that emulates the phone from the sim world (no emulator can run here)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from visagent.agent import Agent, AgentConfig
from visagent.executors.android import AndroidExecutor
from visagent.scenarios import get_scenario
from visagent.scripted import OracleEngine
from visagent.trace import read_trace

FAKES = Path(__file__).resolve().parent / "fakes"
SERIAL = "emulator-5554"


def _load_fake():
    loader = importlib.machinery.SourceFileLoader("fake_adb_for_agent", str(FAKES / "adb"))
    spec = importlib.util.spec_from_loader("fake_adb_for_agent", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def fake_phone(tmp_path, monkeypatch):
    state = tmp_path / "phone"
    monkeypatch.setenv("FAKE_ADB_DIR", str(state))
    monkeypatch.setenv("FAKE_ADB_TICK_S", "1.0")  # each adb call = 1 s of phone time
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for var in ("FAKE_ADB_DEVICES", "FAKE_ADB_IME", "FAKE_ADB_DISCONNECT_AFTER", "FAKE_ADB_OFFLINE_AFTER",
                "FAKE_ADB_SLOW_S", "ANDROID_SERIAL"):
        monkeypatch.delenv(var, raising=False)
    fake = _load_fake()
    return lambda: fake.Phone(state / SERIAL).world  # the phone's world as the fake rebuilds it


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
