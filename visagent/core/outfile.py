"""Check an output file path before the work that fills it, so a bad path never costs a finished result."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from visagent.core.errors import ConfigError


def check_output_file(path: str | Path, flag: str, example: str) -> Path:
    """Return `path` once it is clear a file can be written there; create nothing.

    `flag` names the option in messages ("--out"); `example` is a file name to suggest when a directory was
    given ("report.html"). The nearest existing ancestor must be a directory in which a file can be created
    (probed with a temporary file, removed at once, so read-only file systems and root-owned folders are
    caught whoever runs it); an existing file must be openable for writing. Missing folders in between are
    left for the caller to create. Raises ConfigError naming the path and what is wrong with it.
    """
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{flag} {out} is a directory; give a file such as {out / example}")
    if out.exists():
        try:
            with out.open("ab"):
                pass  # appending nothing leaves the file as it was
        except OSError as exc:
            raise ConfigError(f"{flag} {out} cannot be written ({exc.strerror}); "
                              "choose another file or fix its permissions") from None
    ancestor = out.parent
    while not ancestor.exists():  # a dangling symlink "exists" as False too; its parent is checked instead
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{flag} {out} lies under {ancestor}, which is a file, not a directory; "
                          "choose another path")
    try:
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".visagent-write-check-")
    except OSError as exc:
        raise ConfigError(f"{flag} {out}: cannot create files in {ancestor} ({exc.strerror}); "
                          "choose a writable directory") from None
    os.close(fd)
    os.unlink(probe)
    return out
