"""`visagent ui`: loopback by default, refuses to expose the dashboard without a login, prints the URL."""

from __future__ import annotations

import os
import signal
import subprocess

import httpx
import pytest

from tests.fixtures.dashboard import free_port, wait_until
from ui.command import check_exposure, is_loopback, parse_auth
from visagent.core.errors import ConfigError


@pytest.mark.parametrize("host, loop", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
                                        ("0.0.0.0", False), ("192.168.1.5", False), ("::", False),
                                        ("example.org", False)])
def test_loopback_hosts(host, loop):
    assert is_loopback(host) is loop


def test_exposure_needs_auth():
    check_exposure("127.0.0.1", None, False)
    check_exposure("0.0.0.0", ("ana", "secret"), False)
    check_exposure("127.0.0.1", ("ana", "secret"), True)
    with pytest.raises(ConfigError, match="--host 0.0.0.0 lets other machines drive this screen; add --auth"):
        check_exposure("0.0.0.0", None, False)
    with pytest.raises(ConfigError, match="--share publishes the dashboard on the internet; add --auth"):
        check_exposure("127.0.0.1", None, True)


@pytest.mark.parametrize("value", ["ana", "ana:", ":secret"])
def test_auth_must_have_both_parts(value):
    with pytest.raises(ConfigError, match="must be USER:PASS"):
        parse_auth(value)
    assert parse_auth("ana:se:cret") == ("ana", "se:cret")


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "visagent: error: --host 0.0.0.0 lets other machines drive this screen; add --auth USER:PASS"),
    (["--share"], "visagent: error: --share publishes the dashboard on the internet; add --auth USER:PASS"),
    (["--host", "0.0.0.0", "--auth", "ana"], "visagent: error: --auth 'ana' must be USER:PASS"),
])
def test_cli_refuses_exposure_without_auth(visagent_bin, clean_env, args, message):
    proc = subprocess.run([visagent_bin, "ui", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(message) and len(proc.stderr.strip().splitlines()) == 1
    assert "Running on" not in proc.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_serves_the_dashboard_and_prints_its_url(visagent_bin, clean_env, sig):
    port = free_port()
    proc = subprocess.Popen([visagent_bin, "ui", "--port", str(port), "--no-preload", "--trace-dir", "runs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        first = proc.stdout.readline()
        assert first.strip() == f"visagent dashboard: http://127.0.0.1:{port}/", (first, proc.stderr.read()
                                                                                 if proc.poll() is not None else "")
        assert "model tiny" in proc.stdout.readline()
        config = wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/config", timeout=10).json(), 30,
                            "the dashboard's config")
        assert config["title"] == "visagent"
        proc.send_signal(sig)  # Ctrl-C, or kill's SIGTERM: both shut the dashboard down cleanly
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_says_when_the_port_is_taken(visagent_bin, clean_env):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([visagent_bin, "ui", "--port", str(port), "--no-preload"], capture_output=True,
                              text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"visagent: error: cannot serve on 127.0.0.1:{port}: the port is taken; pick another --port"


def test_cli_refuses_a_model_that_does_not_exist(visagent_bin, clean_env):
    proc = subprocess.run([visagent_bin, "ui", "--model", "no/such/dir", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("visagent: error: --model 'no/such/dir' is neither 'tiny', an http(s):// URL nor "
                                   "an existing checkpoint directory")


def test_cli_with_auth_requires_the_login(visagent_bin, clean_env):
    from gradio_client import Client

    port = free_port()
    proc = subprocess.Popen([visagent_bin, "ui", "--port", str(port), "--no-preload", "--auth", "ana:s3cret"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip().removeprefix("visagent dashboard: ")
        assert url == f"http://127.0.0.1:{port}/"
        assert httpx.get(url + "config", timeout=30).status_code == 401
        with pytest.raises(Exception, match="(?i)login|auth|401"):
            Client(url, verbose=False)
        runs = Client(url, auth=("ana", "s3cret"), verbose=False).predict(api_name="/list_runs")
        assert runs == []
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
