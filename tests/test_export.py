"""`visagent export`: training records that rebuild the exact messages the agent sent and parse back."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.trace_helpers import damage_trace
from visagent.loop.agent import Agent, AgentConfig
from visagent.loop.coords import to_screen
from visagent.screen.base import ScreenGeometry
from visagent.core.errors import TraceError
from visagent.screen.simulated import SimExecutor
from visagent.traces.export import export_records
from visagent.loop.parsing import parse_output
from visagent.sim.scenarios import get_scenario
from visagent.loop.scripted import OracleEngine, ScriptedEngine
from visagent.core.trace import read_trace

TRACES = Path(__file__).resolve().parent.parent / "scenarios" / "traces"


def _oracle_run(root: Path, scenario_id: str, seed: int, **config):
    scenario = get_scenario(scenario_id)
    world = scenario.make_world(seed)
    executor = SimExecutor(world)
    engine = OracleEngine(scenario, lambda: world, geometry=executor.geometry)
    agent = Agent(engine, executor, AgentConfig(max_steps=scenario.max_steps, **config), trace_root=root,
                  run_meta={"scenario": scenario.id, "seed": seed, "split": scenario.split})
    result = agent.run(scenario.instruction_for(world))
    assert result.status == "success" and scenario.is_success(world)
    return result, engine


def _same_image(path: str, image: Image.Image) -> bool:
    with Image.open(path) as img:
        return ImageChops.difference(img.convert("RGB"), image.convert("RGB")).getbbox() is None


def _assert_same_messages(exported: list[dict], sent: list[dict]) -> None:
    assert len(exported) == len(sent)
    for got, want in zip(exported, sent):
        assert got["role"] == want["role"]
        if isinstance(want["content"], str):
            assert got["content"] == want["content"]
            continue
        assert len(got["content"]) == len(want["content"])
        for g, w in zip(got["content"], want["content"]):
            assert g["type"] == w["type"]
            if w["type"] == "image":
                assert isinstance(g["image"], str) and _same_image(g["image"], w["image"])
            else:
                assert g == w


@pytest.mark.parametrize("history_images", [4, 1])
def test_messages_are_exactly_what_the_agent_sent(tmp_path, history_images):
    result, engine = _oracle_run(tmp_path / "runs", "desktop-settings-language", 0, history_images=history_images)
    records = list(export_records([result.trace_dir]))
    steps = read_trace(result.trace_dir).steps
    assert len(records) == len(steps)  # every click and the final terminate (knowing when to stop is taught too)
    for record in records:
        call = engine.calls[record["meta"]["step"] - 1]
        _assert_same_messages(record["messages"], call["messages"])
        assert record["tools"] == call["tools"]
    if history_images == 1:  # older steps became one-line summaries in the prompt
        assert "Step 1: left_click" in json.dumps(records[-1]["messages"])


def test_a_model_trained_on_one_screenshot_gets_one_and_its_runs_export_that_way(tmp_path):
    """A checkpoint declaring `history_images` 1 caps the agent's window (4 asked), the trace records the window
    used, and an export rebuilds exactly those prompts; `history_images=1` re-renders a 4-window run into the same
    prompts the capped agent sent (the oracle is deterministic), and each record's meta says its window."""
    import dataclasses

    from visagent.core.errors import ConfigError
    from visagent.loop.prompting import count_images

    scenario = get_scenario("desktop-settings-language")
    world = scenario.make_world(0)
    executor = SimExecutor(world)
    engine = OracleEngine(scenario, lambda: world, geometry=executor.geometry)
    engine.info = dataclasses.replace(engine.info, history_images=1)
    agent = Agent(engine, executor, AgentConfig(max_steps=scenario.max_steps, history_images=4),
                  trace_root=tmp_path / "capped", run_meta={"scenario": scenario.id, "seed": 0, "split": scenario.split})
    capped = agent.run(scenario.instruction_for(world))
    assert capped.status == "success" and len(engine.calls) >= 3
    assert [count_images(c["messages"]) for c in engine.calls] == [1] * len(engine.calls)
    assert "Step 2: left_click" in json.dumps(engine.calls[-1]["messages"], default=str)
    assert read_trace(capped.trace_dir).meta["settings"]["history_images"] == 1
    records = list(export_records([capped.trace_dir]))
    for record, call in zip(records, engine.calls, strict=True):
        _assert_same_messages(record["messages"], call["messages"])
        assert record["meta"]["history_images"] == 1

    wide, _ = _oracle_run(tmp_path / "wide", "desktop-settings-language", 0, history_images=4)
    assert [r["meta"]["history_images"] for r in export_records([wide.trace_dir])] == [4] * len(records)
    assert max(count_images(r["messages"]) for r in export_records([wide.trace_dir])) > 1
    narrowed = list(export_records([wide.trace_dir], history_images=1))
    for record, call in zip(narrowed, engine.calls, strict=True):
        _assert_same_messages(record["messages"], call["messages"])
    with pytest.raises(ConfigError, match="history images must be at least 1"):
        next(export_records([wide.trace_dir], history_images=0))


def test_target_parses_back_to_the_recorded_action():
    traces = {read_trace(p).run_id: read_trace(p) for p in TRACES.iterdir()}
    records = list(export_records(sorted(TRACES.iterdir())))
    assert len(records) == sum(len(t.steps) for t in traces.values())
    for record in records:
        parsed = parse_output(record["target"], space="norm1000", platform=record["meta"]["platform"])
        assert [a.to_dict() for a in parsed.actions] == record["action"]["model"]
        step = traces[record["meta"]["run_id"]].steps[record["meta"]["step"] - 1]
        recorded = step["actions"][0]
        assert record["action"]["screen"][0].get("coordinate") == recorded.get("coordinate")
        if recorded.get("mapping"):  # the target is the point the model wrote, not a re-derived one
            assert record["action"]["model"][0]["coordinate"] == recorded["mapping"]["model"]
        assert record["target"] == step["model"]["answer"]  # the oracle's own turn, re-rendered identically


def test_resized_space_lands_on_the_executed_pixel(tmp_path):
    records = list(export_records([TRACES / "desktop-settings-wifi-off-s0"], space="resized"))
    assert records
    clicks = [r for r in records if r["action"]["screen"][0].get("coordinate")]
    assert clicks
    for record in clicks:
        assert record["meta"]["resized_size"] == [1280, 800]
        model = parse_output(record["target"], space="resized").actions[0]
        assert model.space == "resized"
        geometry = ScreenGeometry.simple(1280, 800)
        back = to_screen(model, geometry, resized_size=tuple(record["meta"]["resized_size"]))
        assert list(back.coordinate) == record["action"]["screen"][0]["coordinate"]
        assert "1280x800" in record["tools"][0]["function"]["description"]


def test_history_lists_earlier_steps(tmp_path):
    records = list(export_records([TRACES / "desktop-settings-language-s0"]))
    assert [len(r["history"]) for r in records] == list(range(len(records)))
    assert records[1]["history"][0].startswith("Step 1: left_click [")


def _failed_run(root: Path) -> Path:
    scenario = get_scenario("desktop-settings-wifi-off")
    world = scenario.make_world(0)
    click = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
             "<parameter=coordinate>\n[500, 500]\n</parameter>\n</function>\n</tool_call>")
    give_up = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
               "<parameter=status>\nfailure\n</parameter>\n</function>\n</tool_call>")
    agent = Agent(ScriptedEngine([click, give_up]), SimExecutor(world), AgentConfig(max_steps=4), trace_root=root,
                  run_meta={"scenario": scenario.id, "seed": 0})
    result = agent.run(scenario.instruction_for(world))
    assert result.status == "failure"
    return result.trace_dir


def test_only_successful_runs_unless_asked(tmp_path):
    failed = _failed_run(tmp_path / "runs")
    assert list(export_records([failed])) == []
    kept = list(export_records([failed], include_failed=True))
    assert len(kept) == 2 and kept[0]["meta"]["status"] == "failure"
    assert kept[0]["action"]["model"][0]["coordinate"] == [500, 500]


def test_split_filter_keeps_heldout_runs_out(tmp_path):
    result, _ = _oracle_run(tmp_path / "runs", "phone-settings-device-name", 0)
    assert get_scenario("phone-settings-device-name").split == "heldout"
    assert list(export_records([result.trace_dir], splits=["train"])) == []
    assert list(export_records([result.trace_dir], splits=["heldout"]))


def test_cli_writes_relative_paths_that_resolve(tmp_path, visagent_bin):
    out = tmp_path / "data" / "train.jsonl"
    proc = subprocess.run([visagent_bin, "export", str(TRACES), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == sum(len(read_trace(p).steps) for p in TRACES.iterdir())
    for line in lines:
        record = json.loads(line)
        assert not Path(record["screenshot"]).is_absolute()
        assert (out.parent / record["screenshot"]).is_file()
        images = [part["image"] for m in record["messages"] if isinstance(m["content"], list)
                  for part in m["content"] if part["type"] == "image"]
        assert images[-1] == record["screenshot"]
        assert all((out.parent / p).is_file() for p in images)
    assert f"wrote {len(lines)} records from 3 run(s)" in proc.stderr


@pytest.mark.parametrize("damage, message", [
    ("actions", "trace.jsonl line 2: field 'actions': expected a list, got an object"),
    ("escape", "trace.jsonl line 2: field 'screenshot': not a plain file name inside the trace"),
    ("png", "step_002.png of step 2 is missing"),
    ("meta", "no meta.json"),
])
def test_cli_damaged_trace_is_one_line_error_and_keeps_old_output(tmp_path, visagent_bin, damage, message):
    trace = tmp_path / "t"
    shutil.copytree(TRACES / "desktop-settings-wifi-off-s0", trace)
    damage_trace(trace, damage)
    out = tmp_path / "data.jsonl"
    out.write_text("earlier export\n")
    proc = subprocess.run([visagent_bin, "export", str(trace), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert out.read_text() == "earlier export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_killed_run_beside_good_ones_is_skipped_not_fatal(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    good = shutil.copytree(TRACES / "desktop-settings-wifi-off-s0", runs / "good")
    killed = shutil.copytree(TRACES / "desktop-settings-language-s0", runs / "killed")
    meta = json.loads((killed / "meta.json").read_text())
    meta.update(status="running", ended_at=None)  # as a kill -9 leaves it: meta never finished, a torn line
    meta.pop("verdict", None)  # the world's verdict is written after a run ends (evaluate.py), so a killed one has none
    (killed / "meta.json").write_text(json.dumps(meta))
    data = (killed / "trace.jsonl").read_bytes()
    (killed / "trace.jsonl").write_bytes(data[: len(data) - 30])
    records = list(export_records([good, killed]))
    assert {r["meta"]["run_id"] for r in records} == {read_trace(good).run_id}
    # kept on request: its torn last line is left out as the trace format says, its complete steps export
    kept = list(export_records([good, killed], include_failed=True))
    assert {r["meta"]["run_id"] for r in kept} == {read_trace(good).run_id, read_trace(killed).run_id}
    torn = read_trace(killed)
    assert torn.torn is not None and torn.damage == []
    assert max(r["meta"]["step"] for r in kept if r["meta"]["run_id"] == torn.run_id) <= len(torn.steps)


def test_structured_tool_calls_from_a_server_are_replayed_in_the_messages(tmp_path):
    """A server that answers with OpenAI `tool_calls` (vLLM's tool parser): later prompts carry them, and so
    do the exported messages (a scripted stub server on loopback plays the model)."""
    from engine import load_engine
    from tests.fixtures.openai_stub import OpenAIStub, Reply, chat_body

    def call(arguments):
        return [{"id": "call_1", "type": "function",
                 "function": {"name": "computer_use", "arguments": json.dumps(arguments)}}]

    replies = [chat_body(None, tool_calls=call({"action": "left_click", "coordinate": [500, 500]}),
                         finish="tool_calls"),
               chat_body(None, tool_calls=call({"action": "terminate", "status": "success"}), finish="tool_calls")]

    def reply(request):
        if request["path"].endswith("/models"):
            return Reply(body={"object": "list", "data": [{"id": "stub-model"}]})
        return Reply(body=replies.pop(0))

    class Recording:  # what the agent handed the engine, call by call
        def __init__(self, engine):
            self.engine, self.info, self.calls = engine, engine.info, []

        def generate(self, messages, **kw):
            self.calls.append(list(messages))
            return self.engine.generate(messages, **{k: v for k, v in kw.items() if k not in ("on_delta", "cancel")})

        def close(self):
            self.engine.close()

    stub = OpenAIStub(reply)
    try:
        engine = Recording(load_engine(stub.url))
        scenario = get_scenario("desktop-settings-wifi-off")
        world = scenario.make_world(0)
        run = Agent(engine, SimExecutor(world), AgentConfig(max_steps=3), trace_root=tmp_path / "runs",
                    run_meta={"scenario": scenario.id, "seed": 0}).run(scenario.instruction_for(world))
    finally:
        stub.close()
    assert run.status == "success" and len(engine.calls) == 2
    assert read_trace(run.trace_dir).steps[0]["model"]["tool_calls"]
    records = list(export_records([run.trace_dir]))
    _assert_same_messages(records[1]["messages"], engine.calls[1])
    assistant = [m for m in records[1]["messages"] if m["role"] == "assistant"]
    assert assistant[0]["tool_calls"] == engine.calls[1][2]["tool_calls"]


def test_the_worlds_verdict_decides_what_is_exported(tmp_path):
    """eval writes the world's verdict into meta.json; export trusts it over the model's own claim."""
    from visagent.traces.evaluate import evaluate, oracle_factory

    scenario = get_scenario("desktop-settings-wifi-off")
    claim = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
             "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")
    liar = evaluate([scenario], lambda sc, ex: ScriptedEngine([claim]), seeds=[0], trace_dir=tmp_path / "a")
    cut = evaluate([scenario], oracle_factory, seeds=[0], max_steps=2, trace_dir=tmp_path / "b")
    lied, short = liar.episodes[0], cut.episodes[0]
    assert (lied.status, lied.success) == ("success", False)
    assert (short.status, short.success) == ("max_steps", True)  # goal reached, no step left to terminate
    assert read_trace(lied.trace).meta["verdict"] == {"success": False, "by": "scenario.is_success", "side_effects": []}
    assert list(export_records([lied.trace])) == []
    kept = list(export_records([short.trace]))
    assert len(kept) == 2 and all(r["meta"]["success"] and r["meta"]["status"] == "max_steps" for r in kept)
    skipped = []
    assert list(export_records([lied.trace], on_skip=lambda p, why: skipped.append(why))) == []
    assert skipped == ["not successful (run status success, the world check failed)"]


def test_thinking_runs_keep_the_thought_beside_the_target_and_messages_stay_exact(tmp_path):
    result, engine = _oracle_run(tmp_path / "runs", "desktop-settings-wifi-off", 0, thinking=True)
    records = list(export_records([result.trace_dir]))
    assert records and all(r["thinking"] == "I follow the known solution one action at a time." for r in records)
    assert all("<think>" not in r["target"] and "</think>" not in r["target"] for r in records)
    for record in records:
        _assert_same_messages(record["messages"], engine.calls[record["meta"]["step"] - 1]["messages"])


@pytest.mark.parametrize("where, message", [
    ("under_a_file", "which is a file, not a directory"),
    ("a_directory", "is a directory; give a file such as"),
    ("unwritable", "cannot create files in /sys"),  # sysfs refuses new files even to root
])
def test_cli_bad_out_path_is_one_line_error_before_any_work(tmp_path, visagent_bin, where, message):
    (tmp_path / "notes.txt").write_text("a file\n")
    out = {"under_a_file": tmp_path / "notes.txt" / "data" / "train.jsonl", "a_directory": tmp_path,
           "unwritable": Path("/sys/visagent-train.jsonl")}[where]
    proc = subprocess.run([visagent_bin, "export", str(TRACES), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("visagent: error: --out ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no temporary file, no folder


def test_cli_deleted_meta_json_is_the_error_report_gives(tmp_path, visagent_bin):
    trace = tmp_path / "t"
    shutil.copytree(TRACES / "desktop-settings-wifi-off-s0", trace)
    (trace / "meta.json").unlink()
    report = subprocess.run([visagent_bin, "report", str(trace)], capture_output=True, text=True)
    export = subprocess.run([visagent_bin, "export", str(trace), "--out", str(tmp_path / "d.jsonl")],
                            capture_output=True, text=True)
    assert report.returncode == export.returncode == 2
    assert f"{trace} has no meta.json; it is not a visagent trace" in export.stderr
    assert export.stderr == report.stderr and export.stderr.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()  # a folder that is neither a trace nor holds any
    none = subprocess.run([visagent_bin, "export", str(empty), "--out", str(tmp_path / "d.jsonl")],
                          capture_output=True, text=True)
    assert none.returncode == 2 and "holds no trace directories" in none.stderr and none.stderr.count("\n") == 1


def test_sim_clicks_record_the_element_they_hit_and_records_carry_its_box(tmp_path):
    """The sim knows what each click landed on (ExecResult.target); a trajectory record of a click step gets that
    element's box in screenshot pixels (what the pointer loss supervises), other steps none. A HiDPI screen
    (scale 2: screenshots twice the input size) doubles the box, as it doubles the click's pixel."""
    scenario = get_scenario("desktop-settings-wifi-off")
    for scale in (1.0, 2.0):
        world = scenario.make_world(0)
        executor = SimExecutor(world, scale=scale)
        engine = OracleEngine(scenario, lambda: world, geometry=executor.geometry)
        result = Agent(engine, executor, AgentConfig(max_steps=scenario.max_steps), trace_root=tmp_path / str(scale),
                       run_meta={"scenario": scenario.id, "seed": 0, "split": scenario.split}).run(
            scenario.instruction_for(world))
        steps = read_trace(result.trace_dir).steps
        clicked = [s for s in steps if (s.get("result") or {}).get("target")]
        assert clicked, "the oracle clicks at least once"
        for step in clicked:
            x, y = step["actions"][0]["coordinate"]
            x1, y1, x2, y2 = step["result"]["target"]["bbox"]
            assert x1 <= x < x2 and y1 <= y < y2 and step["result"]["target"]["label"]
        records = list(export_records([result.trace_dir], profile="compact"))
        boxed = [r for r in records if "bbox" in r["meta"]]
        assert len(boxed) == len(clicked)
        for record in boxed:
            x, y = record["action"]["screen"][0]["coordinate"]
            bx1, by1, bx2, by2 = record["meta"]["bbox"]
            assert bx1 <= x * scale <= bx2 and by1 <= y * scale <= by2
            assert record["meta"]["image_size"] == [round(1280 * scale), round(800 * scale)]
        assert all(r["action"]["model"][0]["action"] != "left_click" for r in records if "bbox" not in r["meta"])


def test_cli_export_of_a_folder_skips_and_reports_a_damaged_trace(tmp_path, visagent_bin):
    """Issue 42: one bad trace in `export DIR` aborted the whole folder; now it is left out with one line."""
    runs = tmp_path / "runs"
    runs.mkdir()
    good = shutil.copytree(TRACES / "desktop-settings-wifi-off-s0", runs / "a-good")
    bad = shutil.copytree(TRACES / "desktop-settings-language-s0", runs / "b-bad")
    damage_trace(bad, "actions")
    torn = shutil.copytree(TRACES / "phone-settings-brightness-s1", runs / "c-torn")
    damage_trace(torn, "torn")  # its last line is cut: left out, the run's steps still export
    out = tmp_path / "data.jsonl"
    proc = subprocess.run([visagent_bin, "export", str(runs), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == (f"visagent: skipped {bad}: trace.jsonl line 2: field 'actions': expected a list, got an "
                        "object; fix or leave out this trace")
    assert "left out: 1 damaged" in lines[1] and "from 2 run(s)" in lines[1] and "Traceback" not in proc.stderr
    run_ids = {json.loads(line)["meta"]["run_id"] for line in out.read_text().splitlines()}
    assert run_ids == {read_trace(good).run_id, read_trace(torn).run_id}
    named = subprocess.run([visagent_bin, "export", str(bad), "--out", str(tmp_path / "d2.jsonl")],
                           capture_output=True, text=True)
    assert named.returncode == 2 and "field 'actions'" in named.stderr and named.stderr.count("\n") == 1
