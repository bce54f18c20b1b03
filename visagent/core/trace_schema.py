"""What a `visagent-trace/1` trace may hold (docs/trace-format.md), checked field by field on reading.

Trace contents are untrusted data (a trace may come from anywhere): every reader goes through
`visagent.core.trace.read_trace`, which checks meta.json with `meta_problem` and each trace.jsonl record with
`record_problem`. Each returns None for a valid value, else one line naming the field and what is wrong
(`field 'actions[0].coordinate': expected [x, y] numbers, got a string`). Unknown extra fields are allowed
(newer writers may add some); documented fields must have their documented types. A screenshot name must be a
plain file name (no folder, no `..`), so no reader ever opens a file outside its trace.
"""

from __future__ import annotations

import math
import re
from typing import Any

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}")
STATUSES: tuple[str, ...] = (
    "running", "success", "failure", "answered", "max_steps", "timeout", "stopped", "parse_error", "loop", "error",
)
DECISIONS = (None, "allowed", "approved", "denied", "blocked")
CONTROLS = ("pause", "resume", "step", "takeover", "handback", "stop", "approve", "deny")
RECORD_TYPES = ("run_started", "step", "control", "run_finished")


class Invalid(Exception):
    """A field that breaks the format: `field` (dotted path) and `why`."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"field {field!r}: {why}")


def plain_file_name(name: Any) -> bool:
    """Whether `name` is a file name a trace may refer to: no folder part, no `..`, no leading dot."""
    return isinstance(name, str) and bool(_PLAIN_NAME.fullmatch(name)) and ".." not in name


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _need(ok: bool, field: str, expected: str, value: Any) -> None:
    if not ok:
        raise Invalid(field, f"expected {expected}, got {_kind(value)}")


def _opt(d: dict[str, Any], key: str, check, field: str, expected: str) -> None:
    """A field that may be absent or null, else must pass `check`."""
    value = d.get(key)
    if value is not None:
        _need(check(value), f"{field}{key}", expected, value)


def _obj(d: dict[str, Any], key: str, field: str, *, null: bool = True) -> dict[str, Any] | None:
    value = d.get(key)
    if value is None and null:
        return None
    _need(isinstance(value, dict), f"{field}{key}", "an object" + (" or null" if null else ""), value)
    return value


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _point(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v)


def _size(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x > 0 for x in v)


def _check_geometry(g: Any, field: str) -> None:
    _need(isinstance(g, dict), field, "an object", g)
    for key in ("width", "height", "physical_width", "physical_height"):
        _need(_is_int(g.get(key)) and g[key] > 0, f"{field}.{key}", "a positive whole number", g.get(key))
    for key in ("offset_x", "offset_y", "monitor"):
        _opt(g, key, _is_int, f"{field}.", "a whole number")
    _opt(g, "scale", lambda v: _is_num(v) and v > 0, f"{field}.", "a positive number")


def _check_mapping(m: Any, field: str) -> None:
    _need(isinstance(m, dict), field, "an object", m)
    _need(_str(m.get("space")), f"{field}.space", "a string", m.get("space"))
    for key in ("model", "model2"):
        _opt(m, key, _point, f"{field}.", "[x, y] numbers")
    for key in ("factor_x", "factor_y", "scale"):
        _need(_is_num(m.get(key)), f"{field}.{key}", "a number", m.get(key))
    for key in ("offset_x", "offset_y"):
        _need(_is_int(m.get(key)), f"{field}.{key}", "a whole number", m.get(key))
    _need(_size(m.get("image_size")), f"{field}.image_size", "[width, height] whole numbers", m.get("image_size"))
    _opt(m, "resized_size", _size, f"{field}.", "[width, height] whole numbers")


def _check_action(a: Any, field: str) -> None:
    from visagent.core.actions import ARGUMENTS, Action
    from visagent.core.errors import ActionError

    _need(isinstance(a, dict), field, "an action object", a)
    _need(_str(a.get("action")), f"{field}.action", "a string", a.get("action"))
    for key in ("coordinate", "coordinate2"):
        _opt(a, key, _point, f"{field}.", "[x, y] numbers")
    _opt(a, "keys", lambda v: isinstance(v, list) and all(_str(k) for k in v), f"{field}.", "a list of strings")
    for key in ("text", "button", "status", "space"):
        _opt(a, key, _str, f"{field}.", "a string")
    for key in ("pixels", "time"):
        _opt(a, key, _is_num, f"{field}.", "a number")
    if a.get("mapping") is not None:
        _check_mapping(a["mapping"], f"{field}.mapping")
    unknown = sorted(set(a) - set(ARGUMENTS) - {"action", "space", "mapping"})
    if unknown:
        raise Invalid(f"{field}.{unknown[0]}", "not an action argument")
    try:
        Action.from_dict(a)
    except ActionError as exc:
        raise Invalid(field, f"not a valid action ({' '.join(str(exc).split())})") from None


def _check_list(value: Any, field: str, item) -> None:
    if value is None:
        return
    _need(isinstance(value, list), field, "a list", value)
    for i, v in enumerate(value):
        item(v, f"{field}[{i}]")


def _check_step(r: dict[str, Any]) -> None:
    _need(_is_int(r.get("step")) and r["step"] >= 1, "step", "a whole number from 1", r.get("step"))
    shot = r.get("screenshot")
    if shot is not None and not plain_file_name(shot):
        raise Invalid("screenshot", "not a plain file name inside the trace (a folder, '..' or an absolute path "
                      "is refused)")
    if r.get("geometry") is not None:
        _check_geometry(r["geometry"], "geometry")
    _obj(r, "prompt", "")
    model = _obj(r, "model", "")
    if model is not None:
        for key in ("raw", "thinking", "answer", "finish_reason"):
            _opt(model, key, _str, "model.", "a string")
        _opt(model, "generated_tokens", _is_int, "model.", "a whole number")
        _opt(model, "tool_calls", lambda v: isinstance(v, list), "model.", "a list")
        pointer = _obj(model, "pointer", "model.")
        if pointer is not None:
            for key in ("x", "y", "score"):
                _opt(pointer, key, _is_num, "model.pointer.", "a number")
            _opt(pointer, "written", _point, "model.pointer.", "[x, y] numbers")
    _opt(r, "attempts", _is_int, "", "a whole number")
    for key in ("parse_error", "error", "feedback", "tool_result"):
        _opt(r, key, _str, "", "a string or null")
    _opt(r, "parse_errors", lambda v: isinstance(v, list) and all(_str(x) for x in v), "", "a list of strings")
    _check_list(r.get("actions"), "actions", _check_action)
    _check_list(r.get("ignored_actions"), "ignored_actions", _check_action)
    policy = _obj(r, "policy", "")
    if policy is not None:
        _need(policy.get("decision") in DECISIONS, "policy.decision", "one of " + ", ".join(map(str, DECISIONS[1:]))
              + " or null", policy.get("decision"))
        _opt(policy, "reason", _str, "policy.", "a string")
    result = _obj(r, "result", "")
    if result is not None:
        _opt(result, "ok", lambda v: isinstance(v, bool), "result.", "true or false")
        _opt(result, "changed", lambda v: isinstance(v, bool), "result.", "true, false or null")
        _opt(result, "message", _str, "result.", "a string")
        for key in ("execute_s", "settle_s"):
            _opt(result, key, _is_num, "result.", "a number")
        target = _obj(result, "target", "result.")
        if target is not None:
            _need(isinstance(target.get("bbox"), list) and len(target["bbox"]) == 4
                  and all(_is_num(v) for v in target["bbox"]), "result.target.bbox", "four numbers",
                  target.get("bbox"))
            for key in ("label", "ui_type"):
                _opt(target, key, _str, "result.target.", "a string")
    timings = _obj(r, "timings", "")
    if timings is not None:
        for key, value in timings.items():
            _need(_is_num(value), f"timings.{key}", "a number", value)


def record_problem(rec: Any) -> str | None:
    """Why `rec` (one parsed trace.jsonl line) is not a valid record, as one line; None when it is."""
    if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
        return "not a record (a JSON object with a 'type')"
    kind = rec["type"]
    try:
        _opt(rec, "t", _is_num, "", "a number")
        if kind == "step":
            _check_step(rec)
        elif kind == "control":
            _need(rec.get("control") in CONTROLS, "control", "one of " + ", ".join(CONTROLS), rec.get("control"))
            _opt(rec, "note", _str, "", "a string")
        elif kind == "run_finished":
            _need(rec.get("status") in STATUSES, "status", "a run status", rec.get("status"))
            _opt(rec, "reason", _str, "", "a string")
            _opt(rec, "steps", _is_int, "", "a whole number")
            _opt(rec, "answer", _str, "", "a string or null")
        elif kind != "run_started":
            raise Invalid("type", f"{kind[:40]!r} is not a record type of visagent-trace/1 "
                          f"({', '.join(RECORD_TYPES)})")
    except Invalid as exc:
        return str(exc)
    return None


def meta_problem(meta: Any) -> str | None:
    """Why `meta` (parsed meta.json) does not follow the format, as one line; None when it does."""
    try:
        _need(isinstance(meta, dict), "(top)", "an object", meta)
        for key in ("format", "run_id", "task", "started_at", "reason"):
            _opt(meta, key, _str, "", "a string")
        _opt(meta, "ended_at", _str, "", "a string or null")
        _opt(meta, "answer", _str, "", "a string or null")
        _need(meta.get("status", "running") in STATUSES, "status", "a run status", meta.get("status"))
        _opt(meta, "steps", lambda v: _is_int(v) and v >= 0, "", "a whole number from 0")
        model = _obj(meta, "model", "")
        if model is not None:
            for key in ("spec", "model_type", "coord_space", "prompt_profile"):
                _opt(model, key, _str, "model.", "a string")
        executor = _obj(meta, "executor", "")
        if executor is not None:
            for key in ("name", "platform", "scenario", "split", "serial", "display"):
                _opt(executor, key, _str, "executor.", "a string")
            _opt(executor, "seed", _is_int, "executor.", "a whole number")
            if executor.get("geometry") is not None:
                _check_geometry(executor["geometry"], "executor.geometry")
        settings = _obj(meta, "settings", "")
        if settings is not None:
            _opt(settings, "history_images", lambda v: _is_int(v) and v >= 1, "settings.", "a whole number from 1")
            for key in ("settle", "append_only", "thinking"):
                _opt(settings, key, lambda v: isinstance(v, bool), "settings.", "true or false")
        _obj(meta, "versions", "")
        verdict = _obj(meta, "verdict", "")
        if verdict is not None:
            _opt(verdict, "success", lambda v: isinstance(v, bool), "verdict.", "true or false")
    except Invalid as exc:
        return str(exc)
    return None
