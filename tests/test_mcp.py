"""`visagent mcp` driven by the official MCP client (the `mcp` SDK 2.x), as an MCP host drives it: the server
is a spawned `python -m visagent mcp` process spoken to over stdio, or over streamable HTTP on loopback.

The sim tests keep a twin world (same scenario and seed) in the test: each action the server reports it ran
(in screen space) is run on the twin the same way, so every screenshot the server returns must equal the
twin's pixel for pixel, and the sim oracle picks the next action from the twin."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image, ImageChops

mcp = pytest.importorskip("mcp", reason="the mcp extra is part of the test extra (pip install -e '.[test]')")

from mcp import Client, StdioServerParameters  # noqa: E402
from mcp_types import ElicitResult  # noqa: E402

from visagent.core.actions import Action  # noqa: E402
from visagent.screen import open_executor  # noqa: E402
from visagent.sim.scenarios import get_scenario  # noqa: E402
from visagent.screen.seam import Screen  # noqa: E402
from visagent.sim.oracle import next_action  # noqa: E402
from visagent.core.trace import read_trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"screenshot", "act", "click", "type_text", "press_keys", "scroll", "list_scenarios", "reset", "run_task"}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGENT_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's visagent, whatever the console script points at
    env.update(extra or {})
    return env


def stdio(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "visagent", "mcp", "--trace-dir", str(tmp_path / "runs"), *args],
                                 env=_env(env), cwd=str(tmp_path))


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visagent", *args], capture_output=True, text=True,
                          env=_env(env), cwd=str(tmp_path), timeout=300)


def image_of(result: Any) -> Image.Image:
    blocks = [b for b in result.content if getattr(b, "type", None) == "image"]
    assert len(blocks) == 1 and blocks[0].mime_type == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(blocks[0].data))) as img:
        return img.convert("RGB")


def data_of(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def error_of(result: Any) -> str:
    assert result.is_error, result.content[0].text[:300]
    return result.content[0].text


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def all_text(result: Any) -> str:
    return "\n".join(getattr(b, "text", "") for b in result.content)


class Twin:
    """The sim world the server should be in: same scenario and seed, driven the way the server drives its own."""

    def __init__(self, scenario_id: str, seed: int | None = None) -> None:
        self.scenario = get_scenario(scenario_id)
        self.executor = open_executor("sim", scenario=scenario_id, seed=seed)
        self.seam = Screen(self.executor)
        self.screen = self.seam.observe().image

    def next_action(self) -> Action:
        return next_action(self.scenario, self.executor.world)

    def run(self, screen_action: dict[str, Any]) -> None:
        result = self.seam.act(Action.from_dict(screen_action), before=self.screen)
        self.screen = result.observation.image

    def solved(self) -> bool:
        return bool(self.scenario.is_success(self.executor.world))


def as_arguments(action: Action) -> dict[str, Any]:
    """The oracle's screen-space action as an MCP client writes it in the default space (screenshot pixels:
    the sim at scale 1 has no offset, so they are the same numbers)."""
    return action.arguments()


# -- stdio: tools, screenshot, solving a scenario through act, the trace, replay, report -------------------------


def test_stdio_solves_a_sim_scenario_step_by_step_and_its_trace_replays(tmp_path):
    sid = "desktop-files-rename"
    twin = Twin(sid)

    async def session() -> dict[str, Any]:
        async with Client(stdio(tmp_path, "--executor", "sim", "--scenario", sid)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == TOOLS
            assert "left_click" in tools["act"].description and "coordinate" in tools["act"].input_schema["properties"]
            shot = await client.call_tool("screenshot", {})
            info = data_of(shot)
            assert info["scenario"] == sid and info["task"] == twin.scenario.instruction_for(twin.executor.world)
            assert info["geometry"]["width"] == 1280 and info["space"] == "absolute"
            assert same(image_of(shot), twin.screen)
            steps = 0
            while True:
                action = twin.next_action()
                result = await client.call_tool("act", as_arguments(action))
                out = data_of(result)
                steps += 1
                assert out["step"] == steps
                if action.action == "terminate":
                    return out | {"steps": steps}
                assert out["executed"] is True and out["policy"]["decision"] == "allowed"
                assert out["action"]["model"]["space"] == "absolute" and out["action"]["screen"]["space"] == "screen"
                twin.run(out["action"]["screen"])
                assert isinstance(out["changed"], bool)
                assert same(image_of(result), twin.screen), f"step {steps}: {action.summary()}"
                assert steps < 30

    end = anyio.run(session)
    assert twin.solved()
    assert end["status"] == "success" and end["world_check"]["goal_met"] is True
    trace = read_trace(end["trace"])
    assert trace.problems == [] and trace.status == "success" and trace.meta["verdict"]["success"] is True
    assert trace.meta["executor"]["scenario"] == sid and trace.meta["model"]["spec"] == "mcp-client"
    assert len(trace.steps) == end["steps"] and trace.steps[-1]["actions"][0]["action"] == "terminate"
    assert all(s["policy"]["decision"] == "allowed" for s in trace.steps)
    replay = cli(tmp_path, "replay", end["trace"])
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replay matched" in replay.stdout and f"{end['steps'] - 1} actions" in replay.stdout
    report = cli(tmp_path, "report", end["trace"], "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    assert sid in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_bad_input_gets_the_cli_message_and_the_server_keeps_running(tmp_path):
    sid = "desktop-settings-wifi-off"
    bad = {"action": "left_click", "coordinate": [5000, 10]}
    do = cli(tmp_path, "do", "--executor", "sim", "--scenario", sid, "--action", json.dumps(bad))
    assert do.returncode == 2
    cli_line = do.stderr.strip().removeprefix("visagent: error: ")

    async def session() -> list[str]:
        async with Client(stdio(tmp_path, "--executor", "sim", "--scenario", sid)) as client:
            before = image_of(await client.call_tool("screenshot", {}))
            errors = [
                error_of(await client.call_tool("act", bad)),
                error_of(await client.call_tool("act", {"action": "explode"})),
                error_of(await client.call_tool("act", {"action": "scroll"})),
                error_of(await client.call_tool("act", {"action": "left_click", "coordinate": "middle"})),
                error_of(await client.call_tool("reset", {"scenario": "no-such-scenario"})),
                error_of(await client.call_tool("act", {"action": "swipe", "coordinate": [1, 2],
                                                        "coordinate2": [3, 4]})),
            ]
            after = image_of(await client.call_tool("screenshot", {}))
            assert same(before, after)  # nothing ran for the bad calls
            assert data_of(await client.call_tool("act", {"action": "wait", "time": 0.2}))["executed"] is True
            return errors

    errors = anyio.run(session)
    assert errors[0] == cli_line and "5000" in cli_line
    assert errors[1].startswith("unknown action 'explode'; expected one of:")
    assert "requires pixels" in errors[2] or "pixels" in errors[2]
    assert "coordinate must be [x, y]" in errors[3]
    assert "no-such-scenario" in errors[4]
    assert "swipe" in errors[5] and "left_click" in errors[5]  # a phone action on a desktop, named
    assert all("\n" not in e and "Traceback" not in e for e in errors)
    traces = list((tmp_path / "runs").iterdir())
    assert len(traces) == 1
    trace = read_trace(traces[0])
    assert [s["actions"][0]["action"] for s in trace.steps] == ["wait"]  # bad calls recorded nothing
    assert trace.status == "stopped" and "session ended" in trace.meta["reason"]


# -- safety: risky actions, elicitation, secrets ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026-07-28 input-required rounds; a pushed request
def test_risky_action_is_denied_without_elicitation_and_asked_with_it(tmp_path, mode):
    sid = "desktop-calculator-multiply"
    risky = {"action": "type", "text": "rm -rf /"}
    asked: list[str] = []
    answers = iter(["decline", "accept"])

    async def elicit(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        action = next(answers)
        return ElicitResult(action=action, content={"approve": True} if action == "accept" else None)

    async def without() -> dict[str, Any]:
        async with Client(stdio(tmp_path, "--executor", "sim", "--scenario", sid), mode=mode) as client:
            return data_of(await client.call_tool("act", risky))

    async def with_elicitation() -> list[dict[str, Any]]:
        params = stdio(tmp_path, "--executor", "sim", "--scenario", sid)
        async with Client(params, elicitation_callback=elicit, mode=mode) as c:
            assert (c.protocol_version >= "2026-07-28") is (mode == "auto")
            first = data_of(await c.call_tool("act", risky))
            second = await c.call_tool("act", risky)
            safe = data_of(await c.call_tool("act", {"action": "type", "text": "1"}))
            return [first, data_of(second) | {"image": image_of(second)}, safe]

    denied = anyio.run(without)
    assert denied["executed"] is False and denied["policy"]["decision"] == "denied"
    assert "rm" in denied["policy"]["reason"] and "elicitation" in denied["policy"]["reason"]
    declined, approved, safe = anyio.run(with_elicitation)
    assert len(asked) == 2 and all("rm -rf" in m for m in asked)  # only the risky ones were asked
    assert declined["executed"] is False and declined["policy"]["decision"] == "denied"
    assert "declined" in declined["policy"]["reason"]
    assert approved["executed"] is True and approved["policy"]["decision"] == "approved"
    assert safe["executed"] is True and safe["policy"]["decision"] == "allowed"
    twin = Twin(sid)
    twin.run(Action("type", text="rm -rf /", space="screen").to_dict())
    assert same(approved["image"], twin.screen)  # the approved text really was typed
    decisions = []
    for path in sorted((tmp_path / "runs").iterdir()):
        decisions.append([s["policy"]["decision"] for s in read_trace(path).steps])
    assert sorted(decisions) == sorted([["denied"], ["denied", "approved", "allowed"]])


def test_secret_is_typed_but_never_returned_or_traced(tmp_path):
    sid = "desktop-calculator-multiply"
    twin = Twin(sid)
    plan = twin.next_action()
    assert plan.action == "type" and plan.text  # the scenario's first step types the expression
    value = plan.text

    async def session() -> tuple[list[str], dict[str, Any]]:
        texts = []
        params = stdio(tmp_path, "--executor", "sim", "--scenario", sid, env={"VISAGENT_SECRET_EXPR": value})
        async with Client(params) as client:
            missing = await client.call_tool("type_text", {"text": "{{secret:NOPE}}"})
            texts.append(error_of(missing))
            result = await client.call_tool("type_text", {"text": "{{secret:EXPR}}"})
            texts.append(all_text(result))
            out = data_of(result)
            assert out["action"]["model"]["text"] == "{{secret:EXPR}}"
            twin.run(Action("type", text=value, space="screen").to_dict())
            assert same(image_of(result), twin.screen)  # the real value reached the screen
            while True:
                action = twin.next_action()
                result = await client.call_tool("act", as_arguments(action))
                texts.append(all_text(result))
                out = data_of(result)
                if action.action == "terminate":
                    return texts, out
                twin.run(out["action"]["screen"])

    texts, end = anyio.run(session)
    assert "VISAGENT_SECRET_NOPE" in texts[0]
    assert end["world_check"]["goal_met"] is True
    assert all(value not in t for t in texts[1:])
    trace_dir = Path(end["trace"])
    for name in ("trace.jsonl", "meta.json"):
        assert value not in (trace_dir / name).read_text(encoding="utf-8"), name
    typed = [s for s in read_trace(trace_dir).steps if s["actions"][0]["action"] == "type"]
    assert typed[0]["actions"][0]["text"] == "{{secret:EXPR}}"
    replay = cli(tmp_path, "replay", str(trace_dir), env={"VISAGENT_SECRET_EXPR": value})
    assert replay.returncode == 0 and "replay matched" in replay.stdout, replay.stdout + replay.stderr


# -- reset, list_scenarios, run_task ----------------------------------------------------------------------------


def test_reset_lists_and_run_task_with_the_oracle(tmp_path):
    async def session() -> dict[str, Any]:
        async with Client(stdio(tmp_path, "--executor", "sim", "--scenario", "desktop-settings-wifi-off")) as client:
            listing = data_of(await client.call_tool("list_scenarios", {}))
            ids = {s["id"] for s in listing["scenarios"]}
            assert "desktop-calculator-multiply" in ids and listing["current"] == "desktop-settings-wifi-off"
            await client.call_tool("act", {"action": "left_click", "coordinate": [364, 169]})
            reset = await client.call_tool("reset", {"scenario": "desktop-calculator-multiply"})
            info = data_of(reset)
            assert info["scenario"] == "desktop-calculator-multiply" and info["previous_trace"]
            assert same(image_of(reset), Twin("desktop-calculator-multiply").screen)
            ran = data_of(await client.call_tool("run_task", {"policy": "oracle"}))
            after = error_of(await client.call_tool("act", {"action": "wait"}))
            return {"ran": ran, "after": after, "previous": info["previous_trace"]}

    out = anyio.run(session)
    ran = out["ran"]
    assert ran["status"] == "success" and ran["world_check"]["goal_met"] is True, ran
    assert "call reset" in out["after"]
    assert read_trace(out["previous"]).status == "stopped" and len(read_trace(out["previous"]).steps) == 1
    replay = cli(tmp_path, "replay", ran["trace"])
    assert replay.returncode == 0 and "replay matched" in replay.stdout, replay.stdout + replay.stderr


def test_run_task_runs_the_configured_model_and_returns_its_trace(tmp_path):
    """The shipped tiny checkpoint (a real qwen3_5_moe, loaded in-process) drives the session's sim world."""
    async def session() -> dict[str, Any]:
        params = stdio(tmp_path, "--executor", "sim", "--scenario", "desktop-settings-wifi-off", "--model", "tiny")
        async with Client(params, read_timeout_seconds=600) as client:
            return data_of(await client.call_tool("run_task", {"max_steps": 2}))

    ran = anyio.run(session)
    trace = read_trace(ran["trace"])
    assert trace.problems == [] and trace.status == ran["status"] and 1 <= ran["steps"] <= 2
    assert trace.meta["model"]["spec"] == "tiny" and trace.meta["model"]["model_type"] == "qwen3_5_moe"
    assert trace.meta["executor"]["scenario"] == "desktop-settings-wifi-off"
    assert ran["world_check"]["goal_met"] is (trace.meta["verdict"]["success"])


def test_space_norm1000_converts_and_reports_both_spaces(tmp_path):
    async def session() -> dict[str, Any]:
        params = stdio(tmp_path, "--executor", "sim", "--scenario", "desktop-settings-wifi-off", "--space", "norm1000")
        async with Client(params) as client:
            return data_of(await client.call_tool("click", {"x": 500, "y": 500}))

    out = anyio.run(session)
    assert out["action"]["model"] == {"action": "left_click", "coordinate": [500, 500], "space": "norm1000"}
    assert out["action"]["screen"]["coordinate"] == [640, 400]
    assert out["action"]["screen"]["mapping"]["factor_x"] == pytest.approx(1.28)


# -- streamable HTTP ------------------------------------------------------------------------------------------


class HttpServer:
    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visagent", "mcp", "--trace-dir", str(tmp_path / "runs"), "--http", "--port", "0",
             *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(), cwd=str(tmp_path))
        self.lines: list[str] = []
        self.url = ""
        found = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"serving (http://\S+/mcp)", line)
                if m:
                    self.url = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(120)
        assert self.url, "".join(self.lines)

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        time.sleep(0.1)
        return "".join(self.lines)


def test_http_on_loopback_serves_the_same_tools(tmp_path):
    server = HttpServer(tmp_path, "--executor", "sim", "--scenario", "desktop-settings-wifi-off")
    try:
        assert server.url.startswith("http://127.0.0.1:")

        async def session() -> tuple[set[str], dict[str, Any], Image.Image]:
            async with Client(server.url) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                shot = image_of(await client.call_tool("screenshot", {}))
                out = await client.call_tool("act", {"action": "left_click", "coordinate": [364, 169]})
                return names, data_of(out), image_of(out)

        names, out, image = anyio.run(session)
    finally:
        log = server.stop()
    assert names == TOOLS
    assert out["executed"] is True and out["changed"] is True
    twin = Twin("desktop-settings-wifi-off")
    twin.run(out["action"]["screen"])
    assert same(image, twin.screen)
    assert "trace" in log
    traces = list((tmp_path / "runs").iterdir())
    assert len(traces) == 1 and read_trace(traces[0]).status == "stopped"  # finished on SIGTERM
    replay = cli(tmp_path, "replay", str(traces[0]))
    assert replay.returncode == 0, replay.stdout + replay.stderr


def test_http_token_is_required_when_set(tmp_path):
    import httpx2

    server = HttpServer(tmp_path, "--executor", "sim", "--auth-token", "s3cret-token")
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        refused = httpx2.post(server.url, json=body, headers=headers, timeout=30)
        wrong = httpx2.post(server.url, json=body, headers=headers | {"authorization": "Bearer nope"}, timeout=30)

        async def session() -> set[str]:
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers={"authorization": "Bearer s3cret-token"}, timeout=60)
            async with http, Client(streamable_http_client(server.url, http_client=http)) as client:
                return {t.name for t in (await client.list_tools()).tools}

        names = anyio.run(session)
    finally:
        server.stop()
    assert refused.status_code == 401 and wrong.status_code == 401
    assert names == TOOLS


def test_http_refuses_a_public_address_without_a_token_and_stdio_refuses_http_flags(tmp_path):
    out = cli(tmp_path, "mcp", "--http", "--host", "0.0.0.0", "--port", "0")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "non-loopback" in out.stderr and "--auth-token" in out.stderr
    out = cli(tmp_path, "mcp", "--port", "9999")
    assert out.returncode == 2 and "apply to --http" in out.stderr
    out = cli(tmp_path, "mcp", "--executor", "desktop", "--scenario", "desktop-settings-wifi-off")
    assert out.returncode == 2 and "--scenario" in out.stderr and "Traceback" not in out.stderr


# -- a real desktop: Xvfb and xterm ------------------------------------------------------------------------------


def test_desktop_types_a_secret_into_a_real_xterm(xserver, tmp_path):
    out_file = tmp_path / "typed.txt"
    title = f"mcp-{time.monotonic_ns()}"
    env = _env({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "DISPLAY": xserver.display,
                "VISAGENT_SECRET_WORD": "hunter2-Zq"})
    term = subprocess.Popen(["xterm", "-u8", "-T", title, "-geometry", "60x5+200+200", "-e", "sh", "-c",
                             f'read line; printf %s "$line" > {out_file}'], env=env)
    try:
        subprocess.run(["xdotool", "search", "--sync", "--name", title], env=env, timeout=15, capture_output=True,
                       check=True)
        time.sleep(0.3)

        async def session() -> tuple[dict[str, Any], dict[str, Any], str]:
            params = StdioServerParameters(command=sys.executable, args=[
                "-m", "visagent", "mcp", "--executor", "desktop", "--trace-dir", str(tmp_path / "runs")],
                env=env, cwd=str(tmp_path))
            async with Client(params) as client:
                info = data_of(await client.call_tool("screenshot", {}))
                await client.call_tool("click", {"x": 300, "y": 230})
                typed = await client.call_tool("act", {"action": "type", "text": "{{secret:WORD}}\n"})
                return info, data_of(typed), all_text(typed)

        info, typed, text = anyio.run(session)
        term.wait(timeout=15)
    finally:
        if term.poll() is None:
            term.kill()
            term.wait()
    assert info["executor"] == "desktop" and info["geometry"]["width"] == xserver.width
    assert typed["executed"] is True and typed["result"]["ok"] is True
    assert out_file.read_text(encoding="utf-8") == "hunter2-Zq"  # the real program got the real value
    assert "hunter2" not in text
    (trace_dir,) = list((tmp_path / "runs").iterdir())
    trace = read_trace(trace_dir)
    assert trace.meta["executor"]["name"] == "desktop" and len(trace.steps) == 2
    assert "hunter2" not in (trace_dir / "trace.jsonl").read_text(encoding="utf-8")
    assert trace.steps[1]["actions"][0]["text"] == "{{secret:WORD}}\n"


# -- an Android phone over adb (the suite's fake adb program emulates the phone) ----------------------------------


def test_android_serves_the_mobile_use_vocabulary_over_adb(tmp_path, monkeypatch):
    from tests.fixtures.fake_adb import use_fake_adb

    phone = use_fake_adb(tmp_path, monkeypatch)  # first on PATH for the server the test spawns
    target = next(e for e in phone.world().visible_elements() if e.role in ("button", "icon", "toggle", "row"))
    x, y = target.center

    async def session() -> tuple[dict[str, Any], str, dict[str, Any]]:
        async with Client(stdio(tmp_path, "--executor", "android")) as client:
            info = data_of(await client.call_tool("screenshot", {}))
            wrong = error_of(await client.call_tool("act", {"action": "left_click", "coordinate": [x, y]}))
            tapped = data_of(await client.call_tool("click", {"x": x, "y": y}))
            return info, wrong, tapped

    info, wrong, tapped = anyio.run(session)
    assert info["platform"] == "phone" and info["tool"] == "mobile_use" and info["executor"] == "android"
    assert wrong.startswith("unknown action 'left_click'") and "click" in wrong
    assert tapped["executed"] is True and tapped["action"]["model"]["action"] == "click"
    sx, sy = tapped["action"]["screen"]["coordinate"]
    assert f"input tap {round(sx)} {round(sy)}" in phone.shell_lines()
    (trace_dir,) = list((tmp_path / "runs").iterdir())
    meta = read_trace(trace_dir).meta
    assert meta["executor"]["name"] == "android" and meta["executor"]["serial"] == "emulator-5554"
