"""Packets formatted for a person: one header a line, values aligned, colour only on a terminal.

Colour follows https://no-color.org: none when ``NO_COLOR`` is set to anything non-empty, and
none when the output is not a terminal (a pipe or a file gets plain text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TextIO

from amiscript.protocol import Packet

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
DIM = "\x1b[2m"
RED = "\x1b[31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
CYAN = "\x1b[36m"

_RESPONSE_COLOURS = {"success": GREEN, "goodbye": GREEN, "follows": GREEN, "error": RED}


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    if environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def render_packet(packet: Packet, *, colour: bool, mask: Callable[[str], str] = lambda text: text) -> str:
    """The packet as aligned ``Name: value`` lines (without a final newline); an event gets a
    marker line so that it stands apart from the answers to what was typed."""
    if not packet.headers:
        return ""
    width = max(len(name) for name, _ in packet.headers) + 1
    lines = []
    for name, value in packet.headers:
        label = f"{name}:".ljust(width)
        shown = mask(value)
        if colour:
            label = f"{DIM}{label}{RESET}"
            tint = _value_colour(name, value)
            if tint:
                shown = f"{tint}{shown}{RESET}"
        lines.append(f"{label} {shown}".rstrip())
    if packet.kind == "event":
        marker = f"-- event {mask(packet.get('Event') or '')}"
        lines.insert(0, f"{CYAN}{marker}{RESET}" if colour else marker)
    return "\n".join(lines)


def _value_colour(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered == "response":
        return _RESPONSE_COLOURS.get(value.strip().lower(), YELLOW)
    if lowered == "event":
        return BOLD + CYAN
    if lowered == "message":
        return BOLD
    return ""


def notice(text: str, *, colour: bool) -> str:
    """A line from the console itself (not the server), set apart by colour or by `# `."""
    return f"{YELLOW}# {text}{RESET}" if colour else f"# {text}"
