"""The packet view of a session for AMI steps: responses by ActionID, lists, and the event
backlog. Pure: bytes in, packets out, no I/O and no clock.

AMI steps read whole packets with the protocol codec rather than regexes over text, so an
event that happens to contain `Response: Success` can never be taken for the answer. Events
that arrive while a step waits for something else are kept, oldest first, in a bounded
backlog for `wait_event`; when it is full the oldest is dropped and counted, never silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import regex

from amiscript.errors import Location
from amiscript.protocol import Banner, Malformed, Packet, PacketReader, Problem, Signal
from amiscript.script.timedregex import Budget, search

DEFAULT_BACKLOG = 1000
BACKLOG_BYTES = 16 << 20  # the backlog also holds at most this much header text


@dataclass
class PacketInbox:
    backlog_size: int = DEFAULT_BACKLOG
    expect_banner: bool = False
    backlog: deque[Packet] = field(default_factory=deque)
    dropped: int = 0  # events that fell out of the backlog
    backlog_bytes: int = 0
    strays: int = 0  # responses nobody waited for
    banner: str | None = None
    eof: bool = False
    truncated: bool = False  # the stream ended inside a packet

    def __post_init__(self) -> None:
        self._reader = PacketReader(expect_banner=self.expect_banner, legacy_follows=True)
        self._recent: deque[Packet] = deque(maxlen=5)

    @property
    def recent(self) -> list[str]:
        """What came last, for a timeout's message (summarised only when asked: most never are)."""
        return [_summary(packet) for packet in self._recent]

    def feed(self, data: bytes) -> None:
        self._reader.receive_data(data)

    def feed_eof(self) -> None:
        if not self.eof:
            self.eof = True
            self._reader.receive_data(b"")

    def next_packet(self) -> Packet | None:
        """The next whole packet off the wire, or None until more bytes arrive."""
        while True:
            event = self._reader.next_event()
            if isinstance(event, Packet):
                self._recent.append(event)
                return event
            if isinstance(event, Banner):
                self.banner = event.text
                continue
            if isinstance(event, Malformed):
                if event.problem is Problem.TRUNCATED:
                    self.truncated = True
                    continue
                return event.packet  # over a client limit: what was read still counts
            assert event in (Signal.NEED_DATA, Signal.END_OF_STREAM)
            return None

    def next_answer(self) -> Packet | None:
        """Like ``next_packet``, but events go to the backlog on the way: the one loop a step
        waiting for its answer through a busy PBX's stream of events spends its time in."""
        while (packet := self.next_packet()) is not None:
            if packet.kind != "event":
                return packet
            self.keep_event(packet)
        return None

    def keep_event(self, packet: Packet) -> None:
        backlog = self.backlog
        backlog.append(packet)
        self.backlog_bytes += packet.size
        while len(backlog) > self.backlog_size or (self.backlog_bytes > BACKLOG_BYTES and len(backlog) > 1):
            self.backlog_bytes -= backlog.popleft().size
            self.dropped += 1

    def take_from_backlog(self, wanted: Callable[[Packet], bool]) -> Packet | None:
        for index, packet in enumerate(self.backlog):
            if wanted(packet):
                del self.backlog[index]
                self.backlog_bytes -= packet.size
                return packet
        return None

    def put_back(self, packets: list[Packet]) -> None:
        """Events a step took but did not use (a wait_event that timed out) go back, in order."""
        for packet in reversed(packets):
            self.backlog.appendleft(packet)
            self.backlog_bytes += packet.size

    def skip_banner(self) -> None:
        self._reader.skip_banner()

    @property
    def long_lines(self) -> int:
        """Lines the reader dropped for being over its line limit."""
        return self._reader.long_lines

    def unread(self) -> bytes:
        """Bytes received but not yet part of a packet, for a raw `expect` that comes next."""
        self.eof = False  # the reader forgets the end of stream too; the session feeds it again
        return self._reader.take_unread()


def _summary(packet: Packet) -> str:
    first = " ".join(f"{name}: {value}" for name, value in packet.headers[:1])
    action_id = packet.get("ActionID")
    return f"{first} (ActionID {action_id})" if action_id else first or "(empty packet)"


@dataclass(frozen=True, slots=True)
class Check:
    """One header matcher, compiled: exact text, or a regex searched with named captures."""

    header: str
    pattern: regex.Pattern[str]
    describe: str
    location: Location | None = None

    def match(self, packet: Packet | dict[str, str], budget: Budget | None = None) -> dict[str, str] | None:
        """Captures if the header matches (all values of a repeated header, joined by LF)."""
        value = header_text(packet, self.header)
        if value is None:
            return None
        found = search(self.pattern, value, budget, self.location)
        if found is None:
            return None
        return {name: text or "" for name, text in found.groupdict().items()}


def header_text(packet: Packet | dict[str, str], name: str) -> str | None:
    if isinstance(packet, dict):
        return next((value for key, value in packet.items() if key.lower() == name.lower()), None)
    values = packet.get_all(name)
    return "\n".join(values) if values else None


def as_item(packet: Packet) -> dict[str, str]:
    """An event as a list item: headers by name (a repeated header keeps its values joined)."""
    item: dict[str, str] = {}
    for name, value in packet.headers:
        item[name] = f"{item[name]}\n{value}" if name in item else value
    return item


def match_all(
    checks: tuple[Check, ...], packet: Packet | dict[str, str], budget: Budget | None = None
) -> dict[str, str] | None:
    captures: dict[str, str] = {}
    for check in checks:
        found = check.match(packet, budget)
        if found is None:
            return None
        captures.update(found)
    return captures
