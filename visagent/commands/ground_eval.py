"""`visagent ground-eval ANNOTATIONS --images DIR --model SPEC`: grounding accuracy on ScreenSpot-format files.

Reads ScreenSpot-Pro per-application files (a folder or one file), original ScreenSpot / ScreenSpot-v2 files or
converted v2 files (flavour detected per file, or --flavour); prints accuracy overall and per ui_type, group,
platform and application, wrong_format and mean latency; writes the results JSON (--json) and an HTML page of
the misses (--html). Skipped files, rows and images are listed on stderr by file and row; they never stop the run.
Workers are threads sharing one engine (see visagent.grounding.scoring for why).
Exit status 0 after a run (whatever the accuracy), 2 for bad input or when no item could be read.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from visagent.core.errors import ConfigError


def register(sub) -> None:
    from visagent.grounding.data import FLAVOURS
    from visagent.commands.ground import add_point_from_arg
    from visagent.grounding.predict import PROMPT_STYLES

    p = sub.add_parser("ground-eval", help="grounding accuracy on ScreenSpot / ScreenSpot-Pro annotation files")
    p.add_argument("annotations", metavar="ANNOTATIONS", help="an annotation JSON file or a folder of them")
    p.add_argument("--images", required=True, metavar="DIR", help="folder the img_filename paths are relative to")
    p.add_argument("--model", help="model spec: tiny, a checkpoint directory or an http(s)://host/v1 URL")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the results JSON here")
    p.add_argument("--html", dest="html_path", metavar="PATH", help="write an HTML page of the misses here")
    p.add_argument("--limit", type=int, help="evaluate only the first N items (in file order)")
    p.add_argument("--workers", type=int, default=1, help="parallel items (threads sharing the engine; default 1)")
    p.add_argument("--flavour", choices=FLAVOURS, default="auto",
                   help="annotation format: pro (x1,y1,x2,y2), v1 (original ScreenSpot/v2: x,y,w,h), "
                        "v2 (converted v2: x1,y1,x2,y2 + img_size); auto: detect per file")
    p.add_argument("--prompt-style", choices=PROMPT_STYLES, default="auto",
                   help="prompt per model family (auto: from the model's coordinate space)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation limit per item (default 128)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_point_from_arg(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from visagent.commands.ground import generation_config, load_model
    from visagent.grounding import evaluate_grounding, load_annotations
    from visagent.grounding.data import LoadProblem
    from visagent.grounding.misses_html import write_misses_html

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers} must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit} must be at least 1")
    images = Path(args.images).expanduser()
    if not images.is_dir():
        raise ConfigError(f"--images {args.images}: no such folder (the folder img_filename paths start from)")
    config = generation_config(args.max_new_tokens)
    _check_writable("--json", args.json_path)
    _check_writable("--html", args.html_path)
    data = load_annotations(args.annotations, args.flavour)
    for problem in data.problems:
        print(f"skipped: {problem.line()}", file=sys.stderr)
    for file, (flavour, why) in data.flavours.items():
        print(f"{file}: flavour {flavour} ({why})", file=sys.stderr)
    items = []
    for item in data.items:  # missing images are reported now, before a model loads for minutes
        if (images / item.img_filename).is_file():
            items.append(item)
        else:
            data.problems.append(LoadProblem(item.file, item.row, f"image not found: {images / item.img_filename}"))
            print(f"skipped: {data.problems[-1].line()}", file=sys.stderr)
    items = items[: args.limit] if args.limit else items
    if not items:
        raise ConfigError(f"no usable annotation in {args.annotations} ({len(data.problems)} problem(s) above)")

    engine = load_model(args.settings)
    progress = None
    lock = threading.Lock()
    tally = [0, 0]
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=len(items), file=sys.stderr, unit="item", desc="ground-eval", dynamic_ncols=True)

    def on_item(outcome, problem) -> None:
        with lock:
            if problem is not None:
                # tqdm.write keeps the bar intact; the line names the file and row
                (progress.write if progress is not None else _stderr)(f"skipped: {problem.line()}")
            else:
                tally[0] += outcome.correctness == "correct"
                tally[1] += 1
            if progress is not None:
                progress.set_postfix_str(f"acc {tally[0]}/{tally[1]}")
                progress.update(1)

    try:
        report = evaluate_grounding(engine, items, images, workers=args.workers, config=config,
                                    prompt_style=args.prompt_style, point_from=args.settings.point_from,
                                    model=args.settings.model, on_item=on_item)
    finally:
        if progress is not None:
            progress.close()
        engine.close()
    report.problems[:0] = data.problems
    report.flavours = dict(data.flavours)
    print(report.summary_table())
    if args.json_path:
        path = Path(args.json_path).expanduser()
        result = report.to_dict()
        result.update({"annotations": str(args.annotations), "images": str(images), "limit": args.limit,
                       "max_new_tokens": args.max_new_tokens, "prompt_style": args.prompt_style})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--json {path}: cannot write: {exc.strerror or exc}") from exc
        print(f"results: {path}")
    if args.html_path:
        page = write_misses_html(report, args.html_path)
        print(f"misses: {page} ({len(report.misses())} items)")
    return 0


def register_export_grounding(verbs) -> None:
    """Add `visagent scenarios export-grounding` to the scenarios command's verb parsers (its handler is ours)."""
    ex = verbs.add_parser("export-grounding",
                          help="write sim screenshots + ScreenSpot-Pro-style annotations for ground-eval")
    ex.add_argument("--split", choices=("train", "heldout"), default="heldout", help="scenario split (default heldout)")
    ex.add_argument("--out", required=True, metavar="DIR", help="output folder (images/ and annotations/ inside)")
    ex.add_argument("--seeds", type=int, default=3, help="seeds per scenario, 0..N-1 (default 3)")
    ex.add_argument("--screens", type=int, default=2,
                    help="screens per episode along the oracle's path (default 2: the first and the next new one)")
    ex.add_argument("--scenario", dest="scenario_ids", action="append", metavar="ID",
                    help="only this scenario (repeatable)")
    ex.set_defaults(handler=run_export_grounding)


def run_export_grounding(args) -> int:
    from visagent.grounding.sim_export import export_sim_grounding

    summary = export_sim_grounding(args.out, split=args.split, seeds=args.seeds, screens=args.screens,
                                   scenario_ids=args.scenario_ids)
    for note in summary.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {summary.items} items on {summary.screens} screens ({summary.skipped_duplicates} elements "
          f"skipped: another element has the same instruction, {summary.repeated_screens} repeated screens skipped) "
          f"to {summary.out}")
    print(f"evaluate: visagent ground-eval {summary.out / 'annotations'} --images {summary.out / 'images'} --model SPEC")
    return 0


def _check_writable(flag: str, value: str | None) -> None:
    """Fail before the run, not after it, when an output file's folder cannot be made."""
    if not value:
        return
    parent = Path(value).expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{flag} {value}: cannot create its folder: {exc.strerror or exc}") from exc
    if Path(value).expanduser().is_dir():
        raise ConfigError(f"{flag} {value} is a folder; give a file name")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)
