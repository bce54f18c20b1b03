"""`visagent export TRACE... --out data.jsonl`: turn traces into supervised training records."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from visagent.core.errors import TraceError, VisagentError
from visagent.traces.export import EXPORT_FORMATS, EXPORT_SPACES, export_records
from visagent.core.schemas import PROMPT_PROFILES
from visagent.core.outfile import check_output_file


def register(sub) -> None:
    p = sub.add_parser("export", help="export traces as training records (JSON lines, one per executed step)")
    p.add_argument("traces", nargs="+", help="trace directories (runs/<run_id>), or folders holding them (a "
                   "damaged trace found in a folder is left out with one line; one named here is an error)")
    p.add_argument("--out", required=True, help="JSON-lines file to write")
    p.add_argument("--space", choices=EXPORT_SPACES, default="norm1000",
                   help="coordinate space of targets and messages (default norm1000, Qwen3.5's grid)")
    p.add_argument("--prompt-profile", choices=PROMPT_PROFILES, default="full",
                   help="system prompt and tool schema of the records: full (Qwen's agent prompt, default) or "
                        "compact (short, for small models such as the shipped tiny one)")
    p.add_argument("--history-images", type=int, default=None, metavar="N",
                   help="screenshots each record's prompt shows as images, older steps as one line each (default: "
                        "the window each run used); a model trained on the records should be run with the same")
    p.add_argument("--format", dest="fmt", choices=EXPORT_FORMATS, default="qwen35",
                   help="assistant-turn format of the target (default qwen35: Qwen3.5 XML tool call)")
    p.add_argument("--include-failed", action="store_true",
                   help="also export unsuccessful runs (success: the eval verdict in meta.json, "
                        "else status success/answered)")
    p.add_argument("--split", action="append", dest="splits", choices=("train", "heldout"),
                   help="keep only runs of scenarios in this split (repeatable)")
    p.add_argument("--absolute-paths", action="store_true",
                   help="write absolute screenshot paths (default: relative to the output file)")
    p.set_defaults(handler=run)


def expand_traces(paths: list[str]) -> list[Path]:
    """Each argument is a trace directory (has meta.json) or a folder of them; raises TraceError otherwise.

    A directory that holds a trace's files (trace.jsonl, step screenshots) but no meta.json is kept as a
    trace, so reading it raises read_trace's error ("<path> has no meta.json; it is not a visagent trace"),
    the words `visagent report` uses for it.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if (path / "meta.json").is_file() or not path.is_dir() or _looks_like_a_trace(path):
            out.append(path)  # read_trace reports a missing meta.json / directory clearly
            continue
        children = sorted(c for c in path.iterdir() if (c / "meta.json").is_file())
        if not children:
            raise TraceError(f"{path} has no meta.json and holds no trace directories; it is not a visagent "
                             "trace nor a folder of them; pass runs/<run_id> or runs")
        out.extend(children)
    return out


def _looks_like_a_trace(path: Path) -> bool:
    """A run directory whatever happened to its meta.json: it holds trace.jsonl or a step/final screenshot."""
    return (path / "trace.jsonl").is_file() or (path / "final.png").is_file() or any(path.glob("step_*.png"))


def run(args) -> int:
    out = check_output_file(args.out, "--out", "data.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    traces = expand_traces(args.traces)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    count = 0
    runs: set[str] = set()
    skipped: dict[str, int] = {}

    named = {Path(raw) for raw in args.traces}  # traces asked for by name: damage there is an error

    def on_skip(path: Path, why: str) -> None:
        key = why.split(" (")[0]
        skipped[key] = skipped.get(key, 0) + 1

    def on_damaged(path: Path, error: VisagentError) -> None:
        """A damaged trace found in a folder is left out and said; one named on the command line stops."""
        if path in named:
            raise error
        print(f"visagent: skipped {' '.join(str(error).split())}", file=sys.stderr)
        skipped["damaged"] = skipped.get("damaged", 0) + 1

    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for record in export_records(traces, space=args.space, profile=args.prompt_profile, fmt=args.fmt, include_failed=args.include_failed,
                                         history_images=args.history_images,
                                         relative_to=None if args.absolute_paths else out.parent,
                                         splits=args.splits, on_skip=on_skip, on_damaged=on_damaged):
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
                runs.add(record["meta"]["run_id"])
        os.replace(tmp, out)  # a failed export leaves any earlier file untouched
    finally:
        tmp.unlink(missing_ok=True)
    left_out = "; ".join(f"{n} {why}" for why, n in sorted(skipped.items()))
    hint = " (--include-failed keeps them)" if "not successful" in skipped else ""
    print(f"wrote {count} records from {len(runs)} run(s) to {out}"
          + (f"; left out: {left_out}{hint}" if left_out else ""), file=sys.stderr)
    return 0
