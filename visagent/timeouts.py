"""Run a blocking call in a worker thread with a wall-clock limit, so no external call can hang the loop."""

from __future__ import annotations

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
