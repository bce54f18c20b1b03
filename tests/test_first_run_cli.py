"""First-run CLI behaviour (issue 41): refusals with one line and exit 2, one tag syntax, `eval --min-success`,
`visagent config` as valid TOML with each value's source. Run in-process through `visagent.cli.main`, so the code
under test is this checkout's."""

from __future__ import annotations

import tomllib

import pytest

from visagent.cli import main


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("visagent: error: "), err
    return lines[0]


def test_the_oracle_refuses_a_task_that_is_not_its_scenarios(clean_env, capsys):
    # It used to play the default scenario's script (Wi-Fi, Notes...) and print `success` for "open the calculator".
    code = main(["run", "open the calculator", "--policy", "oracle", "--trace-dir", "runs"])
    assert code == 2
    line = one_error_line(capsys)
    assert "the scripted oracle plays scenario" in line and "'open the calculator'" in line
    assert not (clean_env["work"] / "runs").exists()  # refused before any trace was started


def test_the_oracle_still_plays_its_own_task_given_in_words(clean_env, capsys):
    code = main(["run", "Turn off Wi-Fi in Settings.", "--scenario", "desktop-settings-wifi-off", "--policy", "oracle",
                 "--trace-dir", "runs", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "world check: the scenario's goal is met" in out


def test_scenarios_list_prints_tags_in_the_syntax_its_filter_takes(clean_env, capsys):
    assert main(["scenarios", "list"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith(("desktop-", "phone-"))]
    assert rows and all("=" not in r for r in rows)
    settings_rows = [r.split()[0] for r in rows if "app:settings" in r.split()]
    assert settings_rows
    # the tag as printed filters the list, in `scenarios list` and in `eval`
    assert main(["scenarios", "list", "--tags", "app:settings"]) == 0
    filtered = [r.split()[0] for r in capsys.readouterr().out.splitlines() if r.startswith(("desktop-", "phone-"))]
    assert filtered == settings_rows
    from visagent.commands.eval import select_scenarios

    assert [s.id for s in select_scenarios([], None, ["app:settings"])] == settings_rows


@pytest.mark.parametrize("argv", [["scenarios", "list", "--tags", "app=settings"],
                                  ["eval", "--policy", "oracle", "--tags", "app=settings", "--no-traces"]])
def test_a_tag_written_key_equals_value_is_refused_naming_the_right_spelling(clean_env, capsys, argv):
    assert main(argv) == 2
    assert "write tags as key:value (app:settings)" in one_error_line(capsys)


def test_an_unknown_tag_lists_the_known_ones_in_the_same_syntax(clean_env, capsys):
    assert main(["scenarios", "list", "--tags", "app:nosuchapp"]) == 2
    line = one_error_line(capsys)
    assert "app:nosuchapp" in line and "known tags:" in line and "app:settings" in line and "=" not in line


def test_eval_exits_1_below_min_success_and_0_at_or_above(clean_env, capsys):
    base = ["eval", "desktop-settings-wifi-off", "--seeds", "1", "--no-traces", "--no-progress"]
    # the oracle solves it: 100% >= 100%
    assert main([*base, "--policy", "oracle", "--min-success", "1.0"]) == 0
    capsys.readouterr()
    # the tiny demo model does not solve it within two steps: 0% < 50%
    code = main([*base, "--model", "tiny", "--max-steps", "2", "--min-success", "50%"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "success rate (goal met) 0% is below --min-success 50%" in captured.err
    table = captured.out
    assert "goal met" in table.splitlines()[0]
    failed = [line for line in table.splitlines() if line.startswith("failed: desktop-settings-wifi-off seed 0")]
    assert failed and "goal NOT met" in failed[0]
    # without --min-success a 0% evaluation still exits 0 (a measurement, not a gate)
    assert main([*base, "--model", "tiny", "--max-steps", "1"]) == 0


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "most", "120%"])
def test_min_success_outside_0_to_1_is_refused_before_anything_runs(clean_env, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--policy", "oracle", "--min-success", bad])
    assert exc.value.code == 2
    assert "--min-success" in capsys.readouterr().err


def test_config_prints_valid_toml_with_each_values_source(clean_env, capsys, monkeypatch):
    (clean_env["work"] / "visagent.toml").write_text('executor = "desktop"\nhistory_images = 2\n'
                                                     '[safety]\nrisky_thought_words = ["pay"]\n')
    monkeypatch.setenv("VISAGENT_MAX_SECONDS", "30")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    assert main(["config", "--max-steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "None" not in out
    assert not [line for line in out.splitlines() if " = (" in line and not line.startswith("#")]  # no tuples
    assert "sk-secret-value" not in out
    data = tomllib.loads(out)  # valid TOML, as visagent.toml would hold it
    assert data["max_steps"] == 4 and data["executor"] == "desktop" and data["max_seconds"] == 30.0
    assert data["safety"]["risky_thought_words"] == ["pay"]
    assert isinstance(data["safety"]["risky_hotkeys"], list) and "model_name" not in data and "api_key" not in data
    lines = {line.split(" = ")[0].lstrip("# "): line for line in out.splitlines() if " = " in line}
    assert lines["max_steps"].endswith("# flag (--max-steps)")
    assert lines["max_seconds"].endswith("# env (VISAGENT_MAX_SECONDS)")
    assert lines["executor"].endswith("# file") and lines["risky_thought_words"].endswith("# file")
    assert lines["model"].endswith("# default") and lines["model_name"] == "# model_name = (not set)  # default"
    assert lines["api_key"].startswith("# api_key = (set, not shown)  # env")
    # the printed file read back gives the same settings
    (clean_env["work"] / "visagent.toml").write_text(out)
    monkeypatch.delenv("VISAGENT_MAX_SECONDS")
    assert main(["config", "--json"]) == 0
    import json

    again = json.loads(capsys.readouterr().out)
    assert again["max_steps"] == 4 and again["max_seconds"] == 30.0 and again["history_images"] == 2


def test_setup_sh_says_what_it_does_and_shows_pips_log_only_when_a_step_fails(tmp_path):
    # A copy of the script in a folder whose .venv has no pip: the first install step fails offline. The user sees
    # the step lines, then the failure with the tail of the log, not pip's progress noise on every run.
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "scripts").mkdir()
    shutil.copy(repo / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(repo / "pyproject.toml", tmp_path / "pyproject.toml")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    proc = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["setup: upgrading pip"]
    assert proc.stderr.startswith("setup: FAILED while upgrading pip; the last lines of .venv/setup.log:")
    assert "No module named pip" in proc.stderr
