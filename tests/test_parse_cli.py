"""`visagent parse` as a user runs it (in-process, tests/cli_helpers.py): JSON with model and screen coordinates,
or one error line + exit 2."""

from __future__ import annotations

import json

QWEN35 = ("<think>\nThe OK button is bottom right.\n</think>\n\n<tool_call>\n<function=computer_use>\n"
          "<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n[500, 500]\n</parameter>\n"
          "</function>\n</tool_call>")


def run(cli, stdin: str, *args: str):
    return cli("parse", *args, stdin=stdin)


def test_qwen35_output_on_a_hidpi_second_monitor(visagent_cli, clean_env):
    proc = run(visagent_cli, QWEN35, "--screen", "1440x900", "--scale", "2", "--offset", "1920,0")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["format"] == "qwen35" and out["thinking"] == "The OK button is bottom right."
    (action,) = out["actions"]
    assert action["model"] == {"action": "left_click", "coordinate": [500, 500], "space": "norm1000"}
    assert action["screen"]["coordinate"] == [2640, 450] and action["screen"]["space"] == "screen"
    mapping = action["screen"]["mapping"]
    assert mapping["model"] == [500.0, 500.0] and mapping["scale"] == 2.0 and mapping["offset_x"] == 1920
    assert mapping["image_size"] == [2880, 1800]


def test_uitars_in_resized_space_on_a_phone(visagent_cli, clean_env):
    text = "Thought: swipe up\nAction: drag(start_point='<point>544 2000</point>', end_point='<point>544 400</point>')"
    proc = run(visagent_cli, text, "--format", "uitars", "--space", "resized", "--screen", "1080x2400",
               "--resized", "1088x2400", "--platform", "phone")
    assert proc.returncode == 0, proc.stderr
    (action,) = json.loads(proc.stdout)["actions"]
    assert action["screen"]["action"] == "swipe"
    assert action["screen"]["coordinate"] == [540, 2000] and action["screen"]["coordinate2"] == [540, 400]


def test_bad_output_prints_one_line_and_exits_2(visagent_cli, clean_env):
    bad = QWEN35.replace("[500, 500]", "[1200, 40]")
    proc = run(visagent_cli, bad, "--screen", "1920x1080")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == "visagent: error: coordinate [1200, 40] is outside the 0..1000 grid"


def test_truncated_output_is_rejected(visagent_cli, clean_env):
    # cut inside the function (no </function>): the call may be missing arguments, so it is refused. A complete
    # function whose </tool_call> alone is missing is accepted, as vLLM's and SGLang's qwen3_coder parsers do.
    proc = run(visagent_cli, QWEN35[:QWEN35.index("</function>")], "--screen", "1920x1080")
    assert proc.returncode == 2 and "truncated tool call" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    lenient = run(visagent_cli, QWEN35[:-len("</tool_call>")], "--screen", "1920x1080")
    assert lenient.returncode == 0 and '"left_click [960, 540]"' in lenient.stdout


def test_bad_flags_are_one_line_errors(visagent_cli, clean_env):
    proc = run(visagent_cli, QWEN35, "--screen", "1920by1080")
    assert proc.returncode == 2 and "--screen must be WIDTHxHEIGHT" in proc.stderr
    proc = run(visagent_cli, QWEN35, "--screen", "1920x1080", "--space", "resized")
    assert proc.returncode == 2 and "--resized WxH" in proc.stderr
    assert "Traceback" not in proc.stderr
