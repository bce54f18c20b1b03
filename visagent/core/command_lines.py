"""Typed command lines in one canonical spelling, so the safety policy matches commands by meaning.

`canonical_commands(text)` splits typed text into shell commands (at `;`, `&&`, `||`, `|`, `&`, newlines,
`$(...)` and backticks, also inside `sh -c '...'` / `eval`), undoes quoting and escapes the way a POSIX shell
would (`r''m`, `\\rm`, `"rm"`), drops directory prefixes (`/bin/rm`) and rewrites each command in one spelling:

- `rm`: every recursive / force flag however written (`-fr`, `-r -f`, `-R`, `--recursive --force`, flags after
  the operands) → `rm -rf ...` (only the flags that were given: `rm -r x` stays `rm -r x`);
- `dd`: operands in a fixed order (`if=` first), so `dd of=/dev/sda if=/dev/zero` reads `dd if=/dev/zero ...`;
- `mke2fs`, `mkfs.ext4`, `mkdosfs` ... → `mkfs ...`;
- power-off and reboot however asked (`poweroff`, `halt`, `reboot`, `systemctl poweroff`, `init 0`,
  `telinit 6`, `loginctl reboot`) → `shutdown ...`;
- a fork bomb under any function name (`bomb(){ bomb|bomb& };bomb`) → `:(){ :|:& };:`.

The policy's `risky_text_patterns` are searched in the typed text and in each canonical command, so the
default patterns (`rm\\s+-rf`, `mkfs`, `dd\\s+if=`, `shutdown`, `:\\(\\)\\s*\\{`) hold every spelling above.
Pure functions, bounded work: text longer than `MAX_TEXT` characters is looked at in its first `MAX_TEXT`.
"""

from __future__ import annotations

import re
import shlex

MAX_TEXT = 20_000
_MAX_DEPTH = 3  # sh -c "sh -c '...'" nesting followed
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "$(", "`", "\n", ";;", "|&", "{", "}"})
# Wrappers that run the rest of the line as a command (their own options are skipped).
_WRAPPERS = frozenset({"sudo", "doas", "env", "nohup", "exec", "command", "nice", "ionice", "time", "builtin",
                       "xargs", "busybox", "stdbuf", "timeout", "chroot", "setsid", "unbuffer", "pkexec", "su"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "busybox", "ash"})
_POWER = frozenset({"poweroff", "halt", "reboot", "shutdown"})
_SYSTEMCTL_POWER = frozenset({"poweroff", "halt", "reboot", "kexec", "soft-reboot", "emergency", "rescue"})
_FORK_BOMB = re.compile(r"([A-Za-z_:.][\w:.-]*)\s*\(\s*\)\s*\{[^}]{0,200}?\1\s*\|\s*&?\s*\1")
_RM_LONG = {"--recursive": "r", "--force": "f"}


def canonical_commands(text: str) -> list[str]:
    """The commands in `text`, each in its canonical spelling (module doc); [] when there are none."""
    text = text[:MAX_TEXT]
    out: list[str] = []
    if _FORK_BOMB.search(text):
        out.append(":(){ :|:& };:")
    _collect(text, out, 0)
    return out


def _collect(text: str, out: list[str], depth: int) -> None:
    for words in _commands(text):
        line = _canonical(words, out, depth)
        if line:
            out.append(line)


def _tokens(text: str) -> list[str]:
    """Shell words and separators; quotes and escapes undone. Unbalanced quotes: the text split on spaces."""
    lexer = shlex.shlex(text.replace("$(", " $( ").replace("`", " ` "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace = " \t\r"
    lexer.wordchars += "$`{}~*?[]=:/.,-+@%^!#\n"
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quote: fall back to plain words
        tokens = re.findall(r"[^\s;&|()`]+|[;&|()`\n]+", text.replace("\\", ""))
    out: list[str] = []
    for tok in tokens:
        # newlines stay inside words with this lexer: split them out as separators
        parts = tok.split("\n")
        for i, part in enumerate(parts):
            if i:
                out.append("\n")
            if part:
                out.append(part)
    return out


def _commands(text: str) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for tok in _tokens(text):
        if tok in _SEPARATORS or set(tok) <= set(";&|()`\n"):
            if commands[-1]:
                commands.append([])
            continue
        commands[-1].append(tok.strip("`"))
    return [c for c in commands if c]


def _name(word: str) -> str:
    return word.rsplit("/", 1)[-1].lower()


def _canonical(words: list[str], out: list[str], depth: int) -> str:
    """One command's canonical line; nested `sh -c` / `eval` text is collected into `out` too."""
    words = [w for w in words if w]
    prefix: list[str] = []
    # leading VAR=value assignments and wrappers (with their options) before the real command
    while words:
        head = _name(words[0])
        if re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
            words = words[1:]
        elif head in _WRAPPERS and len(words) > 1:
            prefix.append(head)
            words = words[1:]
            while words and (words[0].startswith("-") or re.fullmatch(r"[A-Za-z_]\w*=.*|\d+[smhd]?", words[0])):
                if words[0] in ("-u", "-g", "-C", "-n", "-s", "-k") and len(words) > 1 and head in ("sudo", "doas", "nice", "timeout"):
                    words = words[1:]
                words = words[1:]
        else:
            break
    if not words:
        return ""
    name, args = _name(words[0]), words[1:]
    if depth < _MAX_DEPTH:
        if name in _SHELLS and "-c" in args[:-1]:
            _collect(args[args.index("-c") + 1], out, depth + 1)
        elif name == "eval" and args:
            _collect(" ".join(args), out, depth + 1)
    if name == "rm" or name == "unlink":
        line = _rm(args)
    elif name == "dd":
        ops = sorted(args, key=lambda a: (not a.startswith("if="), not a.startswith("of="), a))
        line = " ".join(["dd", *ops])
    elif name.startswith("mkfs") or name in ("mke2fs", "mkdosfs", "mkswap", "mkntfs", "wipefs"):
        line = " ".join(["mkfs", *args])
    elif name in _POWER:
        line = " ".join(["shutdown", name, *args])
    elif name in ("systemctl", "loginctl") and any(a in _SYSTEMCTL_POWER for a in args):
        line = " ".join(["shutdown", name, *args])
    elif name in ("init", "telinit") and any(a in ("0", "6") for a in args):
        line = " ".join(["shutdown", name, *args])
    else:
        line = " ".join([name, *args])
    return " ".join([*prefix, line])


def _rm(args: list[str]) -> str:
    """`rm` with its recursive / force flags gathered into one `-rf` / `-r` / `-f` word in front."""
    flags: set[str] = set()
    rest: list[str] = []
    operands_only = False
    for arg in args:
        if operands_only or arg == "-" or not arg.startswith("-"):
            rest.append(arg)
        elif arg == "--":
            operands_only = True
            rest.append(arg)
        elif arg.startswith("--"):
            long = arg.split("=", 1)[0].lower()
            hit = [v for k, v in _RM_LONG.items() if len(long) >= 4 and k.startswith(long)]  # GNU: unique prefixes
            if hit:
                flags.update(hit)
            else:
                rest.append(arg)
        else:
            for ch in arg[1:]:
                if ch in "rR":
                    flags.add("r")
                elif ch == "f":
                    flags.add("f")
            other = "".join(ch for ch in arg[1:] if ch not in "rRf")
            if other:
                rest.append("-" + other)
    head = "-" + "".join(f for f in "rf" if f in flags) if flags else ""
    return " ".join(w for w in ["rm", head, *rest] if w)
