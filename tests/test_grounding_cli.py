"""`visagent ground`, `visagent ground-eval` and `visagent scenarios export-grounding` as a user runs them:
`visagent.cli.main` in-process (tests/cli_helpers.py), the real tiny checkpoint (whatever it answers — a point, a
miss, or text without a point counted as wrong_format — the run must not crash), one-line errors with exit 2 on
bad input."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from engine import tiny_checkpoint_path
from engine.checkpoint import read_prompt_profile

#: The prompt style "auto" picks for the shipped tiny checkpoint: its visagent.json profile.
_TINY_PROFILE = read_prompt_profile(tiny_checkpoint_path())
TINY_STYLE = _TINY_PROFILE if _TINY_PROFILE.startswith("compact") else "qwen3"

from visagent.grounding import load_annotations


def run(cli, *args: str):
    return cli(*args)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """Two exported sim items and two bad rows (a missing image, a short bbox). The screenshots are shrunk to
    320x200 (the annotations keep img_size 1280x800, so ground-eval scales the boxes) to keep the tiny model's
    CPU prefill short."""
    from visagent.grounding.sim_export import export_sim_grounding

    out = tmp_path_factory.mktemp("gcli") / "set"
    export_sim_grounding(out, split="heldout", seeds=1, screens=1, scenario_ids=["desktop-files-sort-size"])
    ann = next((out / "annotations").iterdir())
    rows = json.loads(ann.read_text())[:2]
    bad_rows = [{**rows[0], "img_filename": "gone.png"}, {**rows[0], "bbox": [1, 2]}]  # rows 2 and 3: skipped
    (out / "two").mkdir()
    (out / "two" / ann.name).write_text(json.dumps(rows + bad_rows))
    for row in rows:
        path = out / "images" / row["img_filename"]
        with Image.open(path) as img:
            img.resize((320, 200)).save(path)
    return out


def test_export_grounding_cli_writes_a_set_ground_eval_reads(visagent_cli, clean_env, tmp_path):
    res = run(visagent_cli, "scenarios", "export-grounding", "--split", "heldout", "--out", str(tmp_path / "s"),
              "--seeds", "1", "--screens", "2", "--scenario", "desktop-settings-many")
    assert res.returncode == 0, res.stderr
    assert "items on 2 screens" in res.stdout and "ground-eval" in res.stdout
    data = load_annotations(tmp_path / "s" / "annotations")
    assert data.items and not data.problems
    assert all((tmp_path / "s" / "images" / i.img_filename).is_file() for i in data.items)
    bad = run(visagent_cli, "scenarios", "export-grounding", "--out", str(tmp_path / "t"), "--seeds", "0")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--seeds" in bad.stderr
    # the launcher screen alone: each app is both a desktop icon and a taskbar button, told apart by the instruction
    home = run(visagent_cli, "scenarios", "export-grounding", "--out", str(tmp_path / "u"), "--screens", "1",
               "--seeds", "1", "--scenario", "desktop-settings-many")
    assert home.returncode == 0, home.stderr
    rows = {i.instruction: i for i in load_annotations(tmp_path / "u" / "annotations").items}
    assert {"open Calculator", "switch to Calculator in the taskbar"} <= set(rows)
    assert rows["open Calculator"].bbox != rows["switch to Calculator in the taskbar"].bbox


@pytest.mark.slow
def test_ground_eval_with_the_tiny_model_runs_end_to_end(visagent_cli, clean_env, small_set, tmp_path):
    res = run(visagent_cli, "ground-eval", str(small_set / "two"), "--images", str(small_set / "images"),
              "--model", "tiny", "--max-new-tokens", "12", "--workers", "2", "--json", str(tmp_path / "r.json"),
              "--html", str(tmp_path / "misses.html"))
    assert res.returncode == 0, res.stderr
    assert "ground-eval" in res.stderr and "2/2" in res.stderr  # the tqdm bar on stderr
    ann = next((small_set / "two").iterdir())
    assert f"skipped: {ann}: row 2: image not found" in res.stderr  # reported by file and row, run goes on
    assert f"skipped: {ann}: row 3: bbox must be 4 numbers" in res.stderr
    assert "overall" in res.stdout and "ui_type:" in res.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["model"] == "tiny" and data["total"] == 2 and data["skipped"] == 2
    assert sorted(p["row"] for p in data["problems"]) == [2, 3]
    assert data["correct"] + data["wrong"] + data["wrong_format"] + data["errors"] == 2
    assert data["errors"] == 0 and data["mean_latency_s"] > 0
    for item in data["items"]:
        pred = item["prediction"]
        assert pred["raw"] is not None and pred["space"] == "norm1000" and pred["prompt_style"] == TINY_STYLE
        assert item["box_tested"] == [v / 4 for v in item["bbox"]]  # scaled to the 320x200 copy
        assert (item["correctness"] == "wrong_format") == (pred["point"] is None)
    misses = data["total"] - data["correct"]
    assert f"Grounding misses: {misses} of 2" in (tmp_path / "misses.html").read_text()


def test_ground_with_the_tiny_model_prints_json_and_marks_the_image(visagent_cli, clean_env, small_set, tmp_path):
    image = next((small_set / "images").rglob("*.png"))
    res = run(visagent_cli, "ground", str(image), "click the Minimize button", "--model", "tiny",
              "--max-new-tokens", "8", "--json", "--out", str(tmp_path / "marked.png"))
    assert res.returncode in (0, 1), res.stderr  # 1: the random-weights model wrote no point
    data = json.loads(res.stdout)
    assert data["model"] == "tiny" and data["image_size"] == [320, 200] and data["space"] == "norm1000"
    assert (res.returncode == 1) == (data["point"] is None) == (data["error"] is not None)
    with Image.open(tmp_path / "marked.png") as marked:
        assert marked.size == (320, 200)


@pytest.mark.parametrize("args, needle", [
    (["ground-eval", "/nonexistent/ann.json", "--images", "."], "not found"),
    (["ground-eval", "{ann}", "--images", "/nonexistent/dir"], "--images"),
    (["ground-eval", "{ann}", "--images", ".", "--workers", "0"], "--workers"),
    (["ground-eval", "{ann}", "--images", ".", "--limit", "0"], "--limit"),
    (["ground-eval", "{bad}", "--images", "."], "no usable annotation"),
    (["ground", "/nonexistent.png", "the Save button"], "no such file"),
    (["ground", "{ann}", "the Save button"], "not a readable image"),
    (["ground", "{png}", "   "], "empty"),
    (["ground", "{png}", "x", "--out", "marked.txt"], "--out"),
    (["ground", "{png}", "x", "--model", "/nonexistent/ckpt"], "nonexistent"),
])
def test_bad_input_is_one_line_and_exit_2(visagent_cli, clean_env, tmp_path, args, needle):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps([{"img_filename": "a.png", "bbox": [1, 1, 5, 5], "instruction": "x", "ui_type": "icon"}]))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"img_filename": "a.png", "bbox": [1, 1], "instruction": "x", "ui_type": "icon"}]))
    png = tmp_path / "s.png"
    Image.new("RGB", (64, 64)).save(png)
    args = [a.format(ann=ann, bad=bad, png=png) for a in args]
    res = run(visagent_cli, *args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.startswith("visagent: error:")]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr
