"""The agent loop driving a real X server: Xvfb, a sim scenario shown in a real Tk window, the desktop executor
(mss capture, pyautogui input) called from the loop's executor worker thread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.agent_helpers import DONE
from tests.fixtures.xserver import wait_for
from visagent.loop.agent import Agent, AgentConfig
from visagent.loop.coords import from_screen
from visagent.screen.desktop import DesktopExecutor
from visagent.loop.parsing import render_action
from visagent.sim.scenarios import get_scenario
from visagent.loop.scripted import ScriptedEngine
from visagent.screen.settle import SettleDetector
from visagent.sim.oracle import solve
from visagent.core.trace import read_trace

ROOT = Path(__file__).resolve().parent.parent


def test_agent_solves_a_scenario_in_a_real_x_window(xserver, tmp_path):
    scenario_id, origin = "desktop-settings-wifi-off", (120, 60)
    scenario = get_scenario(scenario_id)
    state_file = tmp_path / "state.json"
    host = subprocess.Popen(
        [sys.executable, "-m", "visagent.sim.tkhost", "--scenario", scenario_id, "--seed", "0", "--state-file",
         str(state_file), "--geometry", f"+{origin[0]}+{origin[1]}", "--zoom", "1"], cwd=ROOT)
    executor = None
    try:
        wait_for(state_file.exists, what="tk host state file")
        executor = DesktopExecutor(settle=SettleDetector(consecutive=4, interval_s=0.05, wait_for_change_s=1.0))
        geometry = executor.geometry()
        # The oracle's solution on a twin world (same scenario and seed → same layout), moved to where the
        # window is on the X screen and written as a model would: 0..1000 grid over the whole screen.
        plan = [a for a in solve(scenario, scenario.make_world(0)) if a.action != "terminate"]
        outputs = []
        for a in plan:
            assert a.coordinate is not None, a
            on_screen = a.with_(coordinate=(a.coordinate[0] + origin[0], a.coordinate[1] + origin[1]))
            outputs.append(render_action(from_screen(on_screen, geometry, space="norm1000"), "qwen35"))
        engine = ScriptedEngine(outputs + [DONE])
        result = Agent(engine, executor, AgentConfig(max_steps=len(outputs) + 2), trace_root=tmp_path).run(
            scenario.instruction_for())
        assert result.status == "success", result.reason
        wait_for(lambda: json.loads(state_file.read_text(encoding="utf-8"))["settings"]["wifi"] is False,
                 what="Wi-Fi off in the Tk-hosted world")
        trace = read_trace(result.trace_dir)
        assert trace.problems == [] and trace.meta["executor"]["name"] == "desktop"
        clicks = [s for s in trace.steps if s["actions"][0]["action"] == "left_click"]
        assert clicks and all(s["result"]["ok"] and s["result"]["changed"] for s in clicks)
        assert trace.image(1).size == (geometry.physical_width, geometry.physical_height)
    finally:
        if executor is not None:
            executor.close()
        host.terminate()
        host.wait(timeout=10)

