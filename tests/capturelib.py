"""Load the reference AMI captures (../shared/ami-captures) and compare bytes fairly.

For every NAME the directory holds ``NAME.txt`` (readable, with a SENT section of
``--- t=X send N bytes`` / ``--- t=X close: ...`` markers and a TIMELINE), ``NAME.bin`` (every
byte received from the real Asterisk) and ``NAME.sent.bin`` (every byte sent, back to back).
``load_capture`` splits the sent bytes at those markers so a test can replay the very writes
the recording client made, and ``normalize`` blanks what differs between runs (INDEX.txt).

Usable by any test: codec tests feed ``received`` to a reader, simulator tests replay ``chunks``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "ami-captures"

_SEND = re.compile(r"^--- t=(?P<t>[0-9.]+) send (?P<n>[0-9]+) bytes(?: \((?P<note>.*)\))?$")
_CLOSE = re.compile(r"^--- t=(?P<t>[0-9.]+) close: (?P<why>.*)$")
_TIMELINE = re.compile(r"^t=(?P<t>[0-9.]+) (?P<what>\w+)(?::? (?P<rest>.*))?$")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One write the recording client made: ``at`` seconds after connecting."""

    at: float
    data: bytes
    note: str = ""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One TIMELINE line: ``what`` is connect, send, recv, eof or close; ``size`` for send/recv."""

    at: float
    what: str
    size: int | None
    text: str


@dataclass(frozen=True, slots=True)
class Capture:
    name: str
    chunks: tuple[Chunk, ...]
    received: bytes
    timeline: tuple[TimelineEntry, ...]
    closed_by_client_at: float | None  # the SENT section's final "close" marker, if any

    @property
    def sent(self) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks)

    @property
    def server_closed(self) -> bool:
        """True when the server ended the conversation (the client saw EOF)."""
        return any(entry.what == "eof" for entry in self.timeline)


def capture_names() -> list[str]:
    """Every capture that has all three files, sorted."""
    return sorted(
        path.name[: -len(".txt")]
        for path in CAPTURES.glob("*.txt")
        if path.name != "INDEX.txt"
        and path.with_suffix(".bin").exists()
        and (CAPTURES / f"{path.name[: -len('.txt')]}.sent.bin").exists()
    )


@cache
def load_capture(name: str) -> Capture:
    text = (CAPTURES / f"{name}.txt").read_text(encoding="utf-8", errors="replace")
    sent = (CAPTURES / f"{name}.sent.bin").read_bytes()
    received = (CAPTURES / f"{name}.bin").read_bytes()
    chunks: list[Chunk] = []
    offset = 0
    closed_at: float | None = None
    timeline: list[TimelineEntry] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("=== "):
            section = line.strip("= ").split(" ")[0]
            continue
        if section == "SENT":
            if match := _SEND.match(line):
                size = int(match["n"])
                chunks.append(Chunk(float(match["t"]), sent[offset : offset + size], match["note"] or ""))
                offset += size
            elif match := _CLOSE.match(line):
                closed_at = float(match["t"])
        elif section == "TIMELINE" and (match := _TIMELINE.match(line)):
            rest = match["rest"] or ""
            size = re.match(r"([0-9]+) bytes", rest)
            timeline.append(TimelineEntry(float(match["t"]), match["what"], int(size[1]) if size else None, rest))
    if offset != len(sent):
        raise ValueError(f"capture {name}: send markers cover {offset} of {len(sent)} sent bytes")
    return Capture(name, tuple(chunks), received, tuple(timeline), closed_at)


# Header values that differ between runs of the same conversation (see INDEX.txt). Names are
# matched exactly at the start of a line; "*Uniqueid"/"*Linkedid" covers DestUniqueid & co.
_VARYING = (
    "Uptime",
    "LastReload",
    "Timestamp",
    "EventTV",
    "SessionTV",
    "SessionID",
    "Challenge",
    "CoreStartupDate",
    "CoreStartupTime",
    "CoreReloadDate",
    "CoreReloadTime",
)
_VARYING_LINE = re.compile(rb"^(" + b"|".join(name.encode() for name in _VARYING) + rb"): .*$")
_IDS = re.compile(rb"^(\w*(?:Uniqueid|Linkedid)): [0-9]+\.[0-9]+$")
# Security events name both ends as IPV4/TCP/addr/port: the client's port is random, and a
# simulator on a free port differs from Asterisk's 5038 too.
_ADDRESS = re.compile(rb"^((?:Local|Remote)Address: IPV[46]/\w+/.*/)[0-9]+$")
# "Local/200@default-00000002;1": the channel sequence number counts up during a run.
_CHANNEL_SEQ = re.compile(rb"(Local/[^\s;]*-)[0-9a-f]{8}(;[12])")
# CLI output of "core show uptime" depends on when it ran.
_UPTIME_OUTPUT = re.compile(rb"^(Output: (?:System uptime|Last reload)): .*$")


def normalize(data: bytes) -> bytes:
    """``data`` with run-dependent values replaced by ``<varies>`` (line ends kept as they are)."""
    lines = data.split(b"\r\n")
    out = []
    for line in lines:
        line = _VARYING_LINE.sub(rb"\1: <varies>", line)
        line = _IDS.sub(rb"\1: <varies>", line)
        line = _ADDRESS.sub(rb"\1<port>", line)
        line = _UPTIME_OUTPUT.sub(rb"\1: <varies>", line)
        line = _CHANNEL_SEQ.sub(rb"\1<seq>\2", line)
        out.append(line)
    return b"\r\n".join(out)


def split_packets(data: bytes) -> list[bytes]:
    """Split a server's byte stream at blank lines; the banner line, if any, comes first.

    Each item keeps its terminating ``\\r\\n\\r\\n`` so that joining the list gives ``data`` back.
    """
    items: list[bytes] = []
    rest = data
    if rest.startswith(b"Asterisk Call Manager/"):
        end = rest.find(b"\r\n") + 2
        items.append(rest[:end])
        rest = rest[end:]
    while rest:
        end = rest.find(b"\r\n\r\n")
        if end < 0:
            items.append(rest)
            break
        items.append(rest[: end + 4])
        rest = rest[end + 4 :]
    return items
