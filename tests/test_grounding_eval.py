"""Grounding prediction and evaluation on a sim set exported in the ScreenSpot-Pro layout, with scripted test
engines (not models) that answer the box centre, a point outside every box, or garbage."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from engine.api import smart_resize, VisionSpec
from tests.grounding_engines import ScriptedGroundingEngine, boxes_by_screen, centre_picker, outside_picker
from visagent.core.errors import ConfigError
from visagent.grounding import (
    annotate, evaluate_grounding, ground, load_annotations, resolve_prompt_style, scaled_box,
)
from visagent.grounding.misses_html import write_misses_html
from visagent.grounding.sim_export import export_sim_grounding


@pytest.fixture(scope="module")
def sim_set(tmp_path_factory):
    """One desktop and one phone scenario, one seed, up to two screens each."""
    out = tmp_path_factory.mktemp("ground") / "simset"
    summary = export_sim_grounding(out, split="heldout", seeds=1, screens=2,
                                   scenario_ids=["desktop-files-sort-size", "phone-settings-ringtone"])
    return out, summary


def test_export_writes_the_pro_layout_and_round_trips(sim_set):
    out, summary = sim_set
    assert summary.items > 20 and summary.screens >= 3  # ambiguous instructions: test_an_instruction_two_elements_share_is_left_out
    names = sorted(p.name for p in (out / "annotations").iterdir())
    assert names == sorted(p.name for p in summary.annotation_files)
    assert any(n.endswith("_desktop.json") for n in names) and any(n.endswith("_phone.json") for n in names)
    data = load_annotations(out / "annotations")
    assert data.problems == [] and len(data.items) == summary.items
    assert {fl for fl, _ in data.flavours.values()} == {"pro"}
    raw = [row for f in sorted((out / "annotations").iterdir()) for row in json.loads(f.read_text())]
    assert [it.bbox for it in data.items] == [tuple(float(v) for v in r["bbox"]) for r in raw]
    by_screen: dict[str, list] = {}
    for item in data.items:
        with Image.open(out / "images" / item.img_filename) as img:
            assert item.img_size == img.size
        x1, y1, x2, y2 = item.bbox
        assert 0 <= x1 < x2 <= item.img_size[0] and 0 <= y1 < y2 <= item.img_size[1]
        assert item.ui_type in ("text", "icon") and item.group == "sim"
        by_screen.setdefault(item.img_filename, []).append(item)
    for items in by_screen.values():  # no instruction is ambiguous on its screen
        assert len({i.instruction for i in items}) == len(items)
    assert {i.prompt_platform for i in data.items} == {"desktop", "phone"}


def test_an_instruction_two_elements_share_is_left_out(tmp_path, monkeypatch):
    """Two list rows both labelled "Notes" make "select Notes in the list" ambiguous: neither is an item; an icon
    with the same label has its own instruction ("open Notes") and stays. Nothing unambiguous: one-line error."""
    from types import SimpleNamespace as El

    from visagent.grounding import sim_export

    row1 = El(label="Notes", role="list_item", bbox=(0, 0, 50, 20), ui_type="text", app="files")
    row2 = El(label="notes ", role="list_item", bbox=(0, 30, 50, 50), ui_type="text", app="files")
    icon = El(label="Notes", role="icon", bbox=(60, 0, 90, 30), ui_type="icon", app="system")
    kept, skipped = sim_export.unambiguous([row1, row2, icon, El(label=" ", role="icon", bbox=(0, 0, 1, 1),
                                                                ui_type="icon", app="system")])
    assert kept == [icon] and skipped == 2
    screen = Image.new("RGB", (100, 60))
    monkeypatch.setattr(sim_export, "_episode_screens", lambda sc, seed, n, summary: [(screen, [row1, row2])])
    with pytest.raises(ConfigError, match="no element with a unique instruction") as err:
        sim_export.export_sim_grounding(tmp_path / "x", split="heldout", seeds=1, screens=1,
                                        scenario_ids=["desktop-files-sort-size"])
    assert "\n" not in str(err.value)


def test_a_screen_two_scenarios_share_is_written_once(tmp_path):
    """phone-files-rename-scroll and phone-shop-add both start on the same home screen (seed 0): one copy."""
    both = ["phone-files-rename-scroll", "phone-shop-add"]
    summary = export_sim_grounding(tmp_path / "s", split="heldout", seeds=1, screens=1, scenario_ids=both)
    alone = export_sim_grounding(tmp_path / "a", split="heldout", seeds=1, screens=1, scenario_ids=both[:1])
    assert summary.repeated_screens == 1 and summary.screens == 1 == alone.screens
    assert summary.items == alone.items
    items = load_annotations(tmp_path / "s" / "annotations").items
    assert len({(i.img_filename, i.instruction) for i in items}) == len(items)


@pytest.mark.parametrize("coord_space", ["norm1000", "resized"])
def test_an_engine_answering_the_box_centre_scores_100(sim_set, coord_space):
    out, _ = sim_set
    items = load_annotations(out / "annotations").items
    engine = ScriptedGroundingEngine(centre_picker(boxes_by_screen(items, out / "images")), coord_space=coord_space)
    seen = []
    report = evaluate_grounding(engine, items, out / "images", workers=3, model="scripted",
                                on_item=lambda o, p: seen.append((o, p)))
    assert len(report.outcomes) == len(items) == len(seen) and report.problems == []
    assert report.accuracy == 1.0 and report.count("correct") == len(items)
    assert [o.item.id for o in report.outcomes] == [i.id for i in items]  # input order, whatever the threads did
    assert report.breakdown("ui_type")["text"]["accuracy"] == 1.0
    assert set(report.breakdown("platform")) == {"desktop", "phone"}
    first = report.outcomes[0].result
    assert first.space == coord_space and first.prompt_style == ("qwen3" if coord_space == "norm1000" else "qwen25")
    tools = {c["tools"][0]["function"]["name"] for c in engine.calls}
    assert tools == {"computer_use", "mobile_use"}  # phone screens get the phone tool


def test_an_engine_answering_outside_every_box_scores_0(sim_set):
    out, _ = sim_set
    items = load_annotations(out / "annotations").items
    engine = ScriptedGroundingEngine(outside_picker(boxes_by_screen(items, out / "images")))
    report = evaluate_grounding(engine, items, out / "images", workers=2)
    assert report.accuracy == 0.0 and report.count("wrong") == len(items) and report.count("wrong_format") == 0
    assert all(o.result.point is not None for o in report.outcomes)


def test_outputs_without_a_point_count_as_wrong_format(sim_set):
    out, _ = sim_set
    items = load_annotations(out / "annotations").items[:6]
    answers = ["I cannot see it.", "<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n"
               "</parameter>\n<parameter=status>\nfailure\n</parameter>\n</function>\n</tool_call>", "\x00\x11garbage"]
    count = [0]

    def pick(image, instruction):
        count[0] += 1
        return answers[count[0] % len(answers)]

    report = evaluate_grounding(ScriptedGroundingEngine(pick), items, out / "images")
    assert report.count("wrong_format") == 6 and report.accuracy == 0.0
    assert report.to_dict()["wrong_format"] == 6
    assert any("no point" in o.error for o in report.outcomes)  # the terminate call parsed but held no point


def test_missing_images_and_engine_failures_do_not_end_the_run(sim_set, tmp_path):
    out, _ = sim_set
    items = load_annotations(out / "annotations").items
    first_image = items[0].img_filename
    images = tmp_path / "images"
    for item in items:
        if item.img_filename != first_image and not (images / item.img_filename).exists():
            (images / item.img_filename).parent.mkdir(parents=True, exist_ok=True)
            (images / item.img_filename).write_bytes((out / "images" / item.img_filename).read_bytes())
    victim = next(i for i in items if i.img_filename != first_image)
    present = [i for i in items if i.img_filename != first_image]
    engine = ScriptedGroundingEngine(centre_picker(boxes_by_screen(present, out / "images")),
                                     fail_on=victim.instruction)
    report = evaluate_grounding(engine, items, images)
    missing = [i for i in items if i.img_filename == first_image]
    assert [(p.file, p.row) for p in report.problems] == [(i.file, i.row) for i in missing]
    assert all("image not found" in p.message for p in report.problems)
    assert len(report.outcomes) == len(items) - len(missing)
    errors = [o for o in report.outcomes if o.correctness == "error"]
    assert errors and all("engine failed" in o.error for o in errors)
    assert report.count("correct") == len(report.outcomes) - len(errors)


def test_a_downscaled_copy_is_scored_against_the_scaled_box(sim_set, tmp_path):
    out, _ = sim_set
    item = next(i for i in load_annotations(out / "annotations").items if i.platform == "desktop")
    with Image.open(out / "images" / item.img_filename) as img:
        small = img.resize((img.width // 2, img.height // 2))
    (tmp_path / item.img_filename).parent.mkdir(parents=True)
    small.save(tmp_path / item.img_filename)
    assert scaled_box(item, small.size) == tuple(v / 2 for v in item.bbox)
    x1, y1, x2, y2 = item.bbox
    engine = ScriptedGroundingEngine(lambda image, text: ((x1 + x2) / 4, (y1 + y2) / 4))  # the centre, halved
    assert evaluate_grounding(engine, [item], tmp_path).accuracy == 1.0


def test_ground_maps_model_points_to_image_pixels():
    image = Image.new("RGB", (1280, 800), "white")
    engine = ScriptedGroundingEngine(lambda img, text: "<tool_call>\n<function=computer_use>\n<parameter=action>\n"
                                     "left_click\n</parameter>\n<parameter=coordinate>\n[500, 250]\n</parameter>\n"
                                     "</function>\n</tool_call>")
    result = ground(engine, image, "the middle")
    assert result.point_model == (500.0, 250.0) and result.point == (640.0, 200.0)
    assert result.model_size == (1000, 1000) and result.error is None and result.action.action == "left_click"
    system, user = engine.calls[0]["messages"]
    assert "computer_use" in system["content"] and user["content"][1]["text"] == "the middle"
    resized = ScriptedGroundingEngine(lambda img, text: "Action: click(point='<point>640 272</point>')",
                                      coord_space="resized")
    result = ground(resized, image, "x", prompt_style="uitars")
    rw, rh = smart_resize(1280, 800, VisionSpec())
    assert result.model_size == (rw, rh) and result.point == (640 * 1280 / rw, 272 * 800 / rh)
    assert resized.calls[0]["tools"] is None and "x" in resized.calls[0]["messages"][0]["content"][1]["text"]
    data = json.loads(json.dumps(result.to_dict()))
    assert data["point_model"] == [640, 272] and data["space"] == "resized"


def test_prompt_style_follows_the_model_family():
    assert resolve_prompt_style(ScriptedGroundingEngine(str)) == "qwen3"
    assert resolve_prompt_style(ScriptedGroundingEngine(str, coord_space="resized")) == "qwen25"
    tars = ScriptedGroundingEngine(str, coord_space="resized")
    tars.info = tars.info.__class__(**{**tars.info.__dict__, "spec": "/models/UI-TARS-1.5-7B"})
    assert resolve_prompt_style(tars) == "uitars"
    with pytest.raises(ConfigError, match="prompt style"):
        resolve_prompt_style(tars, "gpt")
    with pytest.raises(ConfigError, match="empty"):
        ground(tars, Image.new("RGB", (64, 64)), "  ")
    with pytest.raises(ConfigError, match="platform"):
        ground(ScriptedGroundingEngine(str), Image.new("RGB", (64, 64)), "x", platform="tv")


def test_annotate_marks_the_box_and_the_point():
    image = Image.new("RGB", (400, 300), "white")
    engine = ScriptedGroundingEngine(lambda img, text: (300.0, 150.0))
    result = ground(engine, image, "x")
    marked = annotate(image, result, box=(20, 30, 120, 80))
    assert image.getpixel((20, 50)) == (255, 255, 255)  # the input is not drawn on
    assert marked.getpixel((20, 50)) == (0, 200, 0)  # box outline
    assert marked.getpixel((300, 150)) == (255, 0, 0)  # cross at the point


def test_misses_page_shows_each_miss_with_its_pictures(sim_set, tmp_path):
    out, _ = sim_set
    items = load_annotations(out / "annotations").items[:4]
    boxes = boxes_by_screen(items, out / "images")
    centre, outside = centre_picker(boxes), outside_picker(boxes)
    engine = ScriptedGroundingEngine(lambda img, text: centre(img, text) if text == items[0].instruction
                                     else outside(img, text) if text == items[1].instruction else "no idea")
    report = evaluate_grounding(engine, items, out / "images", model="scripted")
    page = write_misses_html(report, tmp_path / "misses.html")
    text = page.read_text()
    assert "Grounding misses: 3 of 4" in text
    for item in items[1:]:
        assert item.instruction in text
    assert items[0].instruction not in text.split("</h1>", 1)[1]
    assert "no idea" in text and "wrong_format" in text
    pictures = sorted(p.name for p in (tmp_path / "misses_files").iterdir())
    assert "00001.jpg" in pictures and "00003.jpg" in pictures
    for name in pictures:
        assert f"misses_files/{name}" in text


def test_compact_profile_model_is_asked_with_the_agent_prompt_it_was_trained_on():
    """A checkpoint trained on the compact agent prompt (the shipped tiny one) is grounded with exactly the
    first-step prompt of its training records: compact system prompt, `Task: <instruction>`, compact tool."""
    import dataclasses

    from visagent.loop.prompting import system_prompt
    from visagent.core.schemas import tool_for

    engine = ScriptedGroundingEngine(lambda img, text: (640.0, 400.0))
    engine.info = dataclasses.replace(engine.info, prompt_profile="compact")
    assert resolve_prompt_style(engine) == "compact"
    result = ground(engine, Image.new("RGB", (1280, 800)), "Click the 'Save' button.", platform="phone")
    assert result.point == (640.0, 400.0) and result.space == "norm1000"
    system, user = engine.calls[0]["messages"]
    assert system["content"] == system_prompt("phone", "compact")
    assert "Task: Click the 'Save' button." in user["content"][1]["text"]
    assert engine.calls[0]["tools"] == [tool_for("phone", "norm1000", 1000, 1000, "compact")]


def test_task_first_profile_model_is_grounded_with_the_task_before_the_image():
    import dataclasses

    engine = ScriptedGroundingEngine(lambda img, text: (640.0, 400.0))
    engine.info = dataclasses.replace(engine.info, prompt_profile="compact-task-first")
    assert resolve_prompt_style(engine) == "compact-task-first"
    ground(engine, Image.new("RGB", (1280, 800)), "Click the 'Save' button.", platform="desktop")
    _, user = engine.calls[0]["messages"]
    assert [p["type"] for p in user["content"]] == ["text", "image"]
    assert "Task: Click the 'Save' button." in user["content"][0]["text"]
