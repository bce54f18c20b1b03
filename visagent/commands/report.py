"""`visagent report TRACE`: write a self-contained HTML report of one run, or (`--gif`) an animated GIF of it."""

from __future__ import annotations

import sys

from visagent.core.outfile import check_output_file
from visagent.traces.report import write_report
from visagent.core.trace import read_trace


def register(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a trace (screenshots, overlays, thoughts)")
    p.add_argument("trace", help="trace directory, e.g. runs/<run_id>")
    p.add_argument("--out", help="file to write (default: <trace>/report.html, with --gif <trace>/run.gif)")
    p.add_argument("--gif", action="store_true", help="write an animated GIF instead: each step's screen with the "
                   "markers and a caption of its action, then the final screen with the verdict")
    p.add_argument("--gif-size", type=int, default=640, metavar="PX",
                   help="longest side of the GIF's screens in pixels (default 640)")
    p.set_defaults(handler=run)


def run(args) -> int:
    if args.gif:
        return _gif(args)
    if args.out is not None:
        check_output_file(args.out, "--out", "report.html")
    out = write_report(args.trace, args.out)
    problems = read_trace(args.trace).problems
    for problem in problems:
        print(f"visagent: warning: {problem} (shown in the report)", file=sys.stderr)
    print(out)
    return 0


def _gif(args) -> int:
    from visagent.traces.animation import write_gif
    from visagent.core.errors import ConfigError

    if args.gif_size < 64:
        raise ConfigError(f"--gif-size {args.gif_size}: give at least 64 pixels")
    if args.out is not None:
        check_output_file(args.out, "--out", "run.gif")
        if not args.out.lower().endswith(".gif"):
            raise ConfigError(f"--out {args.out}: the animation is written as GIF; use a .gif file name")
    read_trace(args.trace)  # a missing trace is one line (TraceError) before anything is drawn
    try:
        out = write_gif(args.trace, args.out, max_side=args.gif_size)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(out)
    return 0
