"""Trace writing and reading: atomic meta, one fsynced line per record, damage reported, never raised."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image

from visagent.core.errors import TraceError
from visagent.core.trace import FORMAT, TraceWriter, list_traces, read_trace


def make_trace(root, task="t", steps=2, finish=True):
    w = TraceWriter(root, {"task": task, "model": {"spec": "x"}})
    w.append({"type": "run_started"})
    for n in range(1, steps + 1):
        w.save_image(f"step_{n:03d}.png", Image.new("RGB", (8, 6), (n * 40, 0, 0)))
        w.append({"type": "step", "step": n, "actions": []})
    if finish:
        w.save_image("final.png", Image.new("RGB", (8, 6), (0, 99, 0)))
        w.finish("success", "done\nwith a second line", steps, None)
    return w


def test_written_trace_reads_back_with_meta_records_and_images(tmp_path):
    w = make_trace(tmp_path, task="turn on dark mode", steps=2)
    trace = read_trace(w.path)
    assert trace.problems == []
    assert trace.meta["format"] == FORMAT and trace.meta["task"] == "turn on dark mode"
    assert trace.meta["status"] == "success" and trace.meta["reason"] == "done with a second line"
    assert trace.meta["ended_at"] and trace.meta["steps"] == 2
    assert [r["type"] for r in trace.records] == ["run_started", "step", "step", "run_finished"]
    assert [s["step"] for s in trace.steps] == [1, 2]
    assert trace.finished["status"] == "success"
    assert trace.image(2).getpixel((0, 0)) == (80, 0, 0)
    assert trace.final_image().getpixel((0, 0)) == (0, 99, 0)
    assert w.run_id == trace.run_id and len(w.run_id.split("-")[2]) == 6


def test_meta_says_running_until_finished(tmp_path):
    w = make_trace(tmp_path, steps=1, finish=False)
    trace = read_trace(w.path)
    assert trace.status == "running" and trace.finished is None and trace.final_image() is None


def test_torn_last_line_is_reported_and_earlier_records_kept(tmp_path):
    w = make_trace(tmp_path, steps=2, finish=False)
    with open(w.path / "trace.jsonl", "a") as fh:
        fh.write('{"type": "step", "step": 3, "act')
    trace = read_trace(w.path)
    assert [s["step"] for s in trace.steps] == [1, 2]
    assert len(trace.problems) == 1
    assert trace.problems[0].startswith("trace.jsonl line 4: incomplete last line")


def test_damaged_middle_lines_are_reported_with_line_numbers(tmp_path):
    w = make_trace(tmp_path, steps=1, finish=False)
    with open(w.path / "trace.jsonl", "ab") as fh:
        fh.write(b"not json at all\n")
        fh.write(b"[1, 2]\n")
        fh.write(b'{"type": "step", "step": "two"}\n')
        fh.write(b"\xff\xfe\n")
        fh.write(json.dumps({"type": "step", "step": 2}).encode() + b"\n")
    trace = read_trace(w.path)
    assert [s["step"] for s in trace.steps] == [1, 2]
    lines = [p.split(":")[0] for p in trace.problems]
    assert lines == ["trace.jsonl line 3", "trace.jsonl line 4", "trace.jsonl line 5", "trace.jsonl line 6"]


def test_missing_directory_or_meta_raises_trace_error(tmp_path):
    with pytest.raises(TraceError, match="does not exist"):
        read_trace(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match="no meta.json"):
        read_trace(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "meta.json").write_text("{broken")
    with pytest.raises(TraceError, match="unreadable"):
        read_trace(tmp_path / "bad")


def test_missing_screenshot_raises_trace_error_naming_it(tmp_path):
    w = make_trace(tmp_path, steps=1)
    os.remove(w.path / "step_001.png")
    with pytest.raises(TraceError, match="step_001.png"):
        read_trace(w.path).image(1)


def test_redact_applies_to_meta_and_records(tmp_path):
    w = TraceWriter(tmp_path, {"task": "pw is hunter2"}, redact=lambda s: s.replace("hunter2", "{{secret:PW}}"))
    w.append({"type": "step", "step": 1, "model": {"raw": ["typed hunter2"]}})
    w.finish("failure", "hunter2 rejected", 1, "hunter2")
    blob = b"".join(p.read_bytes() for p in w.path.iterdir())
    assert b"hunter2" not in blob
    assert read_trace(w.path).meta["task"] == "pw is {{secret:PW}}"


def test_append_after_finish_raises_and_finish_is_idempotent(tmp_path):
    w = make_trace(tmp_path, steps=1)
    w.finish("failure", "again", 1, None)
    assert read_trace(w.path).meta["status"] == "success"
    with pytest.raises(TraceError, match="already finished"):
        w.append({"type": "step", "step": 9})


def test_list_traces_newest_first_skipping_non_traces(tmp_path):
    first = make_trace(tmp_path, task="a", steps=1)
    meta = json.loads((first.path / "meta.json").read_text())
    meta["started_at"] = "2020-01-01T00:00:00Z"
    (first.path / "meta.json").write_text(json.dumps(meta))
    second = make_trace(tmp_path, task="b", steps=3, finish=False)
    (tmp_path / "junk").mkdir()
    listed = list_traces(tmp_path)
    assert [t.task for t in listed] == ["b", "a"]
    assert listed[0].status == "running" and listed[1].status == "success" and listed[1].steps == 1
    assert listed[0].path == second.path
    assert list_traces(tmp_path / "missing") == []


WRITER = textwrap.dedent("""
    import sys
    from PIL import Image
    from visagent.core.trace import TraceWriter
    w = TraceWriter(sys.argv[1], {"task": "kill me"}, run_id="victim")
    img = Image.new("RGB", (64, 48), (1, 2, 3))
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        w.save_image(f"step_{n % 1000:03d}.png", img)
        w.append({"type": "step", "step": n, "payload": "x" * 3000})
""")


def test_kill_9_while_writing_leaves_a_loadable_trace(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # let it write a few records, whatever the machine's speed
        path = tmp_path / "victim" / "trace.jsonl"
        if path.exists() and path.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    trace = read_trace(tmp_path / "victim")
    assert trace.meta["task"] == "kill me" and trace.status == "running"
    steps = [s["step"] for s in trace.steps]
    assert len(steps) >= 5 and steps == list(range(1, len(steps) + 1))
    assert all(len(s["payload"]) == 3000 for s in trace.steps)
    assert all("incomplete last line" in p for p in trace.problems)


# -- untrusted contents (issue 42, items 4 and 6) -------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("actions", {"action": "left_click"}, "field 'actions': expected a list, got an object"),
    ("model", "text", "field 'model': expected an object or null, got a string"),
    ("policy", [1], "field 'policy': expected an object or null, got a list"),
    ("result", 3, "field 'result': expected an object or null, got a number"),
    ("actions", [{"action": "left_click", "coordinate": "1,2"}],
     "field 'actions[0].coordinate': expected [x, y] numbers, got a string"),
    ("actions", [{"action": "fly"}], "field 'actions[0]': not a valid action (unknown action 'fly'"),
    ("geometry", {"width": "big"}, "field 'geometry.width': expected a positive whole number, got a string"),
    ("timings", {"model": "slow"}, "field 'timings.model': expected a number, got a string"),
    ("screenshot", "../../x.png", "field 'screenshot': not a plain file name inside the trace"),
    ("screenshot", "/etc/passwd", "field 'screenshot': not a plain file name inside the trace"),
])
def test_a_record_that_breaks_the_format_is_left_out_with_one_line_naming_line_and_field(tmp_path, field, value,
                                                                                         message):
    w = make_trace(tmp_path, steps=1, finish=False)
    with open(w.path / "trace.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "step", "step": 2, field: value}) + "\n")
    trace = read_trace(w.path)
    assert [s["step"] for s in trace.steps] == [1]
    (problem,) = trace.problems
    assert problem.startswith(f"trace.jsonl line 3: {message}") and "\n" not in problem
    assert trace.torn is None and trace.damage == [problem]


@pytest.mark.parametrize("field, value, message", [
    ("steps", "many", "field 'steps': expected a whole number from 0, got a string"),
    ("executor", [], "field 'executor': expected an object or null, got a list"),
    ("status", "exploded", "field 'status': expected a run status, got a string"),
    ("settings", {"history_images": 0}, "field 'settings.history_images': expected a whole number from 1"),
])
def test_a_meta_json_that_breaks_the_format_is_one_line_naming_the_field(tmp_path, field, value, message):
    w = make_trace(tmp_path, steps=1)
    meta = json.loads((w.path / "meta.json").read_text())
    meta[field] = value
    (w.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TraceError) as err:
        read_trace(w.path)
    assert f"{w.path / 'meta.json'}: {message}" in str(err.value) and "\n" not in str(err.value)
    assert list_traces(tmp_path) == []  # the listing leaves it out rather than failing


def test_files_are_opened_only_inside_the_trace(tmp_path):
    w = make_trace(tmp_path / "runs", steps=2)
    trace = read_trace(w.path)
    assert trace.file("step_001.png") == w.path / "step_001.png"
    for name in ("../meta.json", "/etc/passwd", "sub/x.png", ".hidden", ""):
        with pytest.raises(TraceError, match="is not a file name inside the trace; refused"):
            trace.file(name)
    outside = tmp_path / "outside.png"
    Image.new("RGB", (4, 4), "red").save(outside)
    (w.path / "step_002.png").unlink()
    (w.path / "step_002.png").symlink_to(outside)
    with pytest.raises(TraceError, match="leads outside the trace directory"):
        trace.image(2)
    with pytest.raises(TraceError, match="leads outside"):
        trace.screenshot_path({"screenshot": "step_002.png"})
