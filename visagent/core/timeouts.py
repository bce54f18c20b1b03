"""Run a blocking call in a worker thread with a wall-clock limit, so no external call can hang the loop."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CallTimeout(TimeoutError):
    """A call did not return within its limit; the message names the call and the limit."""


def call_with_timeout(fn: Callable[[], T], timeout_s: float, what: str,
                      on_timeout: Callable[[], None] | None = None, grace_s: float = 2.0) -> T:
    """Return `fn()`, or raise CallTimeout after `timeout_s` seconds.

    The call runs in a daemon thread; exceptions it raises are re-raised here. On timeout `on_timeout`
    (e.g. setting a cancel event) runs and the worker gets `grace_s` more seconds to wind down (its result,
    if any, is discarded: the call still counts as timed out); after that it is abandoned (a daemon thread
    never blocks interpreter exit).
    """
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"visagent-{what[:30]}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        if on_timeout is not None:
            on_timeout()
            thread.join(grace_s)
        raise CallTimeout(f"{what} did not finish within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class SerialWorker:
    """Runs calls one at a time on one long-lived daemon thread, each under a time limit.

    Executors keep per-thread state (an X connection for mss, for instance), so all calls to one executor
    should come from one thread: a fresh thread per call would open a new connection each time. When a call
    times out, its thread is abandoned (it may be stuck for good) and the next call starts a new one.
    """

    def __init__(self, name: str = "visagent-worker") -> None:
        self.name = name
        self._queue: queue.SimpleQueue | None = None
        self._lock = threading.Lock()

    def _start(self) -> queue.SimpleQueue:
        q: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_serve, args=(q,), name=self.name, daemon=True).start()
        return q

    def call(self, fn: Callable[[], T], timeout_s: float, what: str) -> T:
        """Return `fn()` run on the worker thread, or raise CallTimeout after `timeout_s` seconds.
        Exceptions `fn` raises are re-raised here."""
        with self._lock:
            if self._queue is None:
                self._queue = self._start()
            q = self._queue
        box: dict[str, object] = {}
        done = threading.Event()
        q.put((fn, box, done))
        if not done.wait(timeout_s):
            with self._lock:
                if self._queue is q:
                    self._queue = None  # abandon the stuck thread; it exits if it ever returns
                    q.put(None)
            raise CallTimeout(f"{what} did not finish within {timeout_s:g} s")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    def close(self) -> None:
        """Let the worker thread end (after the call in progress, if any)."""
        with self._lock:
            if self._queue is not None:
                self._queue.put(None)
                self._queue = None


def _serve(q: queue.SimpleQueue) -> None:
    while True:
        item = q.get()
        if item is None:
            return
        fn, box, done = item
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            box["error"] = exc
        finally:
            done.set()
