"""`visagent report`: a self-contained HTML page with screenshots, overlays at image pixels, and problems."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from visagent.core.actions import Action
from visagent.loop.coords import to_screen
from visagent.screen.base import ScreenGeometry
from visagent.traces.report import write_report
from visagent.core.trace import TraceWriter

RECORDED = Path(__file__).resolve().parent.parent / "scenarios" / "traces"


def _hidpi_trace(root: Path) -> Path:
    """A trace on a HiDPI second monitor (scale 2, origin 1920,0): model and screen points differ in pixels."""
    geometry = ScreenGeometry(640, 400, 1280, 800, 1920, 0, 2)
    writer = TraceWriter(root, {"task": "press OK", "model": {"spec": "test", "coord_space": "norm1000"},
                                "executor": {"name": "desktop", "platform": "desktop", "geometry": geometry.to_dict()}})
    image = Image.new("RGB", (1280, 800), "white")
    ImageDraw.Draw(image).rectangle((600, 380, 700, 420), fill="blue")
    writer.save_image("step_001.png", image)
    click = to_screen(Action("left_click", coordinate=(250, 750), space="norm1000"), geometry)
    writer.append({"type": "step", "step": 1, "screenshot": "step_001.png", "geometry": geometry.to_dict(),
                   "model": {"raw": "<think>the OK button</think>", "thinking": "the OK <b>button</b>",
                             "answer": "<tool_call>...", "generated_tokens": 12, "finish_reason": "stop"},
                   "prompt": {"tokens": 900, "visual_tokens": 800, "images": 1, "cached_tokens": 0},
                   "actions": [click.to_dict()], "policy": {"decision": "allowed", "reason": ""},
                   "result": {"ok": True, "message": "", "changed": True},
                   "timings": {"capture": 0.01, "model": 1.5, "total": 1.6}, "error": None})
    writer.save_image("final.png", image)
    writer.finish("success", "", 1, None)
    return writer.path


def _markers(page: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {"pointed": [], "landed": []}
    for kind, x, y in re.findall(r'<(?:circle|path) class="(pointed|landed)" data-x="([\d.]+)" data-y="([\d.]+)"', page):
        out[kind].append((float(x), float(y)))
    return out


def test_overlays_sit_at_image_pixels_on_a_hidpi_monitor(tmp_path):
    trace = _hidpi_trace(tmp_path / "runs")
    page = write_report(trace, tmp_path / "r.html").read_text()
    marks = _markers(page)
    # model (250, 750) on the 0..1000 grid of a 1280x800 screenshot → image pixel (320, 600)
    assert marks["pointed"] == [(320.0, 600.0)]
    # executed at screen (1920 + 160, 300) logical → (160 * 2, 300 * 2) in the screenshot
    assert marks["landed"] == [(320.0, 600.0)]
    assert "[2080.0, 300.0]" in page or "[2080, 300]" in page
    assert 'viewBox="0 0 1280 800"' in page
    assert "the OK &lt;b&gt;button&lt;/b&gt;" in page  # thoughts escaped, not injected
    assert "model 1.500" in page and "prompt 900 tokens" in page


def test_denied_actions_parse_errors_and_errors_are_shown(tmp_path):
    geometry = ScreenGeometry.simple(320, 200)
    writer = TraceWriter(tmp_path / "runs", {"task": "delete everything",
                                             "executor": {"geometry": geometry.to_dict()}})
    writer.save_image("step_001.png", Image.new("RGB", (320, 200), "white"))
    key = Action("key", keys=("ctrl", "alt", "delete"), space="screen")
    writer.append({"type": "step", "step": 1, "screenshot": "step_001.png", "geometry": geometry.to_dict(),
                   "model": {"answer": "<tool_call>..."}, "attempts": 2, "parse_errors": ["no tool call found"],
                   "actions": [key.to_dict()],
                   "policy": {"decision": "denied", "reason": "risky hotkey ctrl+alt+delete"},
                   "result": None, "timings": {"total": 0.5}, "error": None})
    writer.save_image("step_002.png", Image.new("RGB", (320, 200), "white"))
    writer.append({"type": "step", "step": 2, "screenshot": "step_002.png", "geometry": geometry.to_dict(),
                   "model": {}, "attempts": 3, "parse_error": "coordinate [1200, 5] is outside the 0..1000 grid",
                   "actions": [], "policy": {"decision": None, "reason": ""}, "result": None,
                   "timings": {"total": 0.7}, "error": "the model's answer could not be parsed after 3 attempts"})
    writer.save_image("final.png", Image.new("RGB", (320, 200), "white"))
    writer.finish("parse_error", "the model's answer could not be parsed after 3 attempts", 2, None)
    page = write_report(writer.path, tmp_path / "r.html").read_text()
    assert 'class="policy p-denied"' in page and "risky hotkey ctrl+alt+delete" in page
    assert "retried after: no tool call found" in page and "attempts 2" in page
    assert "parse error: coordinate [1200, 5] is outside the 0..1000 grid" in page
    assert "error: the model&#x27;s answer could not be parsed after 3 attempts" in page
    assert 's-parse_error' in page  # a key press points nowhere: no marker on its screenshot
    assert 'class="pointed"' not in page and 'class="landed"' not in page


def test_screenshots_are_inlined_and_downscaled(tmp_path):
    trace = _hidpi_trace(tmp_path / "runs")
    page = write_report(trace, tmp_path / "r.html").read_text()
    blobs = re.findall(r'href="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(blobs) == 2  # step 1 and the final screen
    with Image.open(__import__("io").BytesIO(base64.b64decode(blobs[0]))) as img:
        assert max(img.size) <= 900 and img.size[0] / img.size[1] == pytest.approx(1.6, rel=0.01)
    assert "src=\"file:" not in page and "step_001.png\"" not in page  # nothing points outside the page


def test_default_output_is_inside_the_trace(tmp_path):
    trace = _hidpi_trace(tmp_path / "runs")
    assert write_report(trace) == trace / "report.html"


def test_torn_line_and_missing_screenshot_are_shown_in_the_page(tmp_path):
    trace = _hidpi_trace(tmp_path / "runs")
    (trace / "final.png").unlink()
    with (trace / "trace.jsonl").open("a") as fh:
        fh.write('{"type": "step", "step": 2, "screensh')
    page = write_report(trace, tmp_path / "r.html").read_text()
    problems = page.split('class="problems"')[1]
    assert "trace.jsonl line 3" in problems and "incomplete last line" in problems
    assert "final.png is missing" in problems


def test_cli_writes_report_and_warns_about_damage(tmp_path, visagent_bin):
    trace = _hidpi_trace(tmp_path / "runs")
    with (trace / "trace.jsonl").open("a") as fh:
        fh.write("{not json\n")
    out = tmp_path / "page.html"
    proc = subprocess.run([visagent_bin, "report", str(trace), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and proc.stdout.strip() == str(out)
    assert "line 3" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_missing_meta_is_one_line_error(tmp_path, visagent_bin):
    trace = _hidpi_trace(tmp_path / "runs")
    (trace / "meta.json").unlink()
    proc = subprocess.run([visagent_bin, "report", str(trace)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no meta.json" in proc.stderr and "Traceback" not in proc.stderr


def test_report_of_a_recorded_agent_trace_has_every_step(tmp_path):
    traces = sorted(p for p in RECORDED.iterdir() if (p / "meta.json").is_file())
    assert traces, "scenarios/traces holds no recorded traces"
    from visagent.core.trace import read_trace

    trace = read_trace(traces[0])
    page = write_report(traces[0], tmp_path / "r.html").read_text()
    for record in trace.steps:
        assert f'id="step-{record["step"]}"' in page
    marks = _markers(page)
    clicks = [a for r in trace.steps for a in r.get("actions", []) if a.get("coordinate") is not None]
    assert len(marks["landed"]) == len(clicks) and len(marks["pointed"]) == len(clicks)
    width, height = trace.image(1).size
    for click, pointed, landed in zip(clicks, marks["pointed"], marks["landed"]):
        mx, my = click["mapping"]["model"]  # a 0..1000 grid position over the screenshot
        assert pointed == pytest.approx((mx / 1000 * width, my / 1000 * height), abs=0.06)
        assert landed == pytest.approx(tuple(click["coordinate"]))  # scale 1, no monitor offset
        assert abs(pointed[0] - landed[0]) <= width / 1000 + 1  # the click landed where the model pointed
    assert 'class="problems"' not in page
    assert page.count("told the model: Done") == len(clicks)  # what the loop fed back after each click


@pytest.mark.parametrize("where, message", [
    ("under_a_file", "which is a file, not a directory"),
    ("a_directory", "is a directory; give a file such as"),
    ("unwritable", "cannot create files in /sys"),  # sysfs refuses new files even to root
])
def test_cli_bad_out_path_is_one_line_error_before_any_work(tmp_path, visagent_bin, where, message):
    trace = _hidpi_trace(tmp_path / "runs")
    (tmp_path / "notes.txt").write_text("a file\n")
    out = {"under_a_file": tmp_path / "notes.txt" / "html" / "page.html", "a_directory": tmp_path,
           "unwritable": Path("/sys/visagent-report.html")}[where]
    before = sorted(p.name for p in trace.iterdir())
    proc = subprocess.run([visagent_bin, "report", str(trace), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("visagent: error: --out ")
    assert sorted(p.name for p in trace.iterdir()) == before and (tmp_path / "notes.txt").read_text() == "a file\n"


def test_a_screenshot_outside_the_trace_is_never_inlined(tmp_path):
    """Issue 42: a step's `screenshot` of `../../x.png` (or a link leading out) made the report inline it."""
    import json

    trace = _hidpi_trace(tmp_path / "runs")
    secret = tmp_path / "outside.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(secret)
    lines = (trace / "trace.jsonl").read_text().splitlines()
    step = json.loads(lines[0])
    step.update(step=2, screenshot=str(Path("..") / ".." / "outside.png"))
    linked = dict(step, step=3, screenshot="step_003.png")
    (trace / "step_003.png").symlink_to(secret)
    lines[-1:-1] = [json.dumps(step), json.dumps(linked)]
    (trace / "trace.jsonl").write_text("\n".join(lines) + "\n")
    page = write_report(trace, tmp_path / "r.html").read_text()
    blobs = re.findall(r'href="data:image/jpeg;base64,([^"]+)"', page)
    sizes = set()
    for blob in blobs:
        with Image.open(__import__("io").BytesIO(base64.b64decode(blob))) as img:
            sizes.add(img.size)
    assert (64, 64) not in sizes and len(blobs) == 2  # step 1 and the final screen only
    problems = page.split('class="problems"')[1]
    assert "trace.jsonl line 2: field &#x27;screenshot&#x27;: not a plain file name" in problems
    assert "step 3: " in problems and "leads outside the trace directory" in problems
def test_the_header_shows_the_verdict_badge_and_labels_the_status_as_the_models_claim(tmp_path):
    import json

    from visagent.traces.evaluate import record_verdict

    path = _hidpi_trace(tmp_path)
    page = write_report(path).read_text()
    head = page.split('<table class="meta">')[0]
    assert 'data-verdict="none"' in head and "no check" in head and "model claimed success" in head
    record_verdict(path, False)
    head = write_report(path).read_text().split('<table class="meta">')[0]
    assert 'data-verdict="not_met"' in head and "goal NOT met" in head and "model claimed success" in head
    assert "<th>model&#x27;s own claim</th><td>success</td>" in write_report(path).read_text()
    record_verdict(path, True)
    assert 'data-verdict="met"' in write_report(path).read_text().split('<table class="meta">')[0]
    # model text in the reason stays text
    meta = json.loads((path / "meta.json").read_text())
    meta["reason"] = "</tool_call><script>alert(1)</script>"
    (path / "meta.json").write_text(json.dumps(meta))
    page = write_report(path).read_text()
    assert "<script>" not in page and "&lt;/tool_call&gt;&lt;script&gt;" in page
