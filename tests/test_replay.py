"""`visagent replay`: recorded sim traces re-execute to the same screens; a changed app is caught at its step."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.trace_helpers import damage_trace
from visagent.core.errors import TraceError
from visagent.screen.simulated import SimExecutor
from visagent.traces.replay import DEFAULT_THRESHOLD, replay_trace, screen_difference, step_actions
from visagent.sim.scenarios import get_scenario
from visagent.core.trace import read_trace

TRACES = Path(__file__).resolve().parent.parent / "scenarios" / "traces"
RECORDED = sorted(p for p in TRACES.iterdir() if (p / "meta.json").is_file())
RERECORD = "if the sim's look changed on purpose, re-record with: .venv/bin/python scripts/record_traces.py"


def _copy(trace: Path, tmp_path: Path) -> Path:
    target = tmp_path / trace.name
    shutil.copytree(trace, target)
    return target


def test_there_are_recorded_traces():
    assert 2 <= len(RECORDED) <= 4


@pytest.mark.parametrize("trace", RECORDED, ids=[p.name for p in RECORDED])
def test_recorded_trace_replays_exactly(trace, tmp_path):
    result = replay_trace(trace, out_dir=tmp_path)
    assert result.ok, f"{result.message}; {RERECORD}"
    steps = read_trace(trace).steps
    assert len(result.comparisons) == len(steps) + 1  # every step's screen and final.png
    assert all(c.difference == 0.0 for c in result.comparisons)  # the virtual clock makes it exact
    assert result.actions_executed == sum(
        1 for r in steps for a in step_actions(r) if not a.is_final and a.action != "call_user")
    assert not any(tmp_path.iterdir())  # nothing saved when nothing diverged


def test_other_seed_diverges_at_the_start_with_images_saved(tmp_path):
    trace = TRACES / "desktop-settings-language-s0"
    meta = read_trace(trace).meta
    world = get_scenario(meta["executor"]["scenario"]).make_world(meta["executor"]["seed"] + 1)
    result = replay_trace(trace, executor=SimExecutor(world), out_dir=tmp_path)
    assert not result.ok and result.divergence is not None
    div = result.divergence
    assert div.step == 0 and div.expected == "step_001.png" and div.difference > DEFAULT_THRESHOLD
    for path in (div.recorded_path, div.replayed_path, div.diff_path):
        with Image.open(path) as img:
            assert img.size == (1280, 800)
    assert len(result.comparisons) == 1  # it stops at the first divergence


def _first_step_showing(trace: Path, section: str) -> int:
    """Independently of replay: the step after whose actions the Settings app shows `section`."""
    meta = read_trace(trace).meta
    world = get_scenario(meta["executor"]["scenario"]).make_world(meta["executor"]["seed"])
    executor = SimExecutor(world)
    settings = world.apps["settings"]
    assert settings.section != section, "the recorded run must start on another section"
    for record in read_trace(trace).steps:
        for action in step_actions(record):
            if not action.is_final:
                executor.execute(action)
                executor.sleep(2.0)  # let animations finish (the loop settles on the virtual clock)
        if settings.section == section:
            return int(record["step"])
    raise AssertionError(f"the trace never opens {section}")


def test_moved_widgets_diverge_at_the_step_that_reveals_them(tmp_path, monkeypatch):
    from visagent.sim.apps.settings import SettingsApp

    trace = TRACES / "desktop-settings-language-s0"
    expected_step = _first_step_showing(trace, "General")
    assert expected_step >= 1
    original = SettingsApp.layout

    def shifted(self, rect):  # the General page's controls move 60 px down: the recorded clicks miss them
        if self.section == "General":
            x1, y1, x2, y2 = rect
            original(self, (x1, y1, x2, y2))
            for key in self.section_keys("General"):
                widget = self.controls[key]
                r = widget.rect
                widget.place((r[0], r[1] + 60, r[2], r[3] + 60))
            return
        original(self, rect)

    monkeypatch.setattr(SettingsApp, "layout", shifted)
    result = replay_trace(trace, out_dir=tmp_path)
    assert not result.ok
    assert result.divergence.step == expected_step
    assert all(c.ok for c in result.comparisons[:-1]) and len(result.comparisons) == expected_step + 1


def test_screen_difference_sees_a_small_moved_button_but_not_noise():
    base = Image.new("RGB", (1280, 800), (240, 240, 240))
    a, b, noisy = base.copy(), base.copy(), base.copy()
    ImageDraw.Draw(a).rectangle((600, 380, 680, 410), fill=(30, 90, 200))
    ImageDraw.Draw(b).rectangle((600, 440, 680, 470), fill=(30, 90, 200))
    ImageDraw.Draw(noisy).rectangle((600, 380, 680, 410), fill=(30, 90, 200))
    ImageDraw.Draw(noisy).point([(x, 5) for x in range(0, 1280, 7)], fill=(200, 200, 200))
    assert screen_difference(a, a) == 0.0
    assert screen_difference(a, b) > DEFAULT_THRESHOLD
    assert 0.0 < screen_difference(a, noisy) < DEFAULT_THRESHOLD
    assert screen_difference(a, a.resize((640, 400))) == 1.0


def test_cli_exit_codes_match_and_diverge(tmp_path, visagent_bin):
    trace = _copy(TRACES / "desktop-settings-wifi-off-s0", tmp_path)
    ok = subprocess.run([visagent_bin, "replay", str(trace), "--out", str(tmp_path / "o1")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "replay matched" in ok.stdout
    # the recording says step 2 looked like step 1 did: replay must flag the screen after step 1
    shutil.copy(trace / "step_001.png", trace / "step_002.png")
    bad = subprocess.run([visagent_bin, "replay", str(trace), "--out", str(tmp_path / "o2")],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "diverged after step 1's actions" in bad.stdout and "step_002.png" in bad.stdout
    assert (tmp_path / "o2" / "step001_diff.png").is_file()


@pytest.mark.parametrize("damage, message", [
    ("actions", "trace.jsonl line 2: field 'actions': expected a list, got an object"),
    ("escape", "trace.jsonl line 2: field 'screenshot': not a plain file name inside the trace"),
    ("png", "step_002.png is missing"),
    ("meta", "no meta.json"),
])
def test_cli_damaged_trace_is_one_line_error(tmp_path, visagent_bin, damage, message):
    trace = _copy(TRACES / "desktop-settings-wifi-off-s0", tmp_path)
    damage_trace(trace, damage)
    proc = subprocess.run([visagent_bin, "replay", str(trace)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_cli_torn_last_line_of_a_finished_run_is_left_out_and_said(tmp_path, visagent_bin):
    """docs/trace-format.md: a torn last line is reported and ignored (issue 42: replay exited 2 on it)."""
    trace = _copy(TRACES / "desktop-settings-wifi-off-s0", tmp_path)
    damage_trace(trace, "torn")  # the run_finished line is cut: every step is still there
    proc = subprocess.run([visagent_bin, "replay", str(trace)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "replay matched" in proc.stdout and "ignored trace.jsonl line 5: incomplete last line" in proc.stdout


def test_a_screenshot_link_leading_out_of_the_trace_is_refused(tmp_path):
    """A plain name that is a symlink to a file outside is never read, compared or copied into the trace."""
    trace = _copy(TRACES / "desktop-settings-wifi-off-s0", tmp_path)
    outside = tmp_path / "outside.png"
    (trace / "step_002.png").rename(outside)
    (trace / "step_002.png").symlink_to(outside)
    with pytest.raises(TraceError, match="step_002.png: leads outside the trace directory"):
        replay_trace(trace)
    assert not (trace / "replay").exists()


def test_divergence_after_a_human_takeover_says_so(tmp_path):
    import json

    trace = _copy(TRACES / "desktop-settings-wifi-off-s0", tmp_path)
    lines = (trace / "trace.jsonl").read_text().splitlines()
    first_step = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "step")
    lines.insert(first_step + 1, json.dumps({"type": "control", "t": 0, "control": "takeover", "note": ""}))
    (trace / "trace.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(trace / "step_001.png", trace / "step_002.png")  # what the human did is not replayable
    result = replay_trace(trace, out_dir=tmp_path / "out")
    assert result.divergence.step == 1 and result.divergence.human
    assert "a human had control there" in result.message


def test_bad_threshold_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="within 0..1"):
        replay_trace(TRACES / "desktop-settings-wifi-off-s0", threshold=2.0)


def test_trace_error_for_missing_final_png(tmp_path):
    trace = _copy(TRACES / "desktop-settings-wifi-off-s0", tmp_path)
    (trace / "final.png").unlink()
    with pytest.raises(TraceError, match="final.png is missing"):
        replay_trace(trace)



KILLED_AGENT = """
import sys
from pathlib import Path
from visagent.loop.agent import Agent, AgentConfig
from visagent.screen.simulated import SimExecutor
from visagent.sim.scenarios import get_scenario
from visagent.loop.scripted import OracleEngine

scenario = get_scenario("desktop-settings-language")
world = scenario.make_world(0)
executor = SimExecutor(world)


class StallsAtStep4(OracleEngine):
    def generate(self, messages, **kw):
        if len(self.calls) == 3:  # steps 1-3 are recorded, step_004.png is saved: now wait to be killed
            print("stalled", flush=True)
            sys.stdin.read()
        return super().generate(messages, **kw)


engine = StallsAtStep4(scenario, lambda: world, geometry=executor.geometry)
Agent(engine, executor, AgentConfig(max_steps=scenario.max_steps), trace_root=Path(sys.argv[1]),
      run_meta={"scenario": scenario.id, "seed": 0, "split": scenario.split}).run(scenario.instruction_for(world))
"""


@pytest.fixture
def killed_run(tmp_path) -> Path:
    """A real Agent run (oracle on the sim) SIGKILLed while the model worked on step 4."""
    import signal
    import sys

    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_AGENT, str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd=TRACES.parent.parent)
    try:
        assert proc.stdout.readline().strip() == b"stalled", "the agent run ended before step 4"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (trace,) = root.iterdir()
    loaded = read_trace(trace)
    assert loaded.status == "running" and not (trace / "final.png").exists()
    assert [s["step"] for s in loaded.steps] == [1, 2, 3] and (trace / "step_004.png").is_file()
    return trace


def test_killed_run_replays_its_recorded_steps(killed_run, tmp_path):
    result = replay_trace(killed_run, out_dir=tmp_path / "out")
    assert result.ok and result.cut_short and result.uncompared is None, result.message
    # the screen after step 3 is checked against the step_004.png the loop saved before it was killed
    assert [(c.step, c.expected) for c in result.comparisons] == [
        (0, "step_001.png"), (1, "step_002.png"), (2, "step_003.png"), (3, "step_004.png")]
    assert all(c.difference == 0.0 for c in result.comparisons)
    assert "cut short" in result.message and result.to_dict()["cut_short"] is True
    shutil.copy(killed_run / "step_002.png", killed_run / "step_004.png")  # that last comparison is real
    bad = replay_trace(killed_run, out_dir=tmp_path / "bad")
    assert not bad.ok and bad.divergence.step == 3 and bad.divergence.expected == "step_004.png"


def test_cli_killed_run_says_the_last_action_has_nothing_to_compare(killed_run, tmp_path, visagent_bin):
    (killed_run / "step_004.png").unlink()  # as a kill during step 4's capture leaves it
    proc = subprocess.run([visagent_bin, "replay", str(killed_run), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "replay matched: 3 screens" in proc.stdout and "cut short" in proc.stdout
    assert "the screen after step 3's actions was never recorded (no step_004.png)" in proc.stdout
    as_json = subprocess.run([visagent_bin, "replay", str(killed_run), "--json"], capture_output=True, text=True)
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and data["cut_short"] is True and "step 3's actions" in data["uncompared"]
    with (killed_run / "trace.jsonl").open("ab") as fh:
        fh.write(b'{"type": "step", "step": 4, "scre')  # a kill in the middle of writing step 4's record
    torn = subprocess.run([visagent_bin, "replay", str(killed_run), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert torn.returncode == 0 and "replay matched: 3 screens" in torn.stdout, torn.stdout + torn.stderr


# -- on a real X desktop: a sim app in a Tk window on Xvfb, driven through pyautogui -----------------------


class _TkApp:
    """The sim scenario's world in a real Tk window filling a 1280x800 Xvfb screen."""

    def __init__(self, tmp_path: Path, scenario: str, seed: int) -> None:
        import os
        import sys
        import time

        self.state_file = tmp_path / f"state-{scenario}-{seed}-{time.monotonic_ns()}.json"
        subprocess.run(["xdotool", "mousemove", "700", "60"], check=True)  # same pointer spot every time
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visagent.sim.tkhost", "--scenario", scenario, "--seed", str(seed),
             "--state-file", str(self.state_file), "--geometry", "+0+0", "--zoom", "1"],
            cwd=TRACES.parent.parent, env=dict(os.environ))
        end = time.monotonic() + 20
        while not self.state_file.exists():
            assert time.monotonic() < end and self.proc.poll() is None, "the Tk host did not start"
            time.sleep(0.05)
        time.sleep(0.5)  # first paint

    def state(self) -> dict:
        import json

        return json.loads(self.state_file.read_text(encoding="utf-8"))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def x1280(monkeypatch):
    from tests.fixtures.xserver import start_xvfb

    server = start_xvfb(1280, 800)
    monkeypatch.setenv("DISPLAY", server.display)
    yield server
    server.stop()


@pytest.mark.x11
def test_desktop_trace_replays_on_a_real_x_screen_and_catches_another_world(x1280, tmp_path):
    from visagent.loop.agent import Agent, AgentConfig
    from visagent.screen.desktop import DesktopExecutor
    from visagent.loop.scripted import ScriptedEngine
    from visagent.screen.settle import SettleDetector

    sim = read_trace(TRACES / "desktop-settings-wifi-off-s0")
    answers = [s["model"]["answer"] for s in sim.steps]  # the oracle's turns, replayed by a scripted engine

    def desktop() -> DesktopExecutor:  # generous settling: the Tk host renders in real time on a busy machine
        return DesktopExecutor(settle=SettleDetector(consecutive=4, interval_s=0.05, wait_for_change_s=1.0))

    app = _TkApp(tmp_path, "desktop-settings-wifi-off", 0)
    try:
        executor = desktop()
        run = Agent(ScriptedEngine(answers), executor, AgentConfig(max_steps=len(answers)),
                    trace_root=tmp_path / "runs", run_meta={"scenario": "desktop-settings-wifi-off", "seed": 0}).run(
                        sim.meta["task"])
        executor.close()
        assert run.status == "success" and app.state()["settings"]["wifi"] is False
    finally:
        app.close()
    assert read_trace(run.trace_dir).meta["executor"]["name"] == "desktop"

    app = _TkApp(tmp_path, "desktop-settings-wifi-off", 0)  # a fresh app, as the recording started
    try:
        executor = desktop()
        result = replay_trace(run.trace_dir, executor=executor, out_dir=tmp_path / "same")
        executor.close()
        assert result.ok, result.message
        assert result.actions_executed == len(answers) - 1 and app.state()["settings"]["wifi"] is False
    finally:
        app.close()

    app = _TkApp(tmp_path, "desktop-settings-wifi-off", 1)  # another seed: another layout
    try:
        executor = desktop()
        result = replay_trace(run.trace_dir, executor=executor, out_dir=tmp_path / "other")
        executor.close()
        assert not result.ok and result.divergence.step == 0
    finally:
        app.close()


def test_hidpi_sim_run_replays_on_a_rebuilt_hidpi_world(tmp_path):
    """A run on a 2x screen (screenshots 2560x1600, clicks in 1280x800 logical pixels) replays from meta alone."""
    from visagent.loop.agent import Agent, AgentConfig
    from visagent.loop.scripted import OracleEngine

    scenario = get_scenario("desktop-settings-wifi-off")
    executor = SimExecutor(scenario.make_world(3), scale=2.0)
    engine = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)
    run = Agent(engine, executor, AgentConfig(max_steps=scenario.max_steps), trace_root=tmp_path / "runs",
                run_meta={"scenario": scenario.id, "seed": 3}).run(scenario.instruction_for(executor.world))
    assert run.status == "success" and scenario.is_success(executor.world)
    assert read_trace(run.trace_dir).image(1).size == (2560, 1600)
    result = replay_trace(run.trace_dir, out_dir=tmp_path / "replay")  # executor rebuilt with scale 2 from meta
    assert result.ok and all(c.difference == 0.0 for c in result.comparisons), result.message


# -- on an Android phone: the FAKE adb (tests/fakes/adb) emulating a phone from the sim world ---------------


@pytest.mark.slow
def test_sim_trace_replays_on_a_phone_through_adb_and_catches_another_world(tmp_path, monkeypatch, visagent_bin):
    """`--executor android`: the recorded sim phone run, re-executed over adb, gives the same screens."""
    import importlib.machinery
    import importlib.util
    import os
    import sys

    fakes = Path(__file__).resolve().parent / "fakes"
    loader = importlib.machinery.SourceFileLoader("fake_adb_for_replay", str(fakes / "adb"))
    fake = importlib.util.module_from_spec(importlib.util.spec_from_loader("fake_adb_for_replay", loader))
    loader.exec_module(fake)
    monkeypatch.setenv("PATH", f"{fakes}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_TICK_S", "1.0")  # each adb call = 1 s of phone time: deterministic
    for var in ("FAKE_ADB_DEVICES", "FAKE_ADB_IME", "FAKE_ADB_DISCONNECT_AFTER", "FAKE_ADB_OFFLINE_AFTER",
                "FAKE_ADB_SLOW_S", "ANDROID_SERIAL"):
        monkeypatch.delenv(var, raising=False)
    trace = TRACES / "phone-settings-brightness-s1"
    meta = read_trace(trace).meta
    scenario = get_scenario(meta["executor"]["scenario"])

    def replay_on_phone(name: str, seed: int) -> subprocess.CompletedProcess:
        monkeypatch.setenv("FAKE_ADB_DIR", str(tmp_path / name))
        monkeypatch.setenv("FAKE_ADB_SCENARIO", scenario.id)
        monkeypatch.setenv("FAKE_ADB_SEED", str(seed))
        return subprocess.run([visagent_bin, "replay", str(trace), "--executor", "android", "--out",
                               str(tmp_path / f"{name}-out")], capture_output=True, text=True, timeout=300)

    same = replay_on_phone("same", meta["executor"]["seed"])
    assert same.returncode == 0, same.stdout + same.stderr
    assert scenario.is_success(fake.Phone(tmp_path / "same" / "emulator-5554").world)  # the phone really changed
    other = replay_on_phone("other", meta["executor"]["seed"] + 1)
    assert other.returncode == 1 and "diverged after the start" in other.stdout, other.stdout + other.stderr


def test_cli_replays_a_folder_of_traces_as_one_regression_suite(tmp_path, visagent_bin):
    suite = tmp_path / "traces"
    shutil.copytree(TRACES, suite)
    changed = suite / "desktop-settings-wifi-off-s0"
    shutil.copy(changed / "step_001.png", changed / "step_002.png")
    proc = subprocess.run([visagent_bin, "replay", str(suite), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{len(RECORDED) - 1} of {len(RECORDED)} traces matched; 1 diverged" in proc.stdout
    assert f"DIFF {changed}" in proc.stdout
    assert (tmp_path / "out" / changed.name / "step001_diff.png").is_file()


def test_cli_deleted_meta_json_is_the_error_report_gives(tmp_path, visagent_bin):
    trace = _copy(TRACES / "desktop-settings-wifi-off-s0", tmp_path)
    (trace / "meta.json").unlink()
    report = subprocess.run([visagent_bin, "report", str(trace)], capture_output=True, text=True)
    replay = subprocess.run([visagent_bin, "replay", str(trace)], capture_output=True, text=True)
    assert report.returncode == replay.returncode == 2
    assert f"{trace} has no meta.json; it is not a visagent trace" in replay.stderr
    assert replay.stderr == report.stderr and replay.stderr.count("\n") == 1
