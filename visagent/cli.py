"""The `visagent` command line.

Subcommands live in `visagent/commands/<name>.py`, one module each, found at start-up. A module defines
`register(subparsers)`, which adds its parser and sets `handler=<function(args) -> int>` as a default.
Packages above visagent (the `ui` dashboard) add subcommands the same way through the entry-point group
`visagent.commands` (each entry point names such a module), so visagent never imports them.
Flags whose dest matches a `Settings` field (e.g. `--max-steps` → `max_steps`) feed the settings
precedence; the handler reads the resolved settings from `args.settings`.

User errors (`VisagentError`, `EngineError`) print one line on stderr and exit 2; `--verbose` adds the
traceback for bug reports.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import pkgutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import visagent
import visagent.commands
from visagent.core.errors import VisagentError
from visagent.core.settings import load_settings

log = logging.getLogger("visagent")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visagent",
        description="A visual GUI agent on Qwen3.5: screenshots in, grounded actions out, every step traced.",
    )
    parser.add_argument("--version", action="version", version=f"visagent {visagent.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(visagent.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"visagent.commands.{info.name}")
        module.register(sub)
    for entry in importlib.metadata.entry_points(group="visagent.commands"):
        if entry.name in sub.choices:
            log.warning("plugin command %r (%s) ignored: a built-in command has that name", entry.name, entry.value)
            continue
        try:
            module = entry.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not take the whole CLI down
            log.warning("plugin command %r (%s) could not be loaded: %s", entry.name, entry.value, exc)
            continue
        module.register(sub)
    for command in sub.choices.values():  # `visagent run -v` works as well as `visagent -v run`
        if "-v" not in command._option_string_actions and "--verbose" not in command._option_string_actions:
            command.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                                 help="more logging (-vv for debug)")
    return parser


def _setup_logging(verbose: int, level_name: str) -> None:
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else getattr(logging, level_name.upper())
    if not verbose:
        # transformers is imported later (lazily): its env switches still apply. Without -v a user sees no
        # "Loading weights" bar and no "install causal_conv1d" advice (CUDA-only kernels) on every CPU run;
        # a variable the user set wins.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _os_error_line(exc: OSError) -> str:
    """`afile is a file, not a folder` for the usual mkdir mistake; else `PATH: strerror`."""
    if exc.filename is None:
        return str(exc.strerror or exc)
    path = Path(str(exc.filename))
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        blocker = next((p for p in (path, *path.parents) if p.is_file()), None)
        if blocker is not None:
            return f"{blocker} is a file, not a folder"
    return f"{exc.filename}: {exc.strerror or exc}"


def _stop_on_sigterm() -> Any:
    """SIGTERM (`kill`, service managers, job schedulers, test fixtures) stops every command as Ctrl-C does: a
    run finishes its trace as stopped, the dashboard and the server shut down, training stops (`--resume` goes
    on from its last periodic checkpoint). Only from the main thread (Python's rule); a SIGTERM the parent chose
    to ignore stays ignored. Returns the handler it replaced (None when it left SIGTERM alone)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) != signal.SIG_IGN:
        return signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises KeyboardInterrupt
    return None


def main(argv: list[str] | None = None) -> int:
    from engine.errors import EngineError

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed: what a model card quotes
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else 2
    previous = _stop_on_sigterm()
    try:
        args.settings = load_settings(vars(args))
        _setup_logging(args.verbose, args.settings.log_level)
        return int(args.handler(args) or 0)
    except (VisagentError, EngineError) as exc:
        if args.verbose:
            log.exception("error")
        print(f"visagent: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A path the user gave that cannot be written or read (a file where a folder should be, no
        # permission, disk full) that a command did not check itself: one line, not a traceback.
        if args.verbose:
            log.exception("error")
        print(f"visagent: error: {_os_error_line(exc)}; check the paths you passed (-v shows where)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("visagent: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:  # main() called in-process (tests, embedding) leaves the caller's handler
            signal.signal(signal.SIGTERM, previous)
