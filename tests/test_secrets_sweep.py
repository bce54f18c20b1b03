"""Secrets never leave the executor in any form (issue 42, item 2): runs on the sim, a real X desktop (Xvfb) and
the fake adb phone type a secret and make the executor quote it in its messages and errors (`!r`-escaped,
cut off at 20 or 57 characters); every output of the run is then swept for the value written in any way.

Swept: every file of the trace (meta.json, trace.jsonl, report.html, PNG bytes), what `visagent run` prints
(its ProgressPrinter), every event as dicts and reprs, the RunResult, all log records, and what
`visagent replay` prints for the trace, its log and its files.
"""

from __future__ import annotations

import html
import io
import json
import logging
import shlex

import pytest

from tests.agent_helpers import DONE, EventLog, sim, xml
from tests.fixtures.fake_adb import use_fake_adb
from visagent.loop.agent import Agent, AgentConfig
from visagent.commands.run import ProgressPrinter
from visagent.loop.policy import MIN_SECRET_PREFIX
from visagent.traces.report import write_report
from visagent.loop.scripted import ScriptedEngine

# A quote of each kind, backslashes (and a `$`), non-ASCII and long (cut off by `text[:20]!r`, `summary()`'s 57).
VALUES = {
    "quote": "Qu'ote\"d-Secret-91",
    "backslash": "C:\\Users\\me\\pa$$-back\\slash",
    "unicode": "pässwörd-日本語-€-" + "x" * 50 + "-end",
}
TYPE = xml("type", text="{{secret:PW}}")
OPEN = xml("open", text="{{secret:PW}}")


def leak_forms(value: str) -> set[str]:
    """The value written as is, escaped by Python (repr, ascii, either quote) or JSON, HTML-escaped, and each
    form's start of MIN_SECRET_PREFIX characters (a cut-off value)."""
    def forms(v: str) -> set[str]:
        out = {v, repr(v)[1:-1], ascii(v)[1:-1], json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1],
               repr(v + "'\"")[1:-3], ascii(v + "'\"")[1:-3]}
        return out | {html.escape(f) for f in out} | {html.escape(f, quote=False) for f in out}

    head = value[:MIN_SECRET_PREFIX]
    return forms(value) | forms(head)


def assert_clean(value: str, outputs: dict[str, str | bytes]) -> None:
    forms = leak_forms(value)
    for where, text in outputs.items():
        if isinstance(text, bytes):
            found = [f for f in forms if f.encode("utf-8") in text]
        else:
            found = [f for f in forms if f in text]
        assert not found, f"{where} holds {found!r}"


def run_and_collect(engine, executor, tmp_path, caplog, config=None, meta=None, task="Type {{secret:PW}}."):
    term = io.StringIO()
    printer = ProgressPrinter(term, interactive=False)
    log = EventLog()

    def on_event(event):
        log(event)
        printer(event)

    with caplog.at_level(logging.DEBUG):
        agent = Agent(engine, executor, config or AgentConfig(max_steps=4), trace_root=tmp_path / "runs",
                      on_event=on_event, run_meta=meta)
        result = agent.run(task)
    assert result.trace_dir is not None
    write_report(result.trace_dir)
    outputs: dict[str, str | bytes] = {"terminal": term.getvalue(), "logs": caplog.text,
                                      "result": repr(result),
                                      "events": json.dumps([e.to_dict() for e in log.events], ensure_ascii=False),
                                      "event reprs": repr(log.events)}
    return result, outputs


def trace_files(trace_dir) -> dict[str, bytes]:
    return {f"trace file {p.relative_to(trace_dir)}": p.read_bytes() for p in sorted(trace_dir.rglob("*"))
            if p.is_file()}


def replay_outputs(trace_dir, capsys, caplog) -> dict[str, str | bytes]:
    from visagent.cli import main

    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        code = main(["replay", str(trace_dir)])
    out = capsys.readouterr()
    return {"replay stdout": out.out, "replay stderr": out.err, "replay logs": caplog.text,
            "replay exit": str(code), **{f"after replay: {k}": v for k, v in trace_files(trace_dir).items()}}


@pytest.mark.parametrize("kind", list(VALUES))
def test_sim_run_report_and_replay_never_show_the_secret(kind, tmp_path, monkeypatch, caplog, capsys):
    value = VALUES[kind]
    monkeypatch.setenv("VISAGENT_SECRET_PW", value)
    scenario, executor = sim("phone-settings-bluetooth-on")
    # the sim's `open` fails with "no app '<value>' on this phone" (repr-escaped): the run ends on it
    result, outputs = run_and_collect(ScriptedEngine([TYPE, OPEN, DONE]), executor, tmp_path, caplog,
                                      meta={"scenario": scenario.id, "seed": 0})
    assert [a.text for a in executor.executed] == [value, value]  # the real value reached the executor
    assert result.status == "error" and "{{secret:PW}}" in result.reason
    outputs.update(trace_files(result.trace_dir))
    outputs.update(replay_outputs(result.trace_dir, capsys, caplog))
    assert outputs["replay exit"] == "2" and "{{secret:PW}}" in outputs["replay stderr"]
    assert_clean(value, outputs)


@pytest.mark.parametrize("kind", list(VALUES))
def test_desktop_run_on_xvfb_never_shows_the_secret(kind, xserver, tmp_path, monkeypatch, caplog, capsys):
    from visagent.screen.desktop import DesktopExecutor
    from visagent.screen.settle import SettleDetector

    value = VALUES[kind]
    monkeypatch.setenv("VISAGENT_SECRET_PW", value)
    executor = DesktopExecutor(settle=SettleDetector(consecutive=2, interval_s=0.05, wait_for_change_s=0.2))
    try:
        # the desktop reports a typed action with its summary, `type '<value cut at 57>'` (repr-escaped)
        result, outputs = run_and_collect(ScriptedEngine([TYPE, DONE]), executor, tmp_path, caplog,
                                          AgentConfig(max_steps=3, settle=False))
    finally:
        executor.close()
    assert result.status == "success", result.reason
    step = json.loads((result.trace_dir / "trace.jsonl").read_text().splitlines()[1])
    assert step["result"]["message"].startswith("type '{{secret:PW}}")  # the message was there, redacted
    outputs.update(trace_files(result.trace_dir))
    outputs.update(replay_outputs(result.trace_dir, capsys, caplog))
    assert_clean(value, outputs)


@pytest.mark.parametrize("kind", list(VALUES))
def test_android_run_over_fake_adb_never_shows_the_secret(kind, tmp_path, monkeypatch, caplog, capsys):
    from visagent.screen.android import AndroidExecutor

    value = VALUES[kind]
    phone = use_fake_adb(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_ADB_SCENARIO", "phone-settings-bluetooth-on")
    monkeypatch.setenv("VISAGENT_SECRET_PW", value)
    executor = AndroidExecutor(settle=False)
    try:
        # ASCII values are typed, then `open` fails ("app '<value>' is not installed"); the non-ASCII one fails
        # at once: `input text` cannot type it and the error quotes its first 20 characters
        result, outputs = run_and_collect(ScriptedEngine([TYPE, OPEN, DONE]), executor, tmp_path, caplog,
                                          AgentConfig(max_steps=4, settle=False))
    finally:
        executor.close()
    assert result.status == "error" and "{{secret:PW}}" in result.reason, result.reason
    if kind == "unicode":
        assert "cannot type '{{secret:PW}}' on emulator-5554" in result.reason
    else:
        assert f"input text {shlex.quote(value)}" in phone.shell_lines()  # the phone got the real value
    outputs.update(trace_files(result.trace_dir))
    outputs.update(replay_outputs(result.trace_dir, capsys, caplog))
    assert outputs["replay exit"] == "2"
    assert_clean(value, outputs)
