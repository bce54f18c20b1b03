"""ScreenSpot annotation files as distributed: every flavour read to the same boxes, flavour detection, bad rows."""

from __future__ import annotations

import json

import pytest

from visagent.core.errors import ConfigError
from visagent.grounding import detect_flavour, load_annotations

# Two targets on a 1920x1080 screenshot, as (x1, y1, x2, y2) pixels.
BOXES = [(100.0, 200.0, 160.0, 230.0), (1500.0, 40.0, 1532.0, 72.0)]


def pro_rows():
    return [{"img_filename": "vscode_macos/shot.png", "bbox": list(b), "img_size": [1920, 1080],
             "instruction": f"target {i}", "ui_type": ("text", "icon")[i], "group": "Dev", "platform": "macos",
             "application": "vscode", "id": f"vscode_macos_{i}"} for i, b in enumerate(BOXES)]


def v1_rows():  # original ScreenSpot / ScreenSpot-v2: bbox x, y, w, h; data_type / data_source; no img_size
    return [{"img_filename": "pc_shot.png", "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
             "instruction": f"target {i}", "data_type": ("text", "icon")[i], "data_source": "macos"}
            for i, b in enumerate(BOXES)]


def v2_converted_rows():  # converted v2: x1, y1, x2, y2 with img_size, v1 field names
    return [{"img_filename": "pc_shot.png", "bbox": list(b), "img_size": [1920, 1080],
             "instruction": f"target {i}", "data_type": ("text", "icon")[i], "data_source": "macos"}
            for i, b in enumerate(BOXES)]


def write(path, rows):
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_every_flavour_reads_to_the_same_boxes(tmp_path):
    loaded = {}
    for name, rows, flavour in (("vscode_macos.json", pro_rows(), "pro"),
                                ("screenspot_desktop.json", v1_rows(), "v1"),
                                ("screenspot_desktop_v2.json", v2_converted_rows(), "v2")):
        data = load_annotations(write(tmp_path / name, rows))
        assert data.problems == []
        assert data.flavours[str(tmp_path / name)][0] == flavour
        loaded[flavour] = data.items
    for flavour, items in loaded.items():
        assert [it.bbox for it in items] == BOXES, flavour
        assert [it.ui_type for it in items] == ["text", "icon"]
        assert [it.instruction for it in items] == ["target 0", "target 1"]
        assert all(it.platform == "macos" for it in items)
    assert loaded["pro"][0].group == "Dev" and loaded["pro"][0].application == "vscode"
    assert loaded["pro"][1].id == "vscode_macos_1" and loaded["pro"][0].img_size == (1920, 1080)
    # v1/v2 files have no group field: the file's kind (desktop, from screenspot_desktop*.json) stands in
    assert {it.group for it in loaded["v1"] + loaded["v2"]} == {"desktop"}
    assert loaded["v1"][0].img_size is None and loaded["v2"][0].img_size == (1920, 1080)


def test_a_folder_of_pro_files_is_read_in_name_order(tmp_path):
    write(tmp_path / "b_app_windows.json", pro_rows()[:1])
    write(tmp_path / "a_app_macos.json", pro_rows())
    (tmp_path / "README.txt").write_text("not an annotation file")
    data = load_annotations(tmp_path)
    assert [it.file.rsplit("/", 1)[-1] for it in data.items] == ["a_app_macos.json"] * 2 + ["b_app_windows.json"]
    assert [it.row for it in data.items] == [0, 1, 0]


def test_forcing_a_flavour_overrides_detection(tmp_path):
    path = write(tmp_path / "screenspot_desktop_v2.json", v2_converted_rows())
    forced = load_annotations(path, "v1")  # reading x1,y1,x2,y2 as x,y,w,h gives other boxes
    assert forced.flavours[str(path)] == ("v1", "forced with --flavour")
    assert forced.items[0].bbox == (100.0, 200.0, 260.0, 430.0)


def test_flavour_from_geometry_when_no_type_fields():
    bare = [{"img_filename": "a.png", "instruction": "x", "bbox": [300, 200, 40, 20]}]
    assert detect_flavour(bare)[0] == "v1"  # x2 < x1 only makes sense as x, y, w, h
    overrun = [{"img_filename": "a.png", "instruction": "x", "bbox": [1000, 10, 1100, 40], "img_size": [1280, 800]}]
    assert detect_flavour(overrun)[0] == "pro"  # as x,y,w,h it would reach x=2100 on a 1280 px image
    flavour, why = detect_flavour([{"img_filename": "a.png", "instruction": "x", "bbox": [10, 10, 50, 40]}])
    assert flavour is None and "--flavour" in why


def test_an_ambiguous_file_is_reported_and_skipped(tmp_path):
    amb = write(tmp_path / "mystery.json", [{"img_filename": "a.png", "instruction": "x", "bbox": [10, 10, 50, 40]}])
    write(tmp_path / "vscode_macos.json", pro_rows())
    data = load_annotations(tmp_path)
    assert len(data.items) == 2
    assert [(p.file, p.row) for p in data.problems] == [(str(amb), None)]
    assert "--flavour" in data.problems[0].line()
    assert load_annotations(amb, "pro").items[0].bbox == (10.0, 10.0, 50.0, 40.0)


def test_malformed_rows_are_reported_by_file_and_row_and_skipped(tmp_path):
    rows = pro_rows()
    rows += [
        "not an object",
        {**rows[0], "bbox": [1, 2, 3]},
        {**rows[0], "instruction": "  "},
        {**rows[0], "bbox": [50, 50, 40, 60]},
        {**rows[0], "img_filename": None},
        {**rows[0], "img_size": [0, 1080]},
        {**rows[0], "bbox": [1, 2, "3", 4]},
    ]
    path = write(tmp_path / "vscode_macos.json", rows)
    data = load_annotations(path)
    assert len(data.items) == 2
    assert [p.row for p in data.problems] == [2, 3, 4, 5, 6, 7, 8]
    lines = [p.line() for p in data.problems]
    assert all(line.startswith(f"{path}: row ") for line in lines)
    assert "expected an object" in lines[0] and "4 numbers" in lines[1] and "instruction" in lines[2]
    assert "x2 <= x1" in lines[3] and "img_filename" in lines[4] and "img_size" in lines[5]


def test_broken_files_are_problems_not_crashes(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    write(tmp_path / "b.json", {"img_filename": "x"})
    write(tmp_path / "c_app_macos.json", pro_rows())
    data = load_annotations(tmp_path)
    assert len(data.items) == 2
    assert [(p.file.rsplit("/", 1)[-1], p.row) for p in data.problems] == [("a.json", None), ("b.json", None)]
    assert "not valid JSON" in data.problems[0].message and "JSON list" in data.problems[1].message


def test_bad_paths_and_flavours_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_annotations(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="no .json"):
        load_annotations(tmp_path)
    with pytest.raises(ConfigError, match="unknown annotation flavour"):
        load_annotations(tmp_path, "v3")


def test_phone_items_are_prompted_as_phones(tmp_path):
    rows = v1_rows()
    rows[0]["data_source"] = "android"
    data = load_annotations(write(tmp_path / "screenspot_mobile.json", rows))
    assert [it.prompt_platform for it in data.items] == ["phone", "phone"]  # the mobile file makes both phones
    data = load_annotations(write(tmp_path / "screenspot_desktop.json", rows))
    assert [it.prompt_platform for it in data.items] == ["phone", "desktop"]
