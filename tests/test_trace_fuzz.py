"""Fuzzing the trace readers (issue 42, item 6): hypothesis breaks a recorded trace — any field of meta.json or of a
trace.jsonl record set to any JSON value (wrong types, NaN, huge numbers, paths leading out) or deleted, lines
torn or garbage appended — and every reader (read_trace, the HTML report, export, the dashboard's step view,
replay on the sim) must either work or raise the one-line `VisagentError`; never a traceback, never a file
outside the trace."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from visagent.core.errors import VisagentError

TRACES = Path(__file__).resolve().parent.parent / "scenarios" / "traces"
SOURCE = TRACES / "desktop-settings-wifi-off-s0"

# Values a hostile or broken writer could leave in any field.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "../../outside.png", "/etc/passwd", "step_001.png", "left_click", "screen", "norm1000",
                     "success", "running", "<img src=x>", "a" * 300, "step", "control", "run_finished"]),
    st.text(max_size=12),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
# Fields the format documents, so missing ones get added with odd values too.
STEP_FIELDS = ["step", "t", "screenshot", "geometry", "prompt", "model", "attempts", "parse_error", "parse_errors",
               "actions", "ignored_actions", "policy", "result", "timings", "error", "feedback", "tool_result", "type"]
META_FIELDS = ["format", "run_id", "task", "model", "executor", "settings", "status", "reason", "steps", "answer",
               "started_at", "ended_at", "verdict", "versions"]


def _paths(value: Any, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    out = [prefix] if prefix else []
    if depth >= 4:
        return out
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value[:4]):
            out += _paths(item, prefix + (i,), depth + 1)
    return out


def _mutate(data: st.DataObject, obj: dict[str, Any], fields: list[str]) -> None:
    """One change: set an existing field (any depth) or a documented one to a random JSON value, or delete one."""
    paths = _paths(obj)
    how = data.draw(st.sampled_from(["set", "add", "delete"]))
    if how == "add" or not paths:
        obj[data.draw(st.sampled_from(fields))] = data.draw(json_values)
        return
    path = data.draw(st.sampled_from(paths))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)


def _break(data: st.DataObject, trace: Path) -> None:
    meta = json.loads((trace / "meta.json").read_text())
    lines = [json.loads(line) for line in (trace / "trace.jsonl").read_text().splitlines()]
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(-1, len(lines) - 1))
        if where < 0:
            _mutate(data, meta, META_FIELDS)
        else:
            _mutate(data, lines[where], STEP_FIELDS)
    (trace / "meta.json").write_text(json.dumps(meta))
    raw = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
    tail = data.draw(st.sampled_from(["none", "torn", "garbage", "bytes"]))
    if tail == "torn":
        raw = raw[: len(raw) - data.draw(st.integers(1, 60))]
    elif tail == "garbage":
        raw += data.draw(st.sampled_from([b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b"{}\n", b"null\n",
                                          b"[" * 5000 + b"\n"]))
    elif tail == "bytes":
        raw += data.draw(st.binary(max_size=40))
    (trace / "trace.jsonl").write_bytes(raw)


def _one_line_or_fine(call) -> Any:
    try:
        return call()
    except VisagentError as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)
        return None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_reader_ever_fails_with_a_traceback_on_a_broken_trace(data):
    from ui.views.traces_view import step_view, trace_summary
    from visagent.traces.export import export_records
    from visagent.traces.replay import replay_trace
    from visagent.traces.report import render_report
    from visagent.core.trace import read_trace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        trace_dir = shutil.copytree(SOURCE, root / "runs" / "t")
        (root / "outside.png").write_bytes((SOURCE / "step_001.png").read_bytes())
        _break(data, trace_dir)
        before = sorted(p.name for p in trace_dir.iterdir())
        trace = _one_line_or_fine(lambda: read_trace(trace_dir))
        if trace is not None:
            assert all("\n" not in p for p in trace.problems)
            page = render_report(trace)
            assert "outside.png" not in page or "not a plain file name" in page
            trace_summary(trace)
            for index in range(1, len(trace.steps) + 2):
                step_view(trace, index)
        _one_line_or_fine(lambda: list(export_records([trace_dir], include_failed=True)))
        if trace is not None and data.draw(st.booleans(), label="replay"):
            _one_line_or_fine(lambda: replay_trace(trace_dir, out_dir=root / "replay-out"))
        after = sorted(p.name for p in trace_dir.iterdir())
        assert after == before  # readers write nothing into the trace (replay's images go to out_dir)
        assert not (root / "replay-out").exists() or all(
            p.stat().st_size > 0 for p in (root / "replay-out").iterdir())
