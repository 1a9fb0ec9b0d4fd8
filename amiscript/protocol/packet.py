"""AMI packets as values: an ordered list of headers, as Asterisk keeps them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class Banner:
    """The greeting line a server sends once on connect (``Asterisk Call Manager/11.0.0``)."""

    text: str


class Packet:
    """One AMI message: headers in the order they came, names as written.

    Header names compare case-insensitively (Asterisk does), and the same name may repeat
    (``Output:`` once per CLI line), so this is a tuple of pairs rather than a dict.

    A value: immutable, compared and hashed by its headers. A packet read off the wire
    (``from_wire``) keeps its bytes and splits them into headers only when first asked: a
    client waiting for one answer through a flood of events reads each event's first line
    (``kind``) and nothing more, which is most of what keeping up with a busy PBX takes.
    """

    __slots__ = ("_headers", "_kind", "_raw", "size")

    def __init__(self, headers: tuple[tuple[str, str], ...]) -> None:
        self._headers: tuple[tuple[str, str], ...] | None = headers
        self._raw: bytes | None = None
        self._kind: str | None = None
        self.size = sum(len(name) + len(value) + 4 for name, value in headers)
        """Roughly how many bytes it takes on the wire (for memory bounds); read-only."""

    @classmethod
    def from_wire(cls, raw: bytes, kind: str | None = None) -> Packet:
        """A packet from the lines of ``raw`` (each ending in LF, one CR before it dropped), read
        as the codec reads them: a line without a colon is skipped, blanks after the colon too.
        ``kind``, if the reader already knows it."""
        packet = cls.__new__(cls)
        packet._headers = None
        packet._raw = raw
        packet._kind = kind
        packet.size = len(raw)
        return packet

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Packet:
        return cls(tuple(pairs))

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        headers = self._headers
        if headers is None:
            headers = self._headers = split_headers(self._raw or b"")
        return headers

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

    def __eq__(self, other: object) -> bool:
        return self.headers == other.headers if isinstance(other, Packet) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.headers)

    def __repr__(self) -> str:
        return f"Packet(headers={self.headers!r})"

    @property
    def kind(self) -> str:
        """``response``, ``event`` or ``action`` from the first header; ``""`` if none of those."""
        kind = self._kind
        if kind is None:
            kind = self._kind = self._first_header_kind()
        return kind

    def _first_header_kind(self) -> str:
        if self._raw is not None and (kind := kind_of_first_line(self._raw)) is not None:
            return kind
        if not self.headers:
            return ""
        first = self.headers[0][0].lower()
        return first if first in ("response", "event", "action") else ""

    def with_header(self, name: str, value: str) -> Packet:
        return Packet((*self.headers, (name, value)))


_KINDS = {b"response": "response", b"event": "event", b"action": "action"}


def kind_of_first_line(raw: bytes) -> str | None:
    """A packet's kind from its first line, or None if that line has no colon (it is then not
    the first header, and only splitting all of them tells)."""
    colon = raw.find(b":", 0, 9)
    if colon > 0 and raw.find(b"\n", 0, colon) < 0:
        return _KINDS.get(raw[:colon].lower(), "")
    return None if raw.find(b":", 0, raw.find(b"\n")) < 0 else ""


def split_headers(raw: bytes) -> tuple[tuple[str, str], ...]:
    """The headers of a packet's lines, by the codec's rules (see ``Packet.from_wire``)."""
    # Decoding once is the same as decoding each part: the cuts are at ASCII bytes, which are
    # never inside a UTF-8 sequence, and surrogateescape keeps every other byte as it was.
    headers = []
    for line in raw.decode("utf-8", "surrogateescape").split("\n"):
        name, colon, value = line.partition(":")
        if colon:
            if value.endswith("\r"):
                value = value[:-1]
            headers.append((name, value.lstrip(" \t")))
    return tuple(headers)


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
