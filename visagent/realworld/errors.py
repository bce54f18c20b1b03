"""Errors of the real-desktop world, each one line, and the check for a missing Debian package."""

from __future__ import annotations

import shutil

from visagent.core.errors import ConfigError, ExecutorError

SETUP_COMMAND = "bash scripts/system-deps.sh"


class MissingProgram(ConfigError):
    """A program the world needs is not installed; the message names its Debian package and the setup command."""


class ProgramError(ExecutorError):
    """A program of the world failed to start, or died during the run (the run ends with status `error`)."""


def require(executable: str, package: str) -> str:
    """The path of `executable`, or MissingProgram naming the Debian `package` and the setup command."""
    path = shutil.which(executable)
    if path is None:
        raise MissingProgram(f"{executable} is not installed (Debian package {package}); run `{SETUP_COMMAND}`")
    return path
