"""AMI packets as values: an ordered list of headers, as Asterisk keeps them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class Banner:
    """The greeting line a server sends once on connect (``Asterisk Call Manager/11.0.0``)."""

    text: str


@dataclass(frozen=True, slots=True)
class Packet:
    """One AMI message: headers in the order they came, names as written.

    Header names compare case-insensitively (Asterisk does), and the same name may repeat
    (``Output:`` once per CLI line), so this is a tuple of pairs rather than a dict.
    """

    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Packet:
        return cls(tuple(pairs))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first header called ``name`` (any case), as Asterisk's astman_get_header."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.headers)

    @property
    def kind(self) -> str:
        """``response``, ``event`` or ``action`` from the first header; ``""`` if none of those."""
        if not self.headers:
            return ""
        first = self.headers[0][0].lower()
        return first if first in ("response", "event", "action") else ""

    def with_header(self, name: str, value: str) -> Packet:
        return Packet((*self.headers, (name, value)))


class Problem(Enum):
    """Why a packet could not be read whole; the server answers each with its own error."""

    LINE_TOO_LONG = "line too long"
    TOO_MANY_HEADERS = "too many headers"
    TRUNCATED = "connection closed in the middle of a packet"


@dataclass(frozen=True, slots=True)
class Malformed:
    """A packet that broke a limit; ``packet`` holds the headers that were read (for ActionID)."""

    problem: Problem
    packet: Packet


class UnsafeHeader(ValueError):
    """A header name or value would change the packet's framing (CR, LF, or a colon in a name)."""


def encode_packet(headers: Iterable[tuple[str, str]], *, allow_cr: bool = False) -> bytes:
    """Serialise headers as ``Name: value\\r\\n`` lines and the closing blank line.

    Refuses CR and LF anywhere, and a colon in a name: either would let a value inject
    headers or whole actions into the stream. ``allow_cr`` lets a server echo a client's
    bare CR bytes inside a value, as Asterisk does; LF is never allowed.
    """
    parts: list[str] = []
    for name, value in headers:
        if not name or ":" in name or _has_line_break(name) or name != name.strip():
            raise UnsafeHeader(f"invalid header name {name!r}")
        if "\n" in value or (not allow_cr and "\r" in value):
            raise UnsafeHeader(f"header {name!r} has a line break in its value")
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    try:
        return "".join(parts).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:  # a lone surrogate that stands for no byte
        raise UnsafeHeader(f"header text {exc.object[exc.start : exc.end]!r} cannot be encoded as UTF-8") from None


def encode_banner(text: str) -> bytes:
    if _has_line_break(text):
        raise UnsafeHeader("banner has a line break")
    return f"{text}\r\n".encode("utf-8", "surrogateescape")


def _has_line_break(text: str) -> bool:
    return "\r" in text or "\n" in text
