"""Where `--json`, `--junit` and `--transcript` may write, checked before anything is sent.

A report file is written whole at the end (the transcript as the run goes), so a wrong path
must be refused at the start: a glob after `--json` (`--json checks/*.yaml`) makes the first
script the report file, and a typo in a folder would otherwise show only after the calls were
placed. A file that already exists is overwritten only if it is a report of ours (or empty).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from amiscript.errors import UsageError

# How each report begins: an existing file that begins otherwise is not ours to overwrite.
_OPENINGS = {
    "--json": (b'{\n  "format": "amiscript-result"',),
    "--junit": (b"<?xml version='1.0' encoding='utf-8'?>\n<testsuites", b"<testsuites"),
    "--transcript": (b'{"t": ',),
}


def check_report_paths(reports: Sequence[tuple[str, str | None]], inputs: Iterable[str]) -> None:
    """``reports``: (option, path or None); ``inputs``: the files the run reads (scripts, the
    vars file, the inventory). UsageError (exit 2) for the first report path that cannot be used."""
    read = {_real(path): path for path in inputs}
    chosen: dict[str, str] = {}
    for option, path in reports:
        if path is None:
            continue
        if path in ("", "-"):
            raise UsageError(f"{option} needs a file name (standard output carries the run's own output)")
        if "\0" in path:
            raise UsageError(f"{option}: a file name cannot contain a NUL byte")
        real = _real(path)
        if real in read:
            raise UsageError(f"{option} {path} is {read[real]}, which this run reads: give the report its own file")
        if real in chosen:
            raise UsageError(f"{option} {path} is also the file of {chosen[real]}: give each report its own file")
        chosen[real] = option
        _check_writable(option, path)


def _check_writable(option: str, path: str) -> None:
    try:
        os.stat(path)
    except FileNotFoundError:
        # a new file, where the path leads (through a symlink to a file not there yet, too)
        folder = os.path.dirname(_real(path))
        if not os.path.isdir(folder):
            raise UsageError(f"{option} {path}: the folder {folder} does not exist") from None
        if not os.access(folder, os.W_OK):
            raise UsageError(f"{option} {path}: the folder {folder} is not writable") from None
        return
    except OSError as exc:  # a symlink loop, a name too long, a file where a folder should be
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    if os.path.isdir(path):
        raise UsageError(f"{option} {path} is a folder: give a file name")
    if not os.path.isfile(path):
        raise UsageError(f"{option} {path} is not a regular file")
    if not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path} is not writable")
    try:
        with open(path, "rb") as handle:
            opening = handle.read(64)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    if opening and not opening.startswith(_OPENINGS[option]):
        raise UsageError(
            f"{option} {path} exists and is not an amiscript report: it was left as it is "
            "(remove it first, or choose another file)"
        )


def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return os.path.abspath(path)
