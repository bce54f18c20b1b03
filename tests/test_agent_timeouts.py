"""Timeouts around external calls: results and errors come back, a stuck call never blocks the caller."""

from __future__ import annotations

import threading

import pytest

from visagent.core.timeouts import CallTimeout, SerialWorker, call_with_timeout


def test_call_with_timeout_returns_and_reraises():
    assert call_with_timeout(lambda: 7, 5, "seven") == 7
    with pytest.raises(KeyError):
        call_with_timeout(lambda: {}["x"], 5, "lookup")


def test_call_with_timeout_gives_up_and_runs_on_timeout():
    release = threading.Event()
    cancelled = []
    with pytest.raises(CallTimeout, match="stuck call did not finish within 0.05 s"):
        call_with_timeout(lambda: release.wait(30), 0.05, "stuck call", on_timeout=lambda: cancelled.append(1),
                          grace_s=0.05)
    assert cancelled == [1]
    release.set()


def test_a_result_arriving_after_the_timeout_still_counts_as_timed_out():
    stop = threading.Event()
    with pytest.raises(CallTimeout):
        call_with_timeout(lambda: stop.wait(30) and "late", 0.05, "slow", on_timeout=stop.set, grace_s=5)


def test_serial_worker_runs_every_call_on_one_thread():
    worker = SerialWorker()
    idents = {worker.call(threading.get_ident, 5, "ident") for _ in range(5)}
    assert len(idents) == 1 and threading.get_ident() not in idents
    with pytest.raises(ZeroDivisionError):
        worker.call(lambda: 1 / 0, 5, "divide")
    assert worker.call(threading.get_ident, 5, "ident") in idents  # an error does not kill the thread
    worker.close()


def test_serial_worker_abandons_a_stuck_thread_and_starts_a_new_one():
    worker = SerialWorker()
    first = worker.call(threading.get_ident, 5, "ident")
    release = threading.Event()
    with pytest.raises(CallTimeout, match="capture did not finish within 0.05 s"):
        worker.call(lambda: release.wait(30), 0.05, "capture")
    second = worker.call(threading.get_ident, 5, "ident")
    assert second != first
    release.set()
    worker.close()
