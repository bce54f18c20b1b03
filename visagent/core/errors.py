"""One error hierarchy for the visagent layer.

Every error a user can cause or fix is a `VisagentError`: the CLI prints its message on one line and
exits 2, never a traceback. Messages name the bad value and say what to do.
"""


class VisagentError(Exception):
    """Base of all user-facing visagent errors."""


class ConfigError(VisagentError):
    """A bad setting, flag value or config file."""


class ParseError(VisagentError):
    """Model output that is not a valid action; the message can be sent back to the model."""


class ActionError(VisagentError, ValueError):
    """An action constructed with invalid arguments."""


class ExecutorError(VisagentError):
    """A screen or device that cannot be captured or driven (closed display, dead adb device, ...)."""


class ScenarioError(VisagentError):
    """An invalid scenario file or unknown scenario id."""


class TraceError(VisagentError):
    """A missing or damaged trace."""
