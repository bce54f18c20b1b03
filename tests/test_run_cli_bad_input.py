"""`visagent run` with bad input and interruptions, as a user meets them: one `visagent: error:` line and
exit 2 before anything starts, or a clean stop that leaves a finished, readable trace."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.openai_stub import Reply, chat_body, delta_chunk
from visagent.core.trace import read_trace

SCENARIO = "desktop-notes-click-save"


def run_cli(visagent_bin, *args, env=None):
    return subprocess.run([visagent_bin, "run", *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env=env)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("visagent: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_trace_dir_that_is_a_file_is_refused_before_the_run(visagent_bin, clean_env):
    (clean_env["work"] / "afile").write_text("not a directory")
    proc = run_cli(visagent_bin, "--scenario", SCENARIO, "--policy", "oracle", "--trace-dir", "afile/runs")
    assert_one_line_error(proc, "--trace-dir", "afile")
    assert proc.stdout == ""  # refused before the run started: no task line, no status line


@pytest.mark.parametrize("spec, needle", [
    ("http://127.0.0.1:abc/v1", "not a valid server URL"),
    ("http://127.0.0.1:99999/v1", "not a valid server URL"),
    ("/no/such/checkpoint", "neither 'tiny'"),
])
def test_a_bad_model_spec_is_one_line(visagent_bin, clean_env, spec, needle):
    proc = run_cli(visagent_bin, "--scenario", SCENARIO, "--model", spec, "--trace-dir", "runs")
    assert_one_line_error(proc, needle)
    assert not (clean_env["work"] / "runs").exists()


def test_an_unreachable_server_is_one_line_after_its_retries(visagent_bin, clean_env):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli(visagent_bin, "--scenario", SCENARIO, "--model", f"http://127.0.0.1:{port}/v1", "--trace-dir", "runs")
    assert_one_line_error(proc, "failed after 4 attempts", "Connection refused")  # retries are not logged first
    assert not (clean_env["work"] / "runs").exists()


def test_a_closed_display_or_no_adb_is_one_line_before_the_model_loads(visagent_bin, clean_env, tmp_path):
    env = dict(os.environ, DISPLAY=":87")  # no X server there
    proc = run_cli(visagent_bin, "click OK", "--executor", "desktop", "--trace-dir", "runs", env=env)
    assert_one_line_error(proc, "':87'")
    env.pop("DISPLAY")
    proc = run_cli(visagent_bin, "click OK", "--executor", "desktop", "--trace-dir", "runs", env=env)
    assert_one_line_error(proc, "DISPLAY is not set")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env["PATH"] = str(empty)  # no adb anywhere
    proc = run_cli(visagent_bin, "open notes", "--executor", "android", "--trace-dir", "runs", env=env)
    assert_one_line_error(proc, "adb not found")
    assert not (clean_env["work"] / "runs").exists()


@pytest.mark.parametrize("flags, needle", [
    (("--executor", "desktop", "--seed", "3"), "--seed sets up the sim world"),
    (("--executor", "sim", "--serial", "emulator-5554"), "--serial picks an Android device"),
    (("--executor", "android", "--monitor", "2"), "--monitor picks a desktop screen"),
])
def test_flags_of_another_executor_are_refused(visagent_bin, clean_env, flags, needle):
    proc = run_cli(visagent_bin, "click OK", *flags, "--policy", "oracle", "--trace-dir", "runs")
    assert_one_line_error(proc, needle)


def test_a_checkpoint_dir_without_config_is_one_line(visagent_bin, clean_env):
    (clean_env["work"] / "ckpt").mkdir()
    proc = run_cli(visagent_bin, "--scenario", SCENARIO, "--model", "ckpt")
    assert_one_line_error(proc, "config.json")


def _models(*names):
    return Reply(body={"object": "list", "data": [{"id": n, "object": "model"} for n in names]})


def test_model_name_and_api_key_reach_the_server(visagent_bin, clean_env, stub_factory):
    answer = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
              "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")
    # the server serves two models: without --model-name the run could not choose
    server = stub_factory(lambda record: _models("qwen3.5-35b", "qwen3.5-122b") if record["path"].endswith("/models")
                  else Reply(chunks=[delta_chunk({"content": answer}, "stop")]))  # the agent streams
    # a typed task: the model's "done" ends it with exit 0 (on the scenario's own task the world would decide)
    proc = run_cli(visagent_bin, "open notes", "--scenario", SCENARIO, "--model", server.url,
                   "--model-name", "qwen3.5-35b", "--api-key", "k123", "--trace-dir", "runs", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert [r["path"] for r in server.requests] == ["/v1/models", "/v1/chat/completions"]
    request = server.requests[1]
    assert request["json"]["model"] == "qwen3.5-35b"
    assert request["headers"]["Authorization"] == "Bearer k123"


def test_a_model_name_the_server_does_not_list_fails_before_the_run(visagent_bin, clean_env, stub_factory):
    server = stub_factory([_models("tiny")])
    proc = run_cli(visagent_bin, "--scenario", SCENARIO, "--model", server.url, "--model-name", "qwen3.5-35b",
                   "--trace-dir", "runs")
    assert_one_line_error(proc, "does not serve model 'qwen3.5-35b'", "it serves: tiny")
    assert not (clean_env["work"] / "runs").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_run_and_finishes_its_trace(visagent_bin, clean_env, stub_factory, sig):
    # SIGTERM (kill, a scheduler) takes the same path as Ctrl-C: the trace ends as stopped, not as "running"
    server = stub_factory(lambda record: _models("stub") if record["path"].endswith("/models")
                  else Reply(body=chat_body("never sent"), delay_s=60))  # the model "thinks" for a minute
    proc = subprocess.Popen([visagent_bin, "run", "--scenario", SCENARIO, "--model", server.url,
                             "--model-name", "stub", "--trace-dir", "runs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(server.requests) < 2 and time.monotonic() < deadline:  # until the model call is in flight
            time.sleep(0.05)
        assert len(server.requests) == 2, "the run never called the model"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "stopped: stopped by the user (1 step)" in out
    trace_dir = out.strip().splitlines()[-1].removeprefix("trace: ")
    trace = read_trace(trace_dir)
    assert trace.meta["status"] == "stopped" and trace.meta["ended_at"]
    last = json.loads((clean_env["work"] / trace_dir / "trace.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "run_finished" and last["status"] == "stopped"


TERMINATE = ("<tool_call>\n<function=mobile_use>\n<parameter=action>\nterminate\n</parameter>\n"
             "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")


def test_serial_picks_one_of_several_phones(visagent_bin, clean_env, stub_factory, monkeypatch):
    # A FAKE adb (tests/fakes/adb: no emulator runs here) with two phones; the error used to ask for a
    # --serial flag that `visagent run` did not have.
    fakes = Path(__file__).resolve().parent / "fakes"
    monkeypatch.setenv("PATH", f"{fakes}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_DIR", str(clean_env["work"] / "phone"))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554:device,emulator-5556:device")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    server = stub_factory([Reply(chunks=[delta_chunk({"content": TERMINATE}, "stop")])])
    model = ("--model", server.url, "--model-name", "stub", "--trace-dir", "runs", "--quiet")
    proc = run_cli(visagent_bin, "open notes", "--executor", "android", *model)
    assert_one_line_error(proc, "several Android devices", "--serial")
    proc = run_cli(visagent_bin, "open notes", "--executor", "android", "--serial", "emulator-5556", *model)
    assert proc.returncode == 0, proc.stderr
    trace = read_trace(proc.stdout.strip().splitlines()[-1].removeprefix("trace: "))
    assert trace.meta["executor"]["name"] == "android" and trace.meta["executor"]["serial"] == "emulator-5556"


def test_ctrl_c_while_a_risky_action_waits_for_y_n_stops_the_run(visagent_bin, clean_env, stub_factory):
    # The y/n question reads the terminal on the agent's thread; Ctrl-C used to leave it blocked there, so
    # the run never finished and its trace stayed 'running'. A real pseudo-terminal makes the run interactive.
    import pty
    import threading

    risky = ("<tool_call>\n<function=computer_use>\n<parameter=action>\ntype\n</parameter>\n"
             "<parameter=text>\nrm -rf /tmp/everything\n</parameter>\n</function>\n</tool_call>")
    server = stub_factory(lambda record: _models("stub") if record["path"].endswith("/models")
                  else Reply(chunks=[delta_chunk({"content": risky}, "stop")]))
    leader, follower = pty.openpty()
    proc = subprocess.Popen([visagent_bin, "run", "--scenario", SCENARIO, "--model", server.url, "--model-name",
                             "stub", "--trace-dir", "runs"], stdin=follower, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    os.close(follower)
    out = bytearray()
    def read_all() -> None:
        for chunk in iter(lambda: proc.stdout.read1(4096), b""):
            out.extend(chunk)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while b"run it? [y/N]" not in out and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert b"run it? [y/N]" in out, out.decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(5)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    text = out.decode()
    assert proc.returncode == 130, (text, proc.stderr.read())
    assert "stopped: stopped by the user (1 step)" in text
    trace = read_trace(text.strip().splitlines()[-1].removeprefix("trace: "))
    assert trace.meta["status"] == "stopped"
    assert trace.steps[0].get("executed") in (None, False, [])  # the risky text was never typed


def test_a_reader_that_goes_away_does_not_fill_stderr_with_tracebacks(visagent_bin, clean_env, stub_factory):
    # `visagent run ... | head -1`: every later event used to log a BrokenPipeError traceback
    done = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
            "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")
    # the model answers only after a second: by then the reader below has surely left
    server = stub_factory(lambda record: _models("stub") if record["path"].endswith("/models")
                  else Reply(chunks=[delta_chunk({"content": done}, "stop")], delay_s=1.0))
    # a typed task, so the model's "done" is the end (on the scenario's own task the world check decides the exit code)
    proc = subprocess.Popen([visagent_bin, "run", "open notes", "--scenario", SCENARIO, "--model", server.url,
                             "--model-name",
                             "stub", "--trace-dir", "runs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout.readline().startswith(b"task: ")
    proc.stdout.close()  # the reader leaves after the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert err == ""
    (trace,) = (clean_env["work"] / "runs").iterdir()
    assert read_trace(trace).meta["status"] == "success"  # the run itself went on to the end


def test_a_control_line_starts_on_its_own_line_after_streamed_text():
    import io

    from visagent.loop import events as E
    from visagent.commands.run import ProgressPrinter

    out = io.StringIO()
    printer = ProgressPrinter(out, interactive=False)
    printer(E.ModelDelta(1, "answer", "half a thought"))
    printer(E.ControlEvent("stop", ""))
    assert out.getvalue() == "  model: half a thought\n  [stop]\n"
