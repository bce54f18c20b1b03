"""The `visagent` command line skeleton. The installed console script is started once (the version smoke test);
the other tests call `visagent.cli.main` in-process (tests/cli_helpers.py), which prints what the script prints."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import visagent


def run(bin_, *args, env=None, cwd=None):
    return subprocess.run([bin_, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_version_prints_the_package_version(visagent_bin):
    out = run(visagent_bin, "--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"visagent {visagent.__version__}"


def test_help_lists_subcommands(visagent_cli):
    out = visagent_cli("--help")
    assert out.returncode == 0
    assert "config" in out.stdout
    assert "COMMAND" in out.stdout


def test_unknown_subcommand_exits_2(visagent_cli):
    out = visagent_cli("no-such-command")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_config_shows_precedence_end_to_end(visagent_cli, clean_env, tmp_path):
    (clean_env["work"] / "visagent.toml").write_text("max_steps = 5\nexecutor = 'desktop'\n")
    # clean_env: no other VISAGENT_* variable, HOME and the working directory of the test's own
    out = visagent_cli("config", "--json", "--max-steps", "8", env={"VISAGENT_EXECUTOR": "android"})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["max_steps"] == 8  # flag over file
    assert data["executor"] == "android"  # env over file


def test_user_error_is_one_line_without_traceback(visagent_cli, clean_env):
    (clean_env["work"] / "visagent.toml").write_text("bogus = 1\n")
    out = visagent_cli("config")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("visagent: error:") and "bogus" in lines[0]


def test_transformers_chatter_is_quiet_unless_verbose(clean_env, monkeypatch):
    # Without -v a CPU run printed a weight-loading bar and advice to install CUDA-only kernels on every run.
    from visagent.cli import _setup_logging

    for var in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(var, raising=False)
    _setup_logging(1, "WARNING")
    assert "TRANSFORMERS_VERBOSITY" not in os.environ and "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user's own choice wins
    _setup_logging(0, "WARNING")
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_verbose_flag_works_after_the_subcommand_too(visagent_cli, clean_env):
    # `visagent run -v` used to be "unrecognized arguments: -v"; -v adds the traceback to a user error
    proc = visagent_cli("run", "-v", "--scenario", "no-such")
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    assert proc.stderr.splitlines()[-1] == "visagent: error: unknown scenario 'no-such'; see `visagent scenarios list`"


def test_an_unwritable_output_path_is_one_line_whichever_command_hits_it(visagent_cli, clean_env):
    # Commands check their own output paths (here `export --out`); whatever they say, it is one line, exit 2.
    (clean_env["work"] / "afile").write_text("x")
    made = visagent_cli("run", "--policy", "oracle", "--scenario", "desktop-notes-click-save", "--trace-dir", "runs",
                        "--quiet")
    assert made.returncode == 0, made.stderr
    proc = visagent_cli("export", "runs", "--out", "afile/data.jsonl")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("visagent: error: ") and "afile" in lines[0]


def test_cli_safety_net_turns_an_os_error_from_any_command_into_one_line(clean_env, monkeypatch, capsys):
    # A command that forgets to check a path (FileExistsError from mkdir under a file) must not print a traceback.
    import argparse

    from visagent import cli

    (clean_env["work"] / "afile").write_text("x")

    def handler(args):
        Path("afile/sub").mkdir(parents=True)  # relative, as a user passes it

    def build_parser():
        parser = argparse.ArgumentParser(prog="visagent")
        parser.add_argument("-v", "--verbose", action="count", default=0)
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("careless").set_defaults(handler=handler)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)
    assert cli.main(["careless"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["visagent: error: afile is a file, not a folder; check the paths you passed (-v shows where)"]
