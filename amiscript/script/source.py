"""Showing the author where: a few lines of a script around a location, with a marker."""

from __future__ import annotations

from amiscript.errors import Location


def excerpt(location: Location | None, context: int = 2) -> list[str]:
    """Lines ``context`` above and below the location, numbered, the failing one marked with >."""
    if location is None or not location.line:
        return []
    try:
        with open(location.file, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    first = max(1, location.line - context)
    last = min(len(lines), location.line + context)
    width = len(str(last))
    shown = []
    for number in range(first, last + 1):
        marker = ">" if number == location.line else " "
        shown.append(f"  {marker} {number:>{width}} | {lines[number - 1]}")
        if number == location.line and location.column:
            shown.append(f"    {' ' * width} | {' ' * (location.column - 1)}^")
    return shown
