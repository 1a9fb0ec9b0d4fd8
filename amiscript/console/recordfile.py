"""The file a recording goes to: checked before anything is sent, and replaced whole each time,
so that a crash or a full disk in the middle of a write leaves the previous complete script."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from amiscript.errors import UsageError
from amiscript.script.paths import is_dir

MODE = 0o644  # a script, not a secret: it holds ${env:NAME}, never the secret's value


def check_writable(path: Path, force: bool) -> None:
    """UsageError unless ``path`` can become the script: before connecting (`record`) or before
    the recording starts (`/record`), so that nothing is sent that could not be recorded."""
    if path.suffix not in (".yaml", ".yml"):
        raise UsageError(f"record: {path} should end in .yaml (it becomes a script)")
    if is_dir(path):
        raise UsageError(f"record: {path} is a directory; give a file name ending in .yaml")
    if os.path.lexists(path) and not force:  # lexists: a name too long is not an error yet
        raise UsageError(f"record: {path} exists; choose another name or pass --force")
    if not is_dir(path.parent):
        raise UsageError(f"record: {path.parent} is not a directory")
    # the one reliable test that the folder takes a new file: make one (os.access ignores
    # read-only mounts, ACLs and /proc)
    probe = _temporary(path)
    os.close(probe[0])
    os.unlink(probe[1])


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to a new file in the same folder, then rename it over ``path`` (atomic)."""
    handle, temporary = _temporary(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, MODE)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise UsageError(f"record: cannot write {path}: {exc.strerror or exc}") from None


def _temporary(path: Path) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"record: cannot write {path}: {exc.strerror or exc}") from None
