"""Run traces on disk (format `visagent-trace/1`, see docs/trace-format.md): writing and reading.

`TraceWriter` makes `<root>/<run_id>/`, writes `meta.json` atomically at start and end, appends one JSON
line per record to `trace.jsonl` (flushed and fsynced each time) and saves step screenshots (fsynced before
any later line is written). With `background=True` the writes run in order on a writer thread, off the
caller's critical path; `flush()` waits for them. A `kill -9` at any moment leaves a directory `read_trace`
loads up to the last complete line, and every step line's screenshot is complete on disk; damaged lines are
reported in `Trace.problems`, never raised.

Reading treats a trace as untrusted data: meta.json and every record are checked against the format
(visagent.core.trace_schema; a bad record is left out with one line naming the file, line and field), and files
are opened only through `Trace.file`, which refuses any name that is not a plain file inside the trace
directory (`../x.png`, an absolute path, a symlink leading out).
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import json
import os
import platform as _platform
import queue
import secrets as _secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from engine.api import PNG_MODES, png_bytes
from visagent.core.errors import TraceError
from visagent.core.trace_schema import STATUSES, meta_problem, plain_file_name, record_problem

FORMAT = "visagent-trace/1"
META = "meta.json"
RECORDS = "trace.jsonl"
FINAL_IMAGE = "final.png"

#: Statuses a finished run may have (docs/trace-format.md, visagent.core.trace_schema); "running" means not ended.



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
    `background`: do the writes on a writer thread, images and lines in the order they were asked for (a line is
    written only after the images saved before it are durable), a meta.json rewrite after the images and lines
    queued when it is picked up (the snapshots in order, the last one last); `append`, `save_image` and
    `update_meta` then return at once, `flush()` waits until everything asked so far is on disk. A write that
    fails there stops all later ones (no line may name a screenshot that is not on disk) and is raised by the
    next call.
    Raises TraceError when the directory cannot be created or written.
    """

    def __init__(self, root: str | Path, meta: dict[str, Any], *, run_id: str | None = None,
                 redact: Callable[[str], str] | None = None, background: bool = False) -> None:
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
        self._failure: TraceError | None = None  # the first write the writer thread could not do
        self._saved: dict[str, threading.Event] = {}  # images queued, set once each is in place
        self._queue: queue.PriorityQueue | None = None
        self._order = itertools.count()  # ties in the queue go first come, first served
        if background:
            # Bounded: a disk slower than the run makes the loop wait rather than hold every screenshot.
            self._queue = queue.PriorityQueue(maxsize=8)
            self._thread = threading.Thread(target=self._drain, name=f"visagent-trace-{self.run_id}", daemon=True)
            self._thread.start()

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
        """Append one record as a JSON line, flushed and fsynced (before returning, or on the writer thread in
        order after everything asked before it). Adds `t` when missing."""
        record = self._clean(dict(record))
        record.setdefault("t", round(time.time(), 3))
        line = json.dumps(record, ensure_ascii=False, default=_json_default)
        with self._lock:
            if self._closed:
                raise TraceError(f"trace {self.path} is already finished; cannot append")
            self._submit(self._write_line, line)

    def _write_line(self, line: str) -> None:
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise TraceError(f"cannot append to {self.path / RECORDS}: {exc.strerror}") from None

    def save_image(self, name: str, image: Image.Image) -> str:
        """Save a PNG atomically and durably (tmp file, fsync, rename) under the trace directory; returns `name`
        (the path relative to the trace). The image must not be modified afterwards (in background mode it is
        encoded later; its encoding is shared with requests that carry it, engine.image_codec)."""
        if "/" in name or name.startswith("."):
            raise TraceError(f"image name {name!r} must be a plain file name like step_001.png")
        with self._lock:
            if self._queue is not None:
                self._saved[name] = threading.Event()
            self._submit(self._write_image, name, image)
        return name

    def wait_image(self, name: str) -> None:
        """Return once the image saved as `name` is in place under the trace directory (renamed there; the
        directory's fsync may follow): the agent calls this before the step's model call, so a run killed
        while the model works still has the screenshot it was working on. Raises the writer's TraceError."""
        saved = self._saved.get(name)
        while saved is not None and not saved.wait(0.05):
            if self._failure is not None:
                break
        self._saved.pop(name, None)
        if self._failure is not None:
            raise self._failure

    def _write_image(self, name: str, image: Image.Image) -> None:
        target = self.path / name
        tmp = self.path / f".{name}.tmp"
        try:
            # Level 1 (~4x faster than the default for screenshots, files only slightly larger): the same bytes
            # a request carries for this screenshot, encoded once for both when the image is registered.
            data = png_bytes(image) if image.mode in PNG_MODES else None
            with tmp.open("wb") as fh:
                if data is None:
                    image.save(fh, format="PNG", compress_level=1)
                else:
                    fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise TraceError(f"cannot save {target}: {exc.strerror}") from None
        saved = self._saved.get(name)
        if saved is not None:
            saved.set()
        _fsync_dir(self.path)

    def update_meta(self, **fields: Any) -> None:
        """Change meta fields (e.g. `steps` during a run) and rewrite meta.json atomically."""
        with self._lock:
            self.meta.update(fields)
            if self._queue is None:
                self._write_meta()
            else:
                snapshot = self._clean(json.loads(json.dumps(self.meta, default=_json_default)))
                self._submit(self._write_meta_data, snapshot, rank=_LATER)

    def record_verdict(self, verdict: dict[str, Any]) -> None:
        """Write the world's verdict on the run (meta.json `verdict`: `{"success": bool, "by": ..., and
        optionally "side_effects": [...]}`, visagent.loop.runs.Verdict.to_meta) into meta.json, during the run or
        after `finish` (a world is judged once its run has ended). Raises TraceError."""
        if not isinstance(verdict.get("success"), bool):
            raise TraceError(f"a verdict needs success true or false, got {verdict.get('success')!r}")
        with self._lock:
            if not self._closed:
                self.update_meta(verdict=dict(verdict))
                return
            self.meta["verdict"] = dict(verdict)
            self._write_meta()

    def _write_meta_data(self, data: dict[str, Any]) -> None:
        try:
            _write_json_atomic(self.path / META, data)
        except OSError as exc:
            raise TraceError(f"cannot write {self.path / META}: {exc.strerror}") from None

    def flush(self) -> None:
        """Wait until every write asked so far is on disk. Raises the TraceError of a write that failed."""
        if self._queue is not None:
            self._queue.join()
        if self._failure is not None:
            raise self._failure

    def _submit(self, fn: Callable[..., None], *args: Any, rank: int = 0) -> None:
        """Run `fn(*args)` now, or queue it for the writer thread: lower ranks first, equal ranks in order."""
        if self._failure is not None:
            raise self._failure
        if self._queue is None:
            fn(*args)
        else:
            self._queue.put((rank, next(self._order), fn, args))

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            _, _, fn, args = self._queue.get()
            try:
                if fn is None:
                    return
                if self._failure is None:  # after a failure nothing more is written (see the class docstring)
                    fn(*args)
            except TraceError as exc:
                self._failure = exc
            except Exception as exc:  # noqa: BLE001 - a bug here must still reach the caller, not kill the thread
                self._failure = TraceError(f"cannot write the trace {self.path}: {type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def finish(self, status: str, reason: str, steps: int, answer: str | None) -> None:
        """Append the `run_finished` record and write the outcome into meta.json (after every write asked
        before). Idempotent."""
        if status not in STATUSES or status == "running":
            raise TraceError(f"cannot finish a trace with status {status!r}; expected one of {STATUSES[1:]}")
        reason = " ".join(str(reason).split())  # one line
        with self._lock:
            if self._closed:
                return
            try:
                self.append({"type": "run_finished", "status": status, "reason": reason, "steps": steps,
                             "answer": answer})
                self.flush()
            finally:
                self._closed = True
                if self._queue is not None:
                    self._queue.put((_LAST, next(self._order), None, ()))
                    self._thread.join()
                self._fh.close()
                self.meta.update(status=status, reason=reason, steps=steps, answer=answer, ended_at=utc_now())
                self._write_meta()


# Writer-queue ranks after images and lines (rank 0, in the order asked): a meta.json rewrite (the step count,
# which follows behind) lets the next step's screenshot, which the model call waits for, go first; the stop
# sentinel goes after everything.
_LATER, _LAST = 1, 2


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
    """A loaded trace. `records`: every valid line in order; `steps`: the `step` records; `problems`:
    one line per damaged, invalid or unreadable part (`trace.jsonl line N: <why>`); `torn`: the problem line
    of an incomplete last line (a run cut off while writing), which readers ignore as documented."""

    path: Path
    meta: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    torn: str | None = None

    @property
    def damage(self) -> list[str]:
        """The problems that make the trace unfit for replay / export: all but a torn last line."""
        return [p for p in self.problems if p != self.torn]

    def file(self, name: str) -> Path:
        """The path of the trace's file `name`. Raises TraceError (one line) for a name that is not a plain
        file name, or a file that resolves outside the trace directory (a symlink leading out)."""
        if not plain_file_name(name):
            raise TraceError(f"{self.path}: {str(name)[:80]!r} is not a file name inside the trace; refused")
        path = self.path / name
        try:
            base = self.path.resolve()
            real = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise TraceError(f"{path}: cannot be resolved ({exc}); refused") from None
        if real.parent != base:
            raise TraceError(f"{path}: leads outside the trace directory (a link); refused")
        return path

    def screenshot_path(self, record: dict[str, Any]) -> Path | None:
        """The screenshot file of a step record (None when it recorded none). Raises TraceError as `file`."""
        name = record.get("screenshot")
        return None if name is None else self.file(str(name))

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
        return self.file(step_image_name(step))

    def image(self, step: int) -> Image.Image:
        """The screenshot the model saw at `step` (1-based). Raises TraceError when missing or unreadable."""
        return _open_image(self.image_path(step))

    def final_image(self) -> Image.Image | None:
        """The screen after the last action, or None when the run did not get to save it."""
        path = self.file(FINAL_IMAGE)
        return _open_image(path) if path.exists() else None


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise TraceError(f"{path} does not exist; the run ended before this screenshot was saved") from None
    except (OSError, Image.DecompressionBombError) as exc:
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())
        raise TraceError(f"{meta_path} is unreadable ({why}); the trace is damaged") from None
    if not isinstance(meta, dict):
        raise TraceError(f"{meta_path} does not hold a JSON object; the trace is damaged")
    problem = meta_problem(meta)
    if problem:
        raise TraceError(f"{meta_path}: {problem}; the trace is damaged")
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
            why = "incomplete last line (the run was cut off while writing)" if torn else "not UTF-8 text"
            trace.problems.append(f"{RECORDS} line {number}: {why}")
            if torn:
                trace.torn = trace.problems[-1]
            continue
        except json.JSONDecodeError as exc:
            why = "incomplete last line (the run was cut off while writing)" if torn else f"not JSON ({exc.msg})"
            trace.problems.append(f"{RECORDS} line {number}: {why}")
            if torn:
                trace.torn = trace.problems[-1]
            continue
        except RecursionError:
            trace.problems.append(f"{RECORDS} line {number}: JSON nested too deeply")
            continue
        problem = record_problem(rec)
        if problem:
            trace.problems.append(f"{RECORDS} line {number}: {problem}")
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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            continue
        if meta_problem(meta) is not None:  # not a trace this reader can show (`visagent report` says why)
            continue
        out.append(TraceSummary(
            path=child, run_id=str(meta.get("run_id", child.name)), task=str(meta.get("task", "")),
            status=str(meta.get("status", "running")), steps=int(meta.get("steps") or 0),
            started_at=str(meta.get("started_at", "")), verdict=meta.get("verdict"),
            model=str((meta.get("model") or {}).get("spec", "")) if isinstance(meta.get("model"), dict) else "",
        ))
    out.sort(key=lambda s: (s.started_at, s.run_id), reverse=True)
    return out
