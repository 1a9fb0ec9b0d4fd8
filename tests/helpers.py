"""Test doubles of the outside world only (never of amiscript's own code)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

AMISCRIPT = (sys.executable, "-m", "amiscript")  # the CLI as a user runs it, in a subprocess


@dataclass
class Recorder:
    """An ``Output`` that keeps everything, to assert on what a user would see."""

    printed: list[str] = field(default_factory=list)
    sent_text: list[str] = field(default_factory=list)
    received_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def print(self, text: str) -> None:
        self.printed.append(text)

    def sent(self, text: str) -> None:
        self.sent_text.append(text)

    def received(self, text: str) -> None:
        self.received_lines.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def everything(self) -> str:
        return "\n".join(self.printed + self.sent_text + self.received_lines + self.notes)


@dataclass
class FakeClock:
    """A monotonic clock that moves only when told, so timeouts cost no real time."""

    now: float = 0.0
    slept: float = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.advance(seconds)


def ami_peer(answer):  # type: ignore[no-untyped-def]
    """A MemoryTransport peer that reads whole action packets and answers each with
    ``answer(headers) -> bytes`` (headers as a case-insensitive lookup function and dict)."""
    from amiscript.protocol import Packet, PacketReader

    reader = PacketReader()

    def peer(data: bytes) -> bytes | None:
        reader.receive_data(data)
        out = b""
        while isinstance(packet := reader.next_event(), Packet):
            out += answer(packet)
        return out or None

    return peer
