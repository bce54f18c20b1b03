"""`visagent report TRACE`: write a self-contained HTML report of one run."""

from __future__ import annotations

import sys

from visagent.outfile import check_output_file
from visagent.report import write_report
from visagent.trace import read_trace


def register(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a trace (screenshots, overlays, thoughts)")
    p.add_argument("trace", help="trace directory, e.g. runs/<run_id>")
    p.add_argument("--out", help="HTML file to write (default: <trace>/report.html)")
    p.set_defaults(handler=run)


def run(args) -> int:
    if args.out is not None:
        check_output_file(args.out, "--out", "report.html")
    out = write_report(args.trace, args.out)
    problems = read_trace(args.trace).problems
    for problem in problems:
        print(f"visagent: warning: {problem} (shown in the report)", file=sys.stderr)
    print(out)
    return 0
