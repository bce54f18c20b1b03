"""`visagent report TRACE --gif`: the run as an animated GIF (issue 41) — one frame per recorded step plus the
final screen, the screens downscaled to the size asked for, a caption band under each, the markers drawn."""

from __future__ import annotations

from PIL import Image

from tests.fixtures.dashboard import SCENARIO, make_dashboard, wait_until
from visagent.traces.animation import write_gif
from visagent.cli import main
from visagent.traces.markers import LANDED_COLOR, POINTED_COLOR
from visagent.core.trace import read_trace


def _oracle_trace(root):
    from ui.engines import ModelChoice
    from ui.runs import RunRequest

    dash = make_dashboard(root)
    try:
        run = dash.runs.start(RunRequest("Switch the system to dark mode.", ModelChoice("oracle", ""),
                                         scenario=SCENARIO))
        snap = wait_until(lambda: (s := run.snapshot()).verdict and s, 60, "the oracle run")
    finally:
        dash.close()
    return read_trace(snap.trace_dir)


def test_the_gif_has_a_frame_per_step_and_the_final_screen_at_the_size_asked(tmp_path):
    trace = _oracle_trace(tmp_path / "runs")
    out = write_gif(trace.path, tmp_path / "run.gif", max_side=320)
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(trace.steps) + 1
        width, height = trace.image(1).size
        assert gif.size[0] == 320  # the screen's longest side, scaled
        assert gif.size[1] > round(height * 320 / width)  # plus the caption band under it, not over it
        assert gif.info.get("loop") == 0
        gif.seek(0)
        first = gif.convert("RGB")
    # the first step's click: its markers, in the one marker style, near the scaled click point
    action = trace.steps[0]["actions"][0]
    x, y = (v * 320 / width for v in action["coordinate"])
    around = {first.getpixel((int(x) + dx, int(y) + dy)) for dx in range(-12, 13) for dy in range(-12, 13)
              if 0 <= int(x) + dx < first.width and 0 <= int(y) + dy < first.height}

    def near(color):
        return any(sum(abs(a - b) for a, b in zip(pixel, color)) < 60 for pixel in around)

    assert near(POINTED_COLOR) and near(LANDED_COLOR)


def test_report_gif_on_the_command_line_and_its_refusals(tmp_path, capsys):
    trace = _oracle_trace(tmp_path / "runs")
    assert main(["report", str(trace.path), "--gif"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(trace.path / "run.gif")
    with Image.open(out) as gif:
        assert gif.n_frames == len(trace.steps) + 1 and gif.size[0] == 640  # a desktop screen: wider than tall
    for argv, needle in ((["report", str(tmp_path / "nope"), "--gif"], "nope"),
                         (["report", str(trace.path), "--gif", "--out", str(tmp_path / "a.png")], "use a .gif"),
                         (["report", str(trace.path), "--gif", "--gif-size", "10"], "--gif-size 10")):
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("visagent: error: ") and needle in err[0], err
    assert not (tmp_path / "a.png").exists()
