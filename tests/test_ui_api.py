"""The dashboard's API, driven with gradio_client against the real app launched on a free loopback port."""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client

from tests.fixtures.dashboard import SCENARIO, launched, make_dashboard, slow_waits, wait_until


# gradio's queue builds pandas frames with options pandas 3 deprecates: its noise, not ours
pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui-api-runs")
    dash = make_dashboard(root, {"scripted-slow": slow_waits})
    with launched(dash) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def status(client, run_id):
    return client.predict(run_id, api_name="/run_status")


def finished(client, run_id, timeout_s=60.0):
    return wait_until(lambda: (s := status(client, run_id))["status"] and s, timeout_s, f"{run_id} to finish",
                      every_s=0.3)


def test_the_page_is_served_on_loopback(app_url):
    assert app_url.startswith("http://127.0.0.1:")
    assert httpx.get(app_url, timeout=30).status_code == 200
    config = httpx.get(app_url + "config", timeout=30).json()
    assert config["title"] == "visagent"
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"Run", "Traces", "Grounding", "Scenarios"} <= labels
    assert any(str(label).startswith("The scenario's first screen") for label in labels)  # the screen before Start


def test_oracle_run_streams_events_and_lands_in_the_trace_list(client):
    started = client.predict("Switch the system to dark mode.", SCENARIO, "oracle", api_name="/start_run")
    assert "run_id" in started, started
    snap = finished(client, started["run_id"])
    assert snap["status"] == "success", snap
    assert snap["has_screenshot"] and snap["screenshots"] >= snap["step"] >= 2
    log = "\n".join(snap["log"])
    assert "action: left_click" in log and "result: ok, screen changed" in log
    assert len(snap["timings"]) == snap["step"]
    runs = client.predict(api_name="/list_runs")
    mine = [r for r in runs if r["trace_dir"] == snap["trace_dir"]]
    assert mine and mine[0]["status"] == "success" and mine[0]["steps"] == snap["step"]


def test_stop_and_one_run_per_executor(client):
    first = client.predict("Wait a while.", SCENARIO, "scripted-slow", max_steps=40, api_name="/start_run")
    wait_until(lambda: status(client, first["run_id"])["step"] >= 1, 30, "the first step")
    second = client.predict("Switch the system to dark mode.", SCENARIO, "oracle", api_name="/start_run")
    assert "is already driven by run" in second["error"] and "stop that run first" in second["error"]
    assert client.predict(first["run_id"], "stop", api_name="/control_run") == "stop: done"
    snap = finished(client, first["run_id"])
    assert snap["status"] == "stopped" and "[stop]" in "\n".join(snap["log"])
    again = client.predict("Switch the system to dark mode.", SCENARIO, "oracle", api_name="/start_run")
    assert finished(client, again["run_id"])["status"] == "success"


def test_bad_requests_get_one_line_answers(client):
    assert "the task is empty" in client.predict(" ", SCENARIO, "oracle", api_name="/start_run")["error"]
    assert client.predict("run-999", api_name="/run_status")["error"].startswith("no run 'run-999'")
    assert client.predict("run-999", "stop", api_name="/control_run") == "no run 'run-999'"


def test_unknown_scenario_ends_the_run_with_a_clear_error(client):
    started = client.predict("x", "no-such-scenario", "oracle", api_name="/start_run")
    snap = finished(client, started["run_id"])
    assert snap["status"] == "error" and "unknown scenario 'no-such-scenario'" in snap["reason"]


@pytest.mark.x11
def test_a_real_desktop_scenario_through_the_api(client, tmp_path, monkeypatch):
    # /start_run with a real-desktop id: the same form path as the Run tab (its own Xvfb and xterm, the oracle)
    from visagent.realworld.registry import get_real_scenario

    monkeypatch.setenv("VISAGENT_REAL_STATE", str(tmp_path / "state"))  # the app runs in this process
    task = get_real_scenario("xterm-write-file").instruction
    started = client.predict(task, "xterm-write-file", "oracle", "sim", -1, 6, api_name="/start_run")
    snap = finished(client, started["run_id"], 120)
    assert snap["status"] == "success" and snap["executor"] == "real-desktop · xterm-write-file", snap["reason"]
    snap = wait_until(lambda: (s := status(client, started["run_id"]))["verdict"] and s, 30, "the world check")
    assert snap["verdict"] == "met" and "world check: the scenario's goal is met (real state)" in snap["log"]


def test_scenario_suite_with_the_oracle(client):
    started = client.predict("train", "easy", "oracle", 1, 2, api_name="/start_suite")
    assert started.get("total", 0) >= 1, started
    done = wait_until(lambda: (s := client.predict(api_name="/suite_status"))["finished"] and s, 120,
                      "the suite to finish", every_s=0.5)
    assert done["done"] == done["total"] == started["total"]
    assert done["successes"] == done["total"], done["rows"]
    assert all(r["success"] == "✔" and r["trace"] for r in done["rows"])
