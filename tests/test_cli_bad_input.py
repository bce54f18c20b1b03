"""Bad input to `visagent serve` and `visagent model-info`: one `visagent: error:` line, exit 2, and no
minutes spent loading a model first."""

from __future__ import annotations

import socket


def cli(visagent_cli, *args):
    return visagent_cli(*args)


def test_serve_on_a_taken_port_fails_before_loading_the_model(visagent_cli, clean_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # --device nonsense would fail the model load: reaching it would give another error than the port's
        proc = cli(visagent_cli, "serve", "--model", "tiny", "--port", str(port), "--device", "no-such-device")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"visagent: error: cannot listen on 127.0.0.1:{port} (Address already in "
                                        "use); choose another --port or stop the process using it"]


def test_model_info_on_a_server_url_says_it_needs_a_local_checkpoint(visagent_cli, clean_env):
    proc = cli(visagent_cli, "model-info", "http://gpu-host:8000/v1")
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "is a server URL" in proc.stderr


def test_a_screenshot_window_below_one_is_refused_before_any_work(visagent_cli, clean_env, tmp_path):
    """`--history-images 0` on the commands that write or train on records: one line (the settings' check, shared
    by every command that takes the option), exit 2, nothing written."""
    for command in ("train-data", "train-tiny", "export"):
        out = tmp_path / command
        args = [command, "--out", str(out), "--history-images", "0"]
        proc = cli(visagent_cli, *(args[:1] + [str(tmp_path)] + args[1:] if command == "export" else args))
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.splitlines() == ["visagent: error: history_images must be at least 1, got 0"], command
        assert not out.exists()
