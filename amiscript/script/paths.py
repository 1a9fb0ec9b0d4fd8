"""File system questions about paths a user typed, asked so that they cannot crash.

``Path.resolve()`` raises RuntimeError on a symlink loop (Python 3.11), ``is_dir()`` raises
OSError on a name too long or a folder it may not search, and any call raises ValueError on a
NUL. A path like that is the user's mistake: these helpers answer for it, and the read that
follows (or ``no_nul``) reports the reason with the path's name.
"""

from __future__ import annotations

import os
from pathlib import Path

from amiscript.errors import Location, ScriptError


def resolved(path: Path) -> Path:
    """``path.resolve()``, or its absolute form when it cannot be followed (loop, too long)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))


def is_dir(path: Path) -> bool:
    """``path.is_dir()``, False where the system cannot tell (the read then says why)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    """``path.is_file()``, False where the system cannot tell (the read then says why)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def no_nul(path: str, what: str, where: Location | None) -> None:
    """No file name holds a NUL: say so where the path is written, before the system refuses it."""
    if "\0" in path:
        raise ScriptError(
            f"{what} {path!r} contains a NUL character; no file name can",
            where,
            hint="remove the \\0 from the path",
        )
