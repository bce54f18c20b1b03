"""scripts/grounding_baselines.py: the pixel-blind baselines a trained model's click-inside rate is read against."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "grounding_baselines.py"


@pytest.fixture(scope="module")
def baselines():
    spec = importlib.util.spec_from_file_location("grounding_baselines", SCRIPT)  # scripts/ is not a package
    module = importlib.util.module_from_spec(spec)
    sys.modules["grounding_baselines"] = module
    spec.loader.exec_module(module)
    return module


def _record(label, bbox, platform="desktop", size=(1000, 800), kind="grounding"):
    return {"messages": [], "target": "", "meta": {"kind": kind, "label": label, "bbox": bbox, "image_size": list(size),
                                                  "platform": platform}}


def _row(label, bbox, img="a.png", platform="desktop", size=(1000, 800)):
    return {"img_filename": img, "bbox": bbox, "img_size": list(size), "label": label, "platform": platform}


def test_label_prior_answers_where_the_label_was_most_often_clicked(tmp_path):
    from visagent.grounding.baselines import baseline_hits

    records = tmp_path / "records.jsonl"
    lines = [_record("Save", [100, 100, 200, 140])] * 3 + [_record("Save", [700, 600, 800, 640]),
                                                           _record("Open", [450, 380, 550, 420]),
                                                           _record("Save", [0, 0, 10, 10], kind="trajectory")]
    records.write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows = [_row("save", [90, 90, 210, 150]),          # case-insensitive: Save's commonest place (150, 120) is inside
            _row("Cancel", [450, 370, 560, 430]),       # unknown label: the centre (500, 400), inside
            _row("Open", [800, 700, 900, 780], img="b.png")]  # Open moved: its old place is not inside
    hits, known = baseline_hits(rows, records)
    assert known == 2
    assert hits["label prior"] == 2
    assert hits["centre"] == 1  # only Cancel's box holds the centre
    # screen a.png holds save + Cancel: each is hit by its own centre only -> 1/2 + 1/2; b.png's one element -> 1
    assert hits["random element"] == pytest.approx(2.0)
    assert hits["platform prior"] == 1  # desktop's commonest place is Save's: inside the save row only
    sampled, _ = baseline_hits(rows[:1], records, screen_rows=rows)  # a sample: drawn among all of a.png's
    assert sampled["random element"] == pytest.approx(0.5) and sampled["label prior"] == 1


def test_missing_data_is_one_line(baselines, tmp_path, capsys):
    assert baselines.main(["--data", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
