"""`visagent ...` run in the test process: `visagent.cli.main(argv)` with its output captured.

Most command-line tests check what a command prints and its exit code, not the process boundary; starting the
console script for each costs an interpreter start and the imports again. `InProcessCli` calls the same `main`
the console script calls and gives back what a `subprocess.run(..., capture_output=True, text=True)` would:
`returncode`, `stdout`, `stderr`. What stays a subprocess on purpose: signals, a reader that goes away, the
console script itself (tests/test_cli.py), programs that must run in a clean process (X display at import).

The process state `main` touches is put back after each call: the root logger (main's `logging.basicConfig`
writes to the captured stderr, as it writes to the real one in a fresh process; pytest's own handlers are set
aside meanwhile, so a warning logged during the call shows on stderr exactly as it would for a user), the two
environment switches `main` sets by default, stdin (empty unless `stdin=` is given), the working directory
(`cwd=`) and the environment variables passed as `env=` (None removes one).
"""

from __future__ import annotations

import io
import logging
import os
import sys
from dataclasses import dataclass

import pytest

_MAIN_SETS = ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")  # visagent.cli._setup_logging


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


class InProcessCli:
    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def __call__(self, *argv: str, env: dict[str, str | None] | None = None, stdin: str = "",
                 cwd: str | os.PathLike[str] | None = None) -> CliResult:
        from visagent.cli import main

        mp = self._monkeypatch
        if cwd is not None:
            mp.chdir(cwd)
        for key in _MAIN_SETS:  # remembered as they are now (set or not), put back at teardown
            was_set = key in os.environ
            mp.setenv(key, os.environ.get(key, ""))
            if not was_set:
                mp.delenv(key)
        for key, value in (env or {}).items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        mp.setattr(sys, "stdin", io.StringIO(stdin))
        self._capsys.readouterr()  # what came before this call is not its output
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        root.handlers.clear()  # so main's basicConfig installs its stderr handler, as in a fresh process
        try:
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse: usage errors (2), --help and --version (0)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
        finally:
            for handler in root.handlers[:]:
                root.removeHandler(handler)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
        out, err = self._capsys.readouterr()
        return CliResult(code, out, err)
