"""Incremental AMI reader: bytes in, banners and packets out, no I/O and no clock.

Modelled on h11: feed bytes with ``receive_data`` (``b""`` means the peer closed), then call
``next_event`` until it returns ``Signal.NEED_DATA``. It never blocks, never rescans bytes
it has already searched for a line end, and never holds more than one line (bounded by
``max_line``) plus one packet's headers, whatever the peer sends.

Framing follows what a real Asterisk accepts (see ../shared/ami-captures): a line ends at
LF, one CR before it is dropped, a bare CR is data; a line without a colon is ignored;
blanks after the colon are skipped, trailing blanks kept; a blank line ends the packet.
"""

from __future__ import annotations

import re
from collections import deque
from enum import Enum

from amiscript.protocol.packet import Banner, Malformed, Packet, Problem, kind_of_first_line

# Asterisk's own limits for what it reads (manager.c: 1024-byte input buffer,
# AST_MAX_MANHEADERS = 128). A client reading a server uses far larger ones.
SERVER_MAX_LINE = 1024
SERVER_MAX_HEADERS = 128
CLIENT_MAX_LINE = 1 << 20
CLIENT_MAX_HEADERS = 1 << 16
KEEP_PACKET_BYTES = 1 << 20  # how much of a packet in progress take_unread can hand back
WAIT_FOR_WHOLE = 1 << 16  # a partial packet shorter than this waits to be framed whole
FRAME_WINDOW = 1 << 18  # how much of the buffer one pass of the fast path looks at


END_COMMAND = b"--END COMMAND--"
_PACKET_END = re.compile(rb"\n\r?\n")  # a line's LF, then a blank line
_FOLLOWS = re.compile(rb"(?i)follows")


class _FollowsPart(Enum):
    HEADERS = "headers"
    OUTPUT = "output"


def _is_follows(header: tuple[str, str]) -> bool:
    return header[0].lower() == "response" and header[1].strip().lower() == "follows"


class Signal(Enum):
    NEED_DATA = "need data"
    END_OF_STREAM = "end of stream"


Event = Banner | Packet | Malformed | Signal


class PacketReader:
    """Turns a byte stream into AMI events.

    ``expect_banner`` is for the client side: the first line is the server's greeting.
    ``max_line`` counts the bytes of a line including its line end. ``legacy_follows`` (client
    side) reads the `Response: Follows` Command answers of Asterisk 13 and older.
    """

    def __init__(
        self,
        *,
        expect_banner: bool = False,
        max_line: int = CLIENT_MAX_LINE,
        max_headers: int = CLIENT_MAX_HEADERS,
        legacy_follows: bool = False,
    ) -> None:
        self._buf = bytearray()
        self._start = 0  # first unconsumed byte
        self._scanned = 0  # bytes from _start already known to hold no LF
        self._want_banner = expect_banner
        self._max_line = max_line
        self._max_headers = max_headers
        self._headers: list[tuple[str, str]] = []
        self._problem: Problem | None = None
        self._discarding = False  # inside an over-long line, dropping bytes until LF
        self.long_lines = 0  # lines dropped for being over max_line, ever (for diagnostics)
        self._eof = False
        self._done = False
        self._line_start = 0  # where the line last returned began
        self._packet_start: int | None = None  # where the packet being read began
        self._legacy_follows = legacy_follows  # read `Response: Follows` bodies (a client option)
        self._follows: _FollowsPart | None = None
        self._follows_headers: list[bytes] = []
        self._ready: deque[tuple[Packet, int]] = deque()  # framed by the fast path: (packet, where it ends)

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("receive_data after end of stream")
        self._buf += data

    def take_unread(self) -> bytes:
        """Hand back the bytes not yet part of an event, from the start of a packet half read,
        and start afresh, end of stream included. For a client that switches from reading
        packets to reading raw text on the same stream (and may switch back)."""
        start = self._packet_start if self._packet_start is not None else self._start
        data = bytes(self._buf[start:])
        self._drop_all()
        self._headers = []
        self._problem = None
        self._follows = None
        self._packet_start = None
        self._discarding = False
        self._eof = self._done = False
        return data

    def skip_banner(self) -> None:
        """Someone else read the start of the stream: the next line is not the banner."""
        self._want_banner = False

    @property
    def buffered(self) -> int:
        """Bytes held that are not yet part of an event (for memory bounds and tests)."""
        return len(self._buf) - self._start

    def next_event(self) -> Event:
        ready = self._ready
        while True:
            if ready:
                packet, self._start = ready.popleft()
                if not ready:
                    self._scanned = 0
                    self._compact()
                return packet
            if self._between_packets():
                framed = self._frame_whole_packets()
                if framed:
                    continue
                partial = len(self._buf) - self._start
                if framed is None and not self._eof and partial < min(WAIT_FOR_WHOLE, self._max_line):
                    return Signal.NEED_DATA  # the rest of this packet comes with the next read
            line = self._next_line()
            if line is None:
                return self._at_end_of_data()
            if self._want_banner:
                self._want_banner = False
                return Banner(_decode(line))
            if self._packet_start is None and line:
                self._packet_start = self._line_start
            if self._follows is not None:
                if self._follows_line(line):
                    return self._finish_packet()
                continue
            if line:
                self._add_header(line)
                if self._legacy_follows and len(self._headers) == 1 and _is_follows(self._headers[0]):
                    self._follows = _FollowsPart.HEADERS
                    self._follows_headers = [b"privilege", b"actionid"]
                continue
            if self._headers or self._problem:
                return self._finish_packet()
            self._packet_start = None
            # blank lines between packets carry nothing; Asterisk skips them too

    def _between_packets(self) -> bool:
        return (
            self._packet_start is None
            and not self._headers
            and self._problem is None
            and self._follows is None
            and not self._want_banner
            and not self._discarding
        )

    def _frame_whole_packets(self) -> bool | None:
        """The fast path: frame every whole packet already buffered with one C-level search each,
        skipping blank lines between them, and leave splitting them into headers to whoever asks
        (``Packet.from_wire``). It stops at the first thing for the line reader: a line that
        starts with a bare CR, a packet not all here yet, anything near a limit, a legacy
        `Response: Follows`. Both paths give the same packets (tests/test_codec.py reads whole
        buffers and one byte at a time). True if it framed any or consumed blank lines; None if
        no packet ends in what is buffered (a short partial packet then waits for the next read
        and is framed whole, instead of going line by line)."""
        start = self._start
        data = bytes(self._buf[start : start + FRAME_WINDOW])  # bounded: an odd packet may stop the framing
        ready = self._ready
        max_line, max_headers, follows = self._max_line, self._max_headers, self._legacy_follows
        at = 0
        from_wire = Packet.from_wire
        end = None
        for end in _PACKET_END.finditer(data):
            stop = end.start() + 1  # just after the last line's LF
            while at < stop and data[at] in b"\r\n":  # blank lines between packets carry nothing
                if data.startswith(b"\n", at):
                    at += 1
                elif data.startswith(b"\r\n", at):
                    at += 2
                else:
                    break  # a line that starts with a bare CR: the line reader's
            if at >= stop:
                at = end.end()  # only blank lines
                continue
            if stop - at > max_line or data[at] in b"\r\n":
                break
            raw = data[at:stop]
            if b":" not in raw or (stop - at > max_headers and raw.count(b"\n") > max_headers):
                break
            kind = "event" if data.startswith(b"Event:", at) else kind_of_first_line(raw)  # the usual case first
            packet = from_wire(raw, kind)
            if (
                follows
                and kind != "event"
                and packet.kind == "response"
                and _FOLLOWS.search(raw)
                and _is_follows(packet.headers[0])
            ):
                break
            at = end.end()
            ready.append((packet, start + at))
        if end is None:
            return None
        if not ready and at:  # only blank lines: consumed all the same
            self._start = start + at
            self._scanned = 0
            return True
        return bool(ready)

    def _next_line(self) -> bytes | None:
        """The next complete line without its line end, or None if more bytes are needed."""
        buf = self._buf
        while True:
            if self._discarding:
                newline = buf.find(b"\n", self._start)
                if newline < 0:
                    self._drop_all()
                    return None
                self._start = newline + 1
                self._discarding = False
                self._scanned = 0
            search_from = self._start + self._scanned
            limit = self._start + self._max_line
            newline = buf.find(b"\n", search_from, limit)
            if newline >= 0:
                end = newline - 1 if newline > self._start and buf[newline - 1] == 0x0D else newline
                line = bytes(buf[self._start : end])
                self._line_start = self._start
                self._start = newline + 1
                self._scanned = 0
                self._compact()
                return line
            if len(buf) - self._start >= self._max_line:
                self._problem = self._problem or Problem.LINE_TOO_LONG
                self._discarding = True
                self.long_lines += 1
                continue
            self._scanned = len(buf) - self._start
            self._compact()
            return None

    def _add_header(self, line: bytes) -> None:
        colon = line.find(b":")
        if colon < 0:
            return
        if len(self._headers) >= self._max_headers:
            self._problem = self._problem or Problem.TOO_MANY_HEADERS
            return
        name = _decode(line[:colon])
        value = _decode(line[colon + 1 :].lstrip(b" \t"))
        self._headers.append((name, value))

    def _follows_line(self, line: bytes) -> bool:
        """A line of a `Response: Follows` packet; True when `--END COMMAND--` ends it.

        Asterisk 13 and older answer Command with the CLI output as raw LF-terminated lines
        between the headers and `--END COMMAND--`. Those lines may hold colons or be blank, so
        they are read as output, not headers: each becomes an ``Output`` header, the same shape
        as the modern answer. Only Privilege and ActionID come before the output.
        """
        if self._follows is _FollowsPart.HEADERS:
            name = line.split(b":", 1)[0].strip().lower()
            if b":" in line and name in self._follows_headers:
                self._follows_headers.remove(name)  # each once: a later one is output
                self._add_header(line)
                return False
            self._follows = _FollowsPart.OUTPUT
        if line.endswith(END_COMMAND):
            last = line[: -len(END_COMMAND)]
            if last:  # output that did not end in a newline runs into the marker
                self._add_output(last)
            return True
        self._add_output(line)
        return False

    def _add_output(self, line: bytes) -> None:
        if len(self._headers) >= self._max_headers:
            self._problem = self._problem or Problem.TOO_MANY_HEADERS
            return
        self._headers.append(("Output", _decode(line)))

    def _finish_packet(self) -> Packet | Malformed:
        packet = Packet(tuple(self._headers))
        problem = self._problem
        self._headers = []
        self._problem = None
        self._follows = None
        self._packet_start = None
        return Malformed(problem, packet) if problem else packet

    def _at_end_of_data(self) -> Event:
        if not self._eof:
            return Signal.NEED_DATA
        if self._done:
            return Signal.END_OF_STREAM
        self._done = True
        if self._headers or self._problem or self.buffered or self._discarding:
            packet = Packet(tuple(self._headers))
            self._headers = []
            self._drop_all()
            return Malformed(Problem.TRUNCATED, packet)
        return Signal.END_OF_STREAM

    def _drop_all(self) -> None:
        self._ready.clear()
        self._buf.clear()
        self._start = 0
        self._scanned = 0
        self._line_start = 0
        self._packet_start = None

    def _compact(self) -> None:
        # The bytes of a packet in progress are kept (bounded) so take_unread can hand it back.
        if self._packet_start is not None and self._start - self._packet_start > KEEP_PACKET_BYTES:
            self._packet_start = None
        keep = self._start if self._packet_start is None else self._packet_start
        # Deleting the consumed prefix costs a copy; do it only once it outweighs what is left.
        if keep > 65536 and keep * 2 > len(self._buf):
            del self._buf[:keep]
            self._start -= keep
            self._line_start = max(0, self._line_start - keep)
            if self._packet_start is not None:
                self._packet_start -= keep


def _decode(raw: bytes) -> str:
    # surrogateescape keeps any byte sequence round-trippable, so a server can echo bytes back.
    return raw.decode("utf-8", "surrogateescape")
