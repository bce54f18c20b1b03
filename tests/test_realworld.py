"""The real-desktop world's infrastructure on real Xvfb, openbox, xterm, xmessage and Chromium: displays,
teardown, stray cleanup after SIGKILL, Ctrl-C, programs that fail to start or crash mid-run, an unexpected
modal window, a missing Debian package, and the CLI commands (list, run, eval, replay, report)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from visagent.core import actions as A
from visagent.core.actions import Action
from visagent.loop.agent import Agent, AgentConfig
from visagent.loop.events import StepFinished
from visagent.realworld import procs
from visagent.realworld.errors import MissingProgram, ProgramError, require
from visagent.realworld.registry import get_real_scenario, real_scenarios
from visagent.realworld.world import RealExecutor, RealOracleEngine, RealScenario, RealWorld
from visagent.core.trace import read_trace

ROOT = Path(__file__).resolve().parent.parent
# needs Xvfb, openbox, wmctrl, xdotool and chromium (scripts/system-deps.sh); without them the tests fail with
# the missing package named, they do not skip
pytestmark = [pytest.mark.x11, pytest.mark.browser]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """World records of these tests in a directory of their own (other worlds on this machine are not ours)."""
    path = tmp_path / "state"
    monkeypatch.setenv("VISAGENT_REAL_STATE", str(path))
    return path


def _xterm_scenario(sid: str = "test-xterm") -> RealScenario:
    def setup(world: RealWorld) -> None:
        world.launch(["xterm", "-geometry", "60x10+20+20"], package="xterm", wait_class="xterm")

    return RealScenario(sid, ("xterm",), "nothing", setup, lambda w: True, lambda w: iter(()), size=(800, 600))


def _alive(pid: int) -> bool:
    return procs.start_time(pid) is not None


def _records(state_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(state_dir.glob("world-*.json"))]


# -- displays, teardown, strays -------------------------------------------------------------------------------
def test_world_starts_its_own_display_and_close_leaves_nothing(state_dir):
    world = _xterm_scenario().make_world()
    token, xvfb = world.token, world.display.xvfb.pid
    try:
        assert world.display.name.startswith(":") and _alive(xvfb)
        marked = procs.marked_pids(token)
        assert len(marked) >= 3  # Xvfb, openbox, xterm: each carries the world's token
        assert [r["token"] for r in _records(state_dir)] == [token]
        assert "Openbox" in world.x("wmctrl", "-m")
        assert [w.title for w in world.windows()] == ["xterm"]
    finally:
        world.close()
    assert procs.marked_pids(token) == [] and not _alive(xvfb)
    assert _records(state_dir) == [] and not world.root.exists()
    world.close()  # twice is harmless


def test_second_scenario_while_one_holds_a_display_gets_its_own(state_dir):
    first = _xterm_scenario("first").make_world()
    try:
        second = _xterm_scenario("second").make_world()
        try:
            assert first.display.name != second.display.name
            assert {r["scenario"] for r in _records(state_dir)} == {"first", "second"}
            # each executor sees its own screen: typing in one leaves the other alone
            a, b = RealExecutor(first), RealExecutor(second)
            before_b = b.screenshot().image.tobytes()
            a.execute(Action(A.TYPE, text="echo only-on-first", space="screen"))
            assert b.screenshot().image.tobytes() == before_b
        finally:
            second.close()
        first.check_alive()  # closing the second world left the first running
        assert [w.title for w in first.windows()] == ["xterm"]
        assert [r["scenario"] for r in _records(state_dir)] == ["first"]
    finally:
        first.close()


def test_cleanup_ends_what_a_dead_owner_left_and_spares_live_worlds(state_dir):
    # a stray as a SIGKILLed visagent leaves it: marked, in its own session, no parent-death signal
    token = procs.new_token()
    stray = subprocess.Popen(["sleep", "300"], env={**os.environ, procs.TOKEN_VAR: token}, start_new_session=True)
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()
    procs.write_record(token, scenario="killed")
    record = state_dir / f"world-{token}.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "owner_pid": dead_owner.pid, "owner_start": 1}))
    live = _xterm_scenario("live").make_world()  # its start runs the cleanup
    try:
        stray.wait(timeout=10)  # ended by the cleanup
        assert procs.marked_pids(token) == [] and not record.exists()
        assert procs.cleanup_strays() == []  # the live world (owner: this process) is left alone
        live.check_alive()
    finally:
        live.close()
        if stray.poll() is None:
            stray.kill()


# -- programs that fail -----------------------------------------------------------------------------------------
def test_program_that_fails_to_start_is_one_line_and_tears_the_display_down(state_dir, monkeypatch):
    monkeypatch.setattr(procs, "new_token", lambda: "f00dfeedf00dfeed")

    def setup(world: RealWorld) -> None:
        world.launch(["sh", "-c", "echo cannot open the profile >&2; exit 3"], package="dash", name="broken",
                     wait_class="never-shown")

    sc = RealScenario("test-broken", ("sh",), "x", setup, lambda w: True, lambda w: iter(()), size=(640, 480))
    with pytest.raises(ProgramError) as info:
        sc.make_world()
    message = str(info.value)
    assert "\n" not in message and "broken failed to start" in message and "status 3" in message
    assert "cannot open the profile" in message
    assert procs.marked_pids("f00dfeedf00dfeed") == [] and _records(state_dir) == []


def test_missing_program_names_the_debian_package_and_the_setup_command():
    with pytest.raises(MissingProgram) as info:
        require("visagent-no-such-program", "visagent-pkg")
    assert str(info.value) == ("visagent-no-such-program is not installed (Debian package visagent-pkg); "
                               "run `bash scripts/system-deps.sh`")


def test_missing_chromium_through_the_cli_is_one_line_and_leaves_nothing(tmp_path, state_dir, visagent_bin):
    bin_dir = tmp_path / "bin"  # a PATH with the X server and window manager but no chromium
    bin_dir.mkdir()
    for tool in ("Xvfb", "openbox", "wmctrl", "xdotool", "setpriv"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(bin_dir), "PYTHONPATH": str(ROOT), "VISAGENT_REAL_STATE": str(state_dir)}
    done = subprocess.run([visagent_bin, "run", "--scenario", "chromium-todo-done", "--model", "oracle",
                           "--trace-dir", str(tmp_path / "runs")], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "visagent: error: chromium is not installed (Debian package chromium); run `bash scripts/system-deps.sh`"]
    assert _records(state_dir) == []


def _oracle_agent(world: RealWorld, sid: str, trace_root: Path, on_event=None):
    executor = RealExecutor(world)
    engine = RealOracleEngine(world.scenario, executor)
    config = AgentConfig(max_steps=world.scenario.max_steps + 2, auto_approve=True)  # alt+F4 is a risky action
    agent = Agent(engine, executor, config, trace_root=trace_root,
                  on_event=on_event, run_meta={"scenario": sid, "world": "real-desktop"})
    return agent, engine, executor


def test_program_crash_mid_run_ends_the_run_as_error_with_its_trace(tmp_path, state_dir):
    sc = get_real_scenario("chromium-shop-checkout")
    world = sc.make_world()
    token = world.token

    def crash_after_first_step(event) -> None:
        if isinstance(event, StepFinished) and event.record["step"] == 1:
            os.killpg(world.data["chromium"].proc.pid, signal.SIGKILL)
            world.data["chromium"].proc.wait(timeout=10)

    agent, _, executor = _oracle_agent(world, sc.id, tmp_path, crash_after_first_step)
    try:
        result = agent.run(sc.instruction)
    finally:
        executor.close()
    assert result.status == "error" and "chromium was killed by signal 9 during the run" in result.reason
    trace = read_trace(result.trace_dir)
    assert trace.status == "error" and len(trace.steps) >= 1
    assert (Path(result.trace_dir) / "final.png").is_file() and (Path(result.trace_dir) / "step_001.png").is_file()
    assert procs.marked_pids(token) == [] and _records(state_dir) == []


def test_unexpected_modal_window_is_closed_and_the_task_still_succeeds(tmp_path):
    sc = get_real_scenario("chromium-form-contact")
    world = sc.make_world()
    popped: list[int] = []

    def pop_up_after_first_step(event) -> None:
        if isinstance(event, StepFinished) and event.record["step"] == 1 and not popped:
            proc = procs.spawn(["xmessage", "-center", "A new version is available"], world.display.env(),
                               world.root / "xmessage.log")
            popped.append(proc.pid)
            from visagent.realworld.programs import wait_window

            wid = wait_window(world.display, title="xmessage", timeout_s=20)
            deadline = time.monotonic() + 10
            while world.active_window() != wid and time.monotonic() < deadline:
                time.sleep(0.05)  # the window manager gives the new window the focus

    agent, engine, executor = _oracle_agent(world, sc.id, tmp_path, pop_up_after_first_step)
    try:
        result = agent.run(sc.instruction)
        assert popped and engine.stream.dismissed == ["xmessage"]
        assert result.status == "success"
        assert sc.is_success(world), world.data["web"].api_state()["form"]
        assert not _alive(popped[0])  # alt+F4 closed it
        actions = [a["action"] for r in read_trace(result.trace_dir).steps for a in r["actions"]]
        keys = [a.get("keys") for r in read_trace(result.trace_dir).steps for a in r["actions"]]
        assert ["alt", "F4"] in keys and actions.count("type") == 2
    finally:
        executor.close()


# -- the CLI ------------------------------------------------------------------------------------------------------
def test_scenarios_list_real_desktop(capsys):
    from visagent.cli import main

    assert main(["scenarios", "list", "--world", "real-desktop", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [s.id for s in real_scenarios()]
    assert all(r["world"] == "real-desktop" for r in rows) and len(rows) >= 8
    assert main(["scenarios", "list", "--world", "real-desktop", "--tags", "drag"]) == 0
    out = capsys.readouterr().out
    assert "chromium-todo-drag" in out and "chromium-form-contact" not in out


def test_scenarios_solve_and_show_a_real_scenario(tmp_path, capsys):
    from visagent.cli import main

    assert main(["scenarios", "solve", "chromium-todo-done", "--out", str(tmp_path / "end.png")]) == 0
    out = capsys.readouterr().out
    assert "  1  left_click" in out and "success (world check: the scenario's goal is met (real state))" in out
    assert (tmp_path / "end.png").stat().st_size > 0
    assert main(["scenarios", "show", "chromium-todo-done", "--seed", "3", "--out", str(tmp_path / "s.png")]) == 2
    assert "it has no seeds" in capsys.readouterr().err


def test_real_ids_do_not_collide_with_sim_ids():
    from visagent.sim.scenarios import load_scenarios

    assert not {s.id for s in real_scenarios()} & {s.id for s in load_scenarios()}


def _wait_record(state_dir: Path, proc: subprocess.Popen, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        recs = [r for r in _records(state_dir) if r.get("display")]
        if recs:
            return recs[0]
        time.sleep(0.05)
    raise AssertionError(f"no world started (exit {proc.poll()})")


def _start_run(visagent_bin, tmp_path, state_dir, scenario="chromium-shop-checkout"):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VISAGENT_REAL_STATE": str(state_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([visagent_bin, "run", "--scenario", scenario, "--model", "oracle", "--trace-dir",
                             str(tmp_path / "runs")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)


def _wait_line(proc: subprocess.Popen, prefix: str) -> None:
    for line in proc.stdout:
        if line.startswith(prefix):
            return
    raise AssertionError(f"the run ended before printing {prefix!r}: {proc.stderr.read()[-500:]}")


def test_run_oracle_solves_and_leaves_nothing_running(tmp_path, state_dir, visagent_bin):
    proc = _start_run(visagent_bin, tmp_path, state_dir, "chromium-todo-done")
    record = _wait_record(state_dir, proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "world check: the scenario's goal is met (real state)" in out
    assert procs.marked_pids(record["token"]) == [] and _records(state_dir) == []
    trace = Path(out.strip().splitlines()[-1].removeprefix("trace: "))
    meta = json.loads((trace / "meta.json").read_text())
    assert meta["executor"]["name"] == "real-desktop" and meta["verdict"]["success"] is True


def test_ctrl_c_stops_the_run_and_tears_the_world_down(tmp_path, state_dir, visagent_bin):
    proc = _start_run(visagent_bin, tmp_path, state_dir)
    record = _wait_record(state_dir, proc)
    _wait_line(proc, "── step 1")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert procs.marked_pids(record["token"]) == [] and _records(state_dir) == []
    assert not _alive(int(record["xvfb_pid"]))


def test_sigkill_leaves_nothing_after_the_next_starts_cleanup(tmp_path, state_dir, visagent_bin):
    proc = _start_run(visagent_bin, tmp_path, state_dir)
    record = _wait_record(state_dir, proc)
    _wait_line(proc, "── step 1")
    proc.kill()
    proc.communicate(timeout=30)
    assert [r["token"] for r in _records(state_dir)] == [record["token"]]  # nobody could remove it
    assert Path(record["root"]).is_dir()  # the killed world's files are still there
    world = _xterm_scenario("next").make_world()  # the next start
    try:
        assert procs.marked_pids(record["token"]) == [] and not Path(record["root"]).exists()
        assert not _alive(int(record["xvfb_pid"]))
        assert not Path(f"/tmp/.X{record['display'].lstrip(':')}-lock").exists() or \
            Path(f"/tmp/.X{record['display'].lstrip(':')}-lock").read_text().strip() != str(record["xvfb_pid"])
        assert [r["scenario"] for r in _records(state_dir)] == ["next"]
    finally:
        world.close()


def test_eval_real_desktop_with_two_workers_each_on_its_own_display(tmp_path, capsys):
    from visagent.cli import main

    out_json = tmp_path / "results.json"
    rc = main(["eval", "--world", "real-desktop", "--model", "oracle", "--workers", "2", "--no-progress",
               "chromium-todo-done", "chromium-shop-drag", "--trace-dir", str(tmp_path / "runs"),
               "--json", str(out_json)])
    assert rc == 0, capsys.readouterr().err
    data = json.loads(out_json.read_text())
    why = [(e["scenario"], e["status"], e["reason"]) for e in data["episodes"] if not e["success"]]
    assert data["successes"] == 2 and data["episodes_total"] == 2 and data["workers"] == 2, why
    displays = {json.loads((Path(e["trace"]) / "meta.json").read_text())["executor"]["display"]
                for e in data["episodes"]}
    assert len(displays) == 2


def test_replay_cli_reports_per_step_differences_and_the_goal(tmp_path, capsys):
    from visagent.cli import main

    trace = tmp_path / "t"
    shutil.copytree(ROOT / "scenarios/real-desktop/traces/chromium-todo-drag", trace)
    assert main(["replay", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "ok   start" in out and "difference" in out and "(threshold 0.12)" in out
    assert "world check after the replay: the scenario's goal is met" in out
    assert main(["report", str(trace), "--out", str(tmp_path / "r.html")]) == 0
    assert "chromium-todo-drag" in (tmp_path / "r.html").read_text()
    assert main(["export", str(trace), "--out", str(tmp_path / "train.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert len(records) == 2 and records[0]["instruction"] == get_real_scenario("chromium-todo-drag").instruction
