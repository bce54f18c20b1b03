"""`visagent scenarios`: list the sim scenarios, render one's first screen, run its oracle, or export a grounding
set (`export-grounding`, defined in visagent/commands/ground_eval.py)."""

from __future__ import annotations

import json
from pathlib import Path

from visagent.core.errors import ScenarioError


def register(sub) -> None:
    p = sub.add_parser("scenarios", help="list sim scenarios, render one (show) or run its oracle (solve)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    ls = verbs.add_parser("list", help="print id, platform, max steps, split and tags of every scenario")
    ls.add_argument("--split", choices=["train", "heldout"], help="only this split")
    ls.add_argument("--platform", choices=["desktop", "phone"], help="only this platform")
    ls.add_argument("--tags", nargs="+", help="only scenarios carrying at least one of these tags (key:value, e.g. "
                    "app:settings, or a value alone, e.g. easy), as the list prints them")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.add_argument("--path", action="append", help="scenario file or folder (default: the repo's scenarios/)")
    show = verbs.add_parser("show", help="render a scenario's initial screen to a PNG")
    show.add_argument("id", help="scenario id (see `visagent scenarios list`)")
    show.add_argument("--seed", type=int, help="layout/theme seed (default: the scenario's own)")
    show.add_argument("--out", required=True, help="PNG file to write")
    show.add_argument("--elements", action="store_true", help="also print the visible elements as JSON lines")
    show.add_argument("--path", action="append", help="scenario file or folder")
    solve = verbs.add_parser("solve", help="run the scenario's oracle and print its actions")
    solve.add_argument("id")
    solve.add_argument("--seed", type=int)
    solve.add_argument("--out", help="PNG of the final screen")
    solve.add_argument("--path", action="append")
    p.set_defaults(handler=run, _parser=p)
    # export-grounding: owned by the grounding module, which sets its own handler on this subparser
    from visagent.commands.ground_eval import register_export_grounding

    register_export_grounding(verbs)


def run(args) -> int:
    from visagent.sim.scenarios import filter_by_tags, get_scenario, load_scenarios, tag_strings

    if args.verb is None:
        args._parser.print_help()
        return 2
    if args.verb == "list":
        rows = load_scenarios(args.path)
        rows = [s for s in rows if (not args.split or s.split == args.split)
                and (not args.platform or s.platform == args.platform)]
        rows = filter_by_tags(rows, args.tags)
        if args.json:
            for s in rows:
                print(json.dumps(s.summary()))
            return 0
        width = max([len(s.id) for s in rows] + [2])
        print(f"{'id':<{width}}  {'platform':<8}  {'steps':>5}  {'split':<7}  tags")
        for s in rows:
            tags = " ".join(t for t in tag_strings(s) if not t.startswith("platform:"))  # the syntax --tags takes
            print(f"{s.id:<{width}}  {s.platform:<8}  {s.max_steps:>5}  {s.split:<7}  {tags}")
        print(f"# {len(rows)} scenarios")
        return 0
    sc = get_scenario(args.id, args.path)
    world = sc.make_world(args.seed)
    out = Path(args.out) if getattr(args, "out", None) else None
    if out is not None and out.suffix.lower() != ".png":
        raise ScenarioError(f"--out {out}: the screenshot is written as PNG; use a .png file name")
    if args.verb == "show":
        _save(world.render(), out)
        print(f"{sc.id} (seed {world.seed}): {sc.instruction_for(world)}")
        print(f"wrote {out} ({world.size[0]}x{world.size[1]})")
        if args.elements:
            for e in world.visible_elements():
                print(json.dumps(e.to_dict()))
        return 0
    from visagent.sim.oracle import solve as run_oracle

    print(f"{sc.id} (seed {world.seed}): {sc.instruction_for(world)}")
    for i, a in enumerate(run_oracle(sc, world), 1):
        print(f"{i:3d}  {a.summary()}")
    ok = sc.is_success(world)
    print("success" if ok else "FAILED")
    if out is not None:
        _save(world.render(), out)
    return 0 if ok else 1


def _save(img, out: Path | None) -> None:
    if out is None:
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        img.save(out)
    except (OSError, ValueError) as exc:  # ValueError: PIL knows no format for the file extension
        blocker = next((p for p in out.parents if p.is_file()), None)
        why = f"{blocker} is a file, not a directory" if blocker else (getattr(exc, "strerror", None) or str(exc))
        raise ScenarioError(f"--out {out}: cannot write ({why}); choose another path, e.g. shot.png") from None
