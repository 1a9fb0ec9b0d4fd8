"""What the interpreter tells the outside world, and the masking every such text goes through."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

MASK = "****"


class Output(Protocol):
    """Where a run's visible text goes; implemented in ``amiscript.report``.

    Every text handed over is already masked: a reporter never sees a secret. A reporter may
    set ``shows_received = False`` when it drops received lines (no -v): the session then skips
    splitting a fast stream into lines and masking each one, which would dominate its cost.
    """

    def print(self, text: str) -> None:
        """A `print` or `fail` line for the user (stdout)."""

    def sent(self, text: str) -> None:
        """What went to the peer (shown with -v)."""

    def received(self, text: str) -> None:
        """A line that came from the peer (shown with -v)."""

    def note(self, text: str) -> None:
        """Progress the user may want with -v: connecting, matched, waiting."""


class Masker:
    """Replaces every secret value by ``****``, longest first so overlaps cannot leak a part."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    @property
    def longest(self) -> int:
        return len(self._secrets[0]) if self._secrets else 0

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def one_line(text: str, limit: int = 200) -> str:
    """A quoted, single-line rendering of received text for diagnostics (last ``limit`` chars)."""
    if len(text) > limit:
        text = "…" + text[-limit:]
    escaped = []
    for char in text:
        if char == "\r":
            escaped.append("\\r")
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif char == '"':
            escaped.append('\\"')
        elif char == "\\":
            escaped.append("\\\\")
        elif not char.isprintable():
            escaped.append(f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
