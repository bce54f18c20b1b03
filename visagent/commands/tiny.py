"""`visagent tiny --out DIR`: build the tiny qwen3_5_moe checkpoint (tokenizer trained on the agent's text)."""

from __future__ import annotations

from pathlib import Path

from visagent.core.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "tiny",
        help="build a tiny qwen3_5_moe checkpoint (random weights, tokenizer trained on the agent's own text)",
    )
    p.add_argument("--out", required=True, type=Path, help="directory to write the checkpoint into")
    p.add_argument("--seed", type=int, default=0, help="seed of the weight draw and the corpus (default 0)")
    p.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary target (default 4096)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from engine import build_tiny_checkpoint
    from visagent.training.corpus import agent_corpus

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory")
    if out.is_dir() and (out / "config.json").exists():
        # rebuild in place: stale shards from a bigger build would otherwise be picked up as weights
        for stale in out.glob("*.safetensors*"):
            stale.unlink()
    corpus = agent_corpus(seed=args.seed)
    sizes = {"vocab_size": args.vocab_size} if args.vocab_size else {}
    path = build_tiny_checkpoint(out, corpus.texts, seed=args.seed, **sizes)
    total = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    for source, what in corpus.sources.items():
        print(f"corpus: {source}: {what}")
    print(f"wrote {path} ({total / 1e6:.1f} MB)")
    return 0
