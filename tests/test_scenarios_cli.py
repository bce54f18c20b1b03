"""`visagent scenarios list|show|solve`, as a user runs them (in-process, tests/cli_helpers.py)."""

from __future__ import annotations

import json

from PIL import Image


def run(cli, *args, cwd=None):
    return cli("scenarios", *args, cwd=cwd)


def test_list_prints_every_scenario_with_platform_steps_split_and_tags(visagent_cli, tmp_path):
    out = run(visagent_cli, "list", cwd=tmp_path)  # works from any directory
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith(("desktop-", "phone-"))]
    assert len(rows) >= 30
    assert any("phone" in r and "heldout" in r and "difficulty:" in r and "=" not in r for r in rows)
    js = run(visagent_cli, "list", "--json", "--split", "heldout")
    items = [json.loads(line) for line in js.stdout.splitlines()]
    assert items and all(i["split"] == "heldout" for i in items)


def test_show_renders_the_initial_screen(visagent_cli, tmp_path):
    shot = tmp_path / "shot.png"
    out = run(visagent_cli, "show", "phone-files-delete", "--seed", "3", "--out", str(shot), "--elements")
    assert out.returncode == 0, out.stderr
    assert Image.open(shot).size == (1080, 2400)
    assert "Delete" in out.stdout.splitlines()[0]
    assert any(json.loads(line)["role"] == "system_button" for line in out.stdout.splitlines()
               if line.startswith("{"))


def test_solve_runs_the_oracle(visagent_cli):
    out = run(visagent_cli, "solve", "desktop-notes-click-save")
    assert out.returncode == 0, out.stderr
    assert "terminate" in out.stdout and out.stdout.strip().endswith("success")


def test_unknown_id_and_bad_out_are_one_line_errors(visagent_cli, tmp_path):
    out = run(visagent_cli, "show", "no-such", "--out", str(tmp_path / "x.png"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown scenario 'no-such'" in out.stderr
    out = run(visagent_cli, "show", "desktop-notes-click-save", "--out", str(tmp_path / "x.jpg"))
    assert out.returncode == 2 and ".png" in out.stderr


def test_an_out_path_under_a_file_names_the_file(visagent_cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    out = run(visagent_cli, "show", "desktop-notes-click-save", "--out", str(tmp_path / "afile" / "s.png"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert f"{tmp_path / 'afile'} is a file, not a directory" in out.stderr  # was: "cannot write: File exists"
