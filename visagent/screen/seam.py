"""The screen seam: the one way visagent sees and drives a screen, and the rules every caller gets with it.

`Screen` wraps a backend (an `Executor` of visagent.screen.base: the sim, a desktop, an Android phone) the
way python-mss's `grab()` wraps its platform code: the public calls hold the rules, the backend only captures
and executes. The agent loop, the dashboard's take-over clicks, replay, `visagent do` and the MCP server all go
through it, so each of them gets:

- the closed check: a closed screen (closed through the seam, or a backend whose `closed` is true) refuses
  every call with one line;
- a wall-clock limit on every call (`timeout_s`), so a hung display or device ends as one-line ExecutorError
  instead of hanging its caller;
- one serial worker thread for all calls to the backend (backends keep per-thread state, such as mss's X
  connection), shared by every view of the screen (`configured`), so a take-over click and the loop never
  touch the backend at the same time;
- error wrapping: a VisagentError from the backend passes unchanged, anything else becomes an ExecutorError
  of one line naming the call;
- settling once: `observe()` captures and waits until the screen stops changing (a default SettleDetector),
  `act(action)` executes and then waits with the backend's own settle parameters (`backend.settle`, e.g. the
  desktop's 3 quiet comparisons and 0.3 s wait for a late change) or the default detector, and fills the
  result's `settle_s`, `changed`, `observation` and `settle_capture_s`. `settle=False` skips both waits.

Backends implement `screenshot()`, `execute(action)` (no settling), `geometry()`, `now()`/`sleep()` and
`close()`; optional hints: `settle` (their SettleDetector, None for "off"), `fresh_before` (capture the
"before" frame right before the action instead of reusing the last capture), `same_frame(a, b)` (a cheap
"same pixels" test the detector may use), `closed`.

May import: visagent.core (actions, errors, timeouts) and visagent.screen.base / visagent.screen.settle. Never
the engine, the loop or the UI.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from PIL import Image

from visagent.core.actions import Action
from visagent.core.errors import ConfigError, ExecutorError, VisagentError
from visagent.core.timeouts import CallTimeout, SerialWorker
from visagent.screen.base import ExecResult, Executor, Observation, ScreenGeometry
from visagent.screen.settle import SettleDetector

T = TypeVar("T")

#: Limit of one call to the backend when the caller gives none (the agent's `execute_timeout_s` default).
DEFAULT_TIMEOUT_S = 60.0


class _Shared:
    """What every view of one screen shares: the worker thread, the closed flag, the last frame captured."""

    def __init__(self, name: str) -> None:
        self.worker = SerialWorker(f"visagent-screen-{name}")
        self.closed = False
        self.last_image: Image.Image | None = None
        self.lock = threading.Lock()


class Screen:
    """A backend behind the seam's rules (module docstring). Thread-safe: calls queue on one worker thread.

    `timeout_s`: limit of each call. `settle`: True (settle after actions with the backend's parameters, and
    settle `observe()`), a SettleDetector for actions, or False. Raises ConfigError for a bad timeout.
    """

    def __init__(self, backend: Executor, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 settle: SettleDetector | bool = True, _shared: _Shared | None = None) -> None:
        if isinstance(backend, Screen):
            raise TypeError("Screen wraps a backend, not another Screen; use Screen.over() or configured()")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ConfigError(f"the screen's call timeout must be a positive number of seconds, got {timeout_s!r}")
        if not isinstance(settle, (bool, SettleDetector)):
            raise ConfigError(f"settle must be True, False or a SettleDetector, got {settle!r}")
        self.backend = backend
        self.timeout_s = float(timeout_s)
        self.settle = settle
        self._shared = _shared or _Shared(str(getattr(backend, "name", type(backend).__name__)))

    @classmethod
    def over(cls, executor: Executor | Screen, **settings: Any) -> Screen:
        """`executor` behind the seam: a Screen already is (a view with these settings, same worker), a bare
        backend gets a new one."""
        if isinstance(executor, Screen):
            return executor.configured(**settings)
        return cls(executor, **settings)

    def configured(self, *, timeout_s: float | None = None, settle: SettleDetector | bool | None = None) -> Screen:
        """A view of this screen with other settings; it shares the worker thread and the closed state."""
        return Screen(self.backend, timeout_s=self.timeout_s if timeout_s is None else timeout_s,
                      settle=self.settle if settle is None else settle, _shared=self._shared)

    # -- what the backend is ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(getattr(self.backend, "name", type(self.backend).__name__))

    @property
    def platform(self) -> str:
        return str(self.backend.platform)

    @property
    def closed(self) -> bool:
        return self._shared.closed or bool(getattr(self.backend, "closed", False))

    def now(self) -> float:
        return self.backend.now()

    # -- the calls --------------------------------------------------------------------------------
    def geometry(self, timeout_s: float | None = None) -> ScreenGeometry:
        return self._call(self.backend.geometry, "reading the screen geometry", timeout_s)

    def screenshot(self, timeout_s: float | None = None) -> Observation:
        """One plain capture (no settling)."""
        return self._call(self._grab, "taking a screenshot", timeout_s)

    def observe(self, timeout_s: float | None = None) -> Observation:
        """The screen once it stopped changing (a plain capture with settle off). The observation's
        `settle_capture_s` is what the detector's own captures and comparisons cost."""
        first = self.screenshot(timeout_s)
        if self.settle is False:
            return first
        backend = self.backend

        def wait() -> Any:
            return SettleDetector().wait(self._grab_image, backend.now, backend.sleep, same_frame=self._same_frame)

        settled = self._call(wait, "waiting for the screen to settle", timeout_s)
        return Observation(settled.final_image, first.geometry, settle_capture_s=settled.capture_s)

    def act(self, action: Action, before: Observation | Image.Image | None = None,
            timeout_s: float | None = None) -> ExecResult:
        """Execute a "screen"-space `action`, then settle once (not after terminate/answer; not with settle off).

        `before`: the screen the action was decided on (for `changed`; default: the last frame captured here,
        or a fresh capture when the backend wants one right before the action). The result's `execute_s` is
        the backend's (else the wall time of the call); `changed` is the backend's own answer when it has
        one, else whether the settled screen differs from `before`; `observation` is the settled screen.
        A refused action (ok=False) settles too: it may have changed the screen part-way.
        Raises ExecutorError (closed, timed out, failed).
        """
        backend = self.backend
        detector = None if action.is_final else self._action_detector()
        given = before.image if isinstance(before, Observation) else before

        def execute() -> tuple[Image.Image | None, ExecResult]:
            prior = None
            if detector is not None:
                if getattr(backend, "fresh_before", False):
                    prior = self._grab_image()
                else:
                    prior = given or self._shared.last_image or self._grab_image()
            return prior, backend.execute(action)

        t = time.monotonic()
        prior, result = self._call(execute, f"executing {action.action}", timeout_s)
        wall = time.monotonic() - t
        if not result.execute_s:
            result.execute_s = wall
        if detector is None:
            return result
        # `before` only serves `changed` unless the detector waits for a late change: left out when the
        # backend already said (the sim does), one full-frame comparison less
        compare = prior if result.changed is None or detector.wait_for_change_s else None

        def wait() -> tuple[Any, ScreenGeometry]:
            settled = detector.wait(self._grab_image, backend.now, backend.sleep, before=compare,
                                    same_frame=self._same_frame)
            return settled, backend.geometry()

        settled, geometry = self._call(wait, "waiting for the screen to settle", timeout_s)
        result.settle_s = settled.settle_s
        result.settle_capture_s = settled.capture_s
        if result.changed is None:
            result.changed = settled.changed
        result.observation = Observation(settled.final_image, geometry)
        return result

    def close(self) -> None:
        """Close the backend (once) and end the worker thread; later calls raise ExecutorError."""
        shared = self._shared
        with shared.lock:
            if shared.closed:
                return
            shared.closed = True
        try:
            self.backend.close()
        finally:
            shared.worker.close()
            shared.last_image = None

    def release(self) -> None:
        """End the worker thread without closing the backend (the next call starts a new one)."""
        self._shared.worker.close()

    # -- the rules --------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], what: str, timeout_s: float | None = None) -> T:
        """`fn()` on the worker thread under the time limit, after the closed check; failures → one line."""
        if self.closed:
            raise ExecutorError(f"the {self.name} screen is closed; open a new one")
        limit = timeout_s or self.timeout_s
        try:
            return self._shared.worker.call(fn, limit, what)
        except CallTimeout as exc:
            raise ExecutorError(f"{self.name}: {exc}; is the screen / device responsive?") from None
        except VisagentError:
            raise
        except Exception as exc:
            text = " ".join(str(exc).split())
            raise ExecutorError(f"{self.name}: {what} failed: {type(exc).__name__}: {text}") from exc

    def _grab(self) -> Observation:
        obs = self.backend.screenshot()
        self._shared.last_image = obs.image
        return obs

    def _grab_image(self) -> Image.Image:
        return self._grab().image

    def _action_detector(self) -> SettleDetector | None:
        if self.settle is False:
            return None
        if isinstance(self.settle, SettleDetector):
            return self.settle
        own = getattr(self.backend, "settle", None)
        return own if isinstance(own, SettleDetector) else SettleDetector()

    @property
    def _same_frame(self) -> Callable[[Image.Image, Image.Image], bool] | None:
        return getattr(self.backend, "same_frame", None)
