"""`visagent run` as a user runs it: live progress, final status line, trace path, exit codes."""

from __future__ import annotations

import subprocess

from visagent.core.trace import read_trace


def run_cli(visagent_bin, *args, cwd=None):
    return subprocess.run([visagent_bin, "run", *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, cwd=cwd)


def test_run_with_the_oracle_policy_solves_and_prints_progress(visagent_bin, clean_env, tmp_path):
    proc = run_cli(visagent_bin, "--scenario", "desktop-settings-wifi-off", "--policy", "oracle",
                   "--trace-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "task: Turn off Wi-Fi in Settings." in out
    assert "── step 1" in out and "action: left_click" in out and "(model norm1000 [" in out
    assert "result: ok, screen changed" in out
    status_line = [line for line in out.splitlines() if line.startswith("success:")]
    assert status_line and status_line[0].endswith("steps)")
    assert "world check: the scenario's goal is met" in out
    trace_path = out.strip().splitlines()[-1].removeprefix("trace: ")
    trace = read_trace(trace_path)
    assert trace.meta["status"] == "success" and trace.meta["executor"]["scenario"] == "desktop-settings-wifi-off"
    assert trace.meta["verdict"] == {"success": True, "by": "scenario.is_success", "side_effects": []}


def test_run_checks_the_world_not_only_the_model_s_claim(visagent_bin, clean_env, tmp_path, stub_factory):
    # A model that says "done" at once: its status is success, the sim world says the goal is not met, and the
    # trace keeps the world's verdict (what `visagent report` shows and `visagent export` filters on).
    from tests.fixtures.openai_stub import Reply, delta_chunk

    done = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
            "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")
    server = stub_factory([Reply(chunks=[delta_chunk({"content": done}, "stop")])] * 2)
    model = ("--model", server.url, "--model-name", "stub", "--trace-dir", str(tmp_path), "--quiet")
    proc = run_cli(visagent_bin, "--scenario", "desktop-settings-wifi-off", *model)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("success:") and lines[1] == (
        "world check: the scenario's goal is NOT met (the status above is the model's own claim)"), proc.stdout
    assert proc.returncode == 1  # the world decides the exit code on a scenario's own task, not the model's claim
    trace = read_trace(lines[-1].removeprefix("trace: "))
    assert trace.meta["verdict"] == {"success": False, "by": "scenario.is_success", "side_effects": []}
    # a task the user typed is not the scenario's: the scenario's predicate does not judge it
    proc = run_cli(visagent_bin, "open the calculator", "--scenario", "desktop-settings-wifi-off", *model)
    assert proc.returncode == 0 and "world check" not in proc.stdout, proc.stdout + proc.stderr
    assert "no check: the status above is the model's own claim" in proc.stdout  # whose word `success` is
    assert "verdict" not in read_trace(proc.stdout.splitlines()[-1].removeprefix("trace: ")).meta


def test_run_hitting_the_step_limit_exits_1(visagent_bin, clean_env, tmp_path):
    proc = run_cli(visagent_bin, "--scenario", "desktop-settings-wifi-off", "--policy", "oracle",
                   "--max-steps", "1", "--trace-dir", str(tmp_path), "--quiet")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "max_steps: reached the step limit (1) (1 step)"


def test_a_scenario_s_goal_met_at_the_step_limit_exits_0(visagent_bin, clean_env, tmp_path):
    # The oracle's two acting steps meet the goal; the limit stops it before its terminate. `visagent eval` counts
    # this as a success (the world is checked, not the model's status) and so does the exit code.
    proc = run_cli(visagent_bin, "--scenario", "desktop-settings-wifi-off", "--policy", "oracle",
                   "--max-steps", "2", "--trace-dir", str(tmp_path), "--quiet")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("max_steps:") and lines[1] == "world check: the scenario's goal is met", proc.stdout
    assert proc.returncode == 0


def test_user_mistakes_are_one_line_errors(visagent_bin, clean_env, tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli(visagent_bin, "--scenario", "no-such-scenario", "--trace-dir", str(runs))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no-such-scenario" in proc.stderr
    proc = run_cli(visagent_bin, "do it", "--executor", "desktop", "--scenario", "desktop-settings-wifi-off",
                   "--trace-dir", str(runs))
    assert proc.returncode == 2 and "--scenario" in proc.stderr and proc.stderr.count("\n") == 1
    assert not runs.exists()


def test_model_text_cannot_send_escape_sequences_to_the_terminal():
    from visagent.commands.run import _printable

    assert _printable("a\x1b[2Jb\nc\td\x07") == "a\ufffd[2Jb c d\ufffd"
