"""Run traces on disk (format `visagent-trace/1`, see docs/trace-format.md): writing and reading.

`TraceWriter` makes `<root>/<run_id>/`, writes `meta.json` atomically at start and end, appends one JSON
line per record to `trace.jsonl` (flushed and fsynced each time) and saves step screenshots. A `kill -9`
at any moment leaves a directory `read_trace` loads up to the last complete line; damaged lines are
reported in `Trace.problems`, never raised.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform as _platform
import secrets as _secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from visagent.errors import TraceError

FORMAT = "visagent-trace/1"
META = "meta.json"
RECORDS = "trace.jsonl"
FINAL_IMAGE = "final.png"

#: Statuses a finished run may have (docs/trace-format.md); "running" means not ended.
STATUSES: tuple[str, ...] = (
    "running", "success", "failure", "answered", "max_steps", "timeout", "stopped", "parse_error", "loop", "error",
)


def new_run_id(now: float | None = None) -> str:
    """`YYYYmmdd-HHMMSS-<6 hex>` in UTC."""
    stamp = _dt.datetime.fromtimestamp(time.time() if now is None else now, _dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{_secrets.token_hex(3)}"


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def step_image_name(step: int) -> str:
    return f"step_{step:03d}.png"


@functools.cache
def versions() -> dict[str, str]:
    """Versions of the parts that shape a run's behaviour (looked up once per process)."""
    import visagent

    out = {"visagent": visagent.__version__, "python": _platform.python_version()}
    for name in ("transformers", "torch"):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing optional package is simply not listed
            continue
    return out


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the file itself is synced
    finally:
        os.close(fd)


class TraceWriter:
    """Writes one run's trace directory.

    `meta` holds the run's identity (task, model, executor, settings); the writer adds `format`, `run_id`,
    `versions`, `started_at`, `status` ("running") and the outcome fields. `redact`, when given, is applied
    to every string written to meta.json and trace.jsonl (secrets never reach the disk).
    Raises TraceError when the directory cannot be created or written.
    """

    def __init__(self, root: str | Path, meta: dict[str, Any], *, run_id: str | None = None,
                 redact: Callable[[str], str] | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.path = Path(root) / self.run_id
        self._redact = redact
        try:
            self.path.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise TraceError(f"cannot create trace directory {self.path}: {exc.strerror}; "
                             "choose another --trace-dir") from None
        self.meta: dict[str, Any] = {
            "format": FORMAT, "run_id": self.run_id, "task": "", "model": {}, "executor": {}, "settings": {},
            "versions": dict(versions()), "started_at": utc_now(), "ended_at": None,
            "status": "running", "reason": "", "steps": 0, "answer": None,
        }
        self.meta.update({k: v for k, v in meta.items() if k not in ("format", "run_id")})
        self._write_meta()
        self._fh = (self.path / RECORDS).open("a", encoding="utf-8")
        self._closed = False
        self._lock = threading.RLock()  # controls append from other threads than the loop's

    def _clean(self, value: Any) -> Any:
        if self._redact is None:
            return value
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v) for v in value]
        return value

    def _write_meta(self) -> None:
        try:
            _write_json_atomic(self.path / META, self._clean(self.meta))
        except OSError as exc:
            raise TraceError(f"cannot write {self.path / META}: {exc.strerror}") from None

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line; flushed and fsynced before returning. Adds `t` when missing."""
        record = self._clean(dict(record))
        record.setdefault("t", round(time.time(), 3))
        line = json.dumps(record, ensure_ascii=False, default=_json_default)
        with self._lock:
            if self._closed:
                raise TraceError(f"trace {self.path} is already finished; cannot append")
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise TraceError(f"cannot append to {self.path / RECORDS}: {exc.strerror}") from None

    def save_image(self, name: str, image: Image.Image) -> str:
        """Save a PNG atomically under the trace directory; returns `name` (the path relative to the trace)."""
        if "/" in name or name.startswith("."):
            raise TraceError(f"image name {name!r} must be a plain file name like step_001.png")
        target = self.path / name
        tmp = self.path / f".{name}.tmp"
        try:
            # Level 1: ~4x faster than the default for screenshots, files only slightly larger.
            image.save(tmp, format="PNG", compress_level=1)
            os.replace(tmp, target)
        except OSError as exc:
            raise TraceError(f"cannot save {target}: {exc.strerror}") from None
        return name

    def update_meta(self, **fields: Any) -> None:
        """Change meta fields (e.g. `steps` during a run) and rewrite meta.json atomically."""
        with self._lock:
            self.meta.update(fields)
            self._write_meta()

    def finish(self, status: str, reason: str, steps: int, answer: str | None) -> None:
        """Append the `run_finished` record and write the outcome into meta.json. Idempotent."""
        if status not in STATUSES or status == "running":
            raise TraceError(f"cannot finish a trace with status {status!r}; expected one of {STATUSES[1:]}")
        reason = " ".join(str(reason).split())  # one line
        with self._lock:
            if self._closed:
                return
            try:
                self.append({"type": "run_finished", "status": status, "reason": reason, "steps": steps,
                             "answer": answer})
            finally:
                self._closed = True
                self._fh.close()
                self.meta.update(status=status, reason=reason, steps=steps, answer=answer, ended_at=utc_now())
                self._write_meta()


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} into a trace record")


@dataclass
class Trace:
    """A loaded trace. `records`: every readable line in order; `steps`: the `step` records; `problems`:
    one line per damaged or unreadable part (`trace.jsonl line N: <why>`)."""

    path: Path
    meta: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id", self.path.name))

    @property
    def status(self) -> str:
        return str(self.meta.get("status", "running"))

    @property
    def finished(self) -> dict[str, Any] | None:
        """The run_finished record, or None when the run did not end (crash, kill, still running)."""
        for rec in reversed(self.records):
            if rec.get("type") == "run_finished":
                return rec
        return None

    def image_path(self, step: int) -> Path:
        return self.path / step_image_name(step)

    def image(self, step: int) -> Image.Image:
        """The screenshot the model saw at `step` (1-based). Raises TraceError when missing or unreadable."""
        return _open_image(self.image_path(step))

    def final_image(self) -> Image.Image | None:
        """The screen after the last action, or None when the run did not get to save it."""
        path = self.path / FINAL_IMAGE
        return _open_image(path) if path.exists() else None


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise TraceError(f"{path} does not exist; the run ended before this screenshot was saved") from None
    except OSError as exc:
        raise TraceError(f"{path} is not a readable PNG ({exc})") from None


def read_trace(path: str | Path) -> Trace:
    """Load a trace directory (or its meta.json / trace.jsonl). Damaged lines go to `problems`.

    Raises TraceError when the directory or its meta.json is missing or unreadable.
    """
    p = Path(path)
    if p.is_file() and p.name in (META, RECORDS):
        p = p.parent
    if not p.is_dir():
        raise TraceError(f"trace directory {p} does not exist; pass a run directory such as runs/<run_id>")
    meta_path = p / META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TraceError(f"{p} has no {META}; it is not a visagent trace (or the run died before starting)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceError(f"{meta_path} is unreadable ({exc}); the trace is damaged") from None
    if not isinstance(meta, dict):
        raise TraceError(f"{meta_path} does not hold a JSON object; the trace is damaged")
    trace = Trace(path=p, meta=meta)
    fmt = meta.get("format")
    if fmt != FORMAT:
        trace.problems.append(f"{META}: format {fmt!r}, expected {FORMAT!r}")
    rec_path = p / RECORDS
    try:
        raw = rec_path.read_bytes()
    except FileNotFoundError:
        trace.problems.append(f"{RECORDS}: missing")
        return trace
    except OSError as exc:
        trace.problems.append(f"{RECORDS}: unreadable ({exc.strerror})")
        return trace
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        torn = number == len(lines)  # no newline after it: the write was cut
        try:
            rec = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            trace.problems.append(f"{RECORDS} line {number}: not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            why = "incomplete last line (the run was cut off while writing)" if torn else f"not JSON ({exc.msg})"
            trace.problems.append(f"{RECORDS} line {number}: {why}")
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
            trace.problems.append(f"{RECORDS} line {number}: not a record (a JSON object with a 'type')")
            continue
        if rec["type"] == "step" and not isinstance(rec.get("step"), int):
            trace.problems.append(f"{RECORDS} line {number}: step record without an integer 'step'")
            continue
        trace.records.append(rec)
        if rec["type"] == "step":
            trace.steps.append(rec)
    return trace


@dataclass(frozen=True)
class TraceSummary:
    path: Path
    run_id: str
    task: str
    status: str
    steps: int
    started_at: str
    verdict: Any = None  # meta.json's `verdict` (the world check), when the run had one
    model: str = ""  # meta.json's model spec


def list_traces(root: str | Path) -> list[TraceSummary]:
    """Summaries of the traces under `root`, newest first. Directories without a readable meta.json are
    skipped (they are not traces, or died before starting). A missing root gives an empty list."""
    base = Path(root)
    if not base.is_dir():
        return []
    out: list[TraceSummary] = []
    for child in base.iterdir():
        meta_path = child / META
        if not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(meta, dict):
            continue
        out.append(TraceSummary(
            path=child, run_id=str(meta.get("run_id", child.name)), task=str(meta.get("task", "")),
            status=str(meta.get("status", "running")), steps=int(meta.get("steps") or 0),
            started_at=str(meta.get("started_at", "")), verdict=meta.get("verdict"),
            model=str((meta.get("model") or {}).get("spec", "")) if isinstance(meta.get("model"), dict) else "",
        ))
    out.sort(key=lambda s: (s.started_at, s.run_id), reverse=True)
    return out
