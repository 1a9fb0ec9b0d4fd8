"""One conversation's connection: opened on first use, read in one loop with one deadline.

The session owns what was received and hands it to whichever kind of step is waiting: raw
`expect` steps search decoded text (a StreamBuffer), AMI steps read packets (a PacketInbox).
When the kind of step changes, what is still unread moves across, so nothing is lost.
It never looks at which transport it has.
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Callable
from enum import Enum
from typing import TypeVar

from amiscript.engine.matcher import StreamBuffer
from amiscript.engine.output import Masker, Output
from amiscript.engine.packets import PacketInbox
from amiscript.errors import ConnectionLost, TransportError
from amiscript.signals import leave_signals_to_main_thread
from amiscript.transports.base import Target, Transport

T = TypeVar("T")
SETTLE_SECONDS = 0.05  # quiet time after which a match that might still grow is taken
LOG_LINE_MAX = 1 << 16  # -v shows at most this much of one received line: a peer may send one without end
# The AMI banner opens the stream; through telnet it follows the client's own few lines.
AMI_BANNER = re.compile(rb"(?:^|\n)Asterisk Call Manager/")
GREETING_BYTES = 4096
TLS_RECORDS = (b"\x15\x03", b"\x16\x03")  # a TLS alert or handshake record: the peer speaks TLS
TLS_PORT = 5039  # Asterisk's AMI-over-TLS port
TLS_HINT = "is this a TLS port? use tls://HOST:PORT"
# Login and Logoff as any send writes them, so that raw `send` text counts as well as `login:`
LOGIN_OR_LOGOFF = re.compile(rb"^[ \t]*action[ \t]*:[ \t]*(login|logoff)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


class Cancelled(Exception):
    """The run was asked to stop (Ctrl-C during a parallel run): unwind, closing everything."""


CANCEL_POLL = 0.2  # with a cancel flag, how often a wait looks at it


class Outcome(Enum):
    EOF = "end of file"
    TIMEOUT = "timeout"


class _Mode(Enum):
    TEXT = "text"
    PACKETS = "packets"


class Session:
    def __init__(
        self,
        opener: Callable[[Target], Transport],
        output: Output,
        mask: Masker,
        *,
        clock: Callable[[], float],
        match_max: int,
        backlog_size: int,
        cancel: threading.Event | None = None,
    ) -> None:
        self.cancel = cancel
        self._opener = opener
        self._output = output
        self._mask = mask
        self._clock = clock
        self.text = StreamBuffer(match_max)
        self._backlog_size = backlog_size
        self._packets: PacketInbox | None = None
        self._mode = _Mode.TEXT
        self._transport: Transport | None = None
        self._sending = False  # a send is under way: an interruption there leaves half a packet
        self.broken: TransportError | None = None  # why the connection is gone, if it broke
        self.eof = False
        self._received = 0
        self.recorder: Callable[[str, bytes], None] | None = None  # every byte, each way (--transcript)
        self.speaks_ami = False  # the peer greeted with the AMI banner, or took a `login` step
        self.logged_in = False  # a Login action was sent (step or raw text) and no Logoff since
        self._greeting = b""
        self._where: Target | None = None
        self._partial_line = ""
        self._cutting_line = False  # the line being logged passed LOG_LINE_MAX: drop the rest of it
        # surrogateescape keeps each byte that is not UTF-8, so -v can show it as it came (\xe9)
        self._log_decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._shows_received: bool = getattr(output, "shows_received", True)

    # -- connection ------------------------------------------------------------------------

    def connect(self, target: Callable[[], Target]) -> Transport | None:
        """The open transport (connecting on first use), or None once the stream has ended."""
        if self.eof:
            return None
        if self._transport is None:
            where = target()
            self.note(f"connecting to {where}")
            try:
                self._transport = self._opener(where) if self.cancel is None else self._open_or_cancel(where)
            except TransportError as exc:
                self.lose(exc)
                raise
            self._where = where
            self.note(f"connected to {where}")
        return self._transport

    def _open_or_cancel(self, where: Target) -> Transport:
        """Open in a helper thread and stop waiting for it once the run is cancelled: a connect
        or a TLS handshake can take its whole timeout (30 s), and a parallel run must stop at once.
        A transport the helper opens after that is closed by it, never used."""
        assert self.cancel is not None
        lock = threading.Lock()
        outcome: list[Transport | BaseException] = []
        abandoned = False

        def attempt() -> None:
            leave_signals_to_main_thread()
            try:
                opened: Transport | BaseException = self._opener(where)
            except BaseException as exc:  # handed to the waiting thread
                opened = exc
            with lock:
                if not abandoned:
                    outcome.append(opened)
                    return
            if not isinstance(opened, BaseException):
                opened.close()

        helper = threading.Thread(target=attempt, name="amiscript-connect", daemon=True)
        helper.start()
        while True:
            helper.join(CANCEL_POLL)
            with lock:
                if outcome:
                    break
                if self.cancel.is_set():
                    abandoned = True
                    raise Cancelled
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def send(self, target: Callable[[], Target], data: bytes, shown: str, timeout: float) -> None:
        """Send, connecting first if needed; raises TransportError if that fails."""
        if self.broken is not None:
            raise self.broken
        # after a clean end of file the transport is still there: how a write fares is its call
        transport = self._transport or self.connect(target)
        if transport is None:
            raise ConnectionLost("the connection is closed")
        self._output.sent(self._mask(shown))
        if self.recorder is not None:
            self.recorder("sent", data)
        self._sending = True
        try:
            transport.send(data, timeout)
        except TransportError as exc:
            self.lose(exc)
            raise
        self._sending = False
        for said in LOGIN_OR_LOGOFF.finditer(data):
            self.logged_in = said.group(1).lower() == b"login"

    def farewell(self, data: bytes, shown: str, timeout: float) -> bool:
        """On the way out of an interrupted run: send ``data`` if the connection is open and
        no send was cut in half, then give the peer up to ``timeout`` to answer and close.

        Best effort: never raises, and whatever arrives is not searched. True if it was sent.
        """
        transport = self._transport
        if transport is None or self.eof or self.broken is not None or self._sending:
            return False
        self._output.sent(self._mask(shown))
        if self.recorder is not None:
            self.recorder("sent", data)
        deadline = self._clock() + timeout
        try:
            transport.send(data, timeout)
            while (left := deadline - self._clock()) > 0 and transport.receive(left) != b"":
                pass
        except TransportError:
            pass
        return True

    def tls_hint(self) -> str:
        """For a wait that got nothing useful over plain TCP or telnet: a hint when the peer
        seems to speak TLS (its first bytes are a TLS record, or it is silent on port 5039)."""
        where = self._where
        if where is None or where.transport not in ("tcp", "telnet"):
            return ""
        if self._greeting[:2] in TLS_RECORDS or (self._received == 0 and where.port == TLS_PORT):
            return TLS_HINT
        return ""

    def lose(self, error: TransportError) -> None:
        """The connection failed or broke: what was received still counts, then end of file."""
        self.broken = error
        self._end()

    def close(self) -> None:
        self.flush_log()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- who reads what --------------------------------------------------------------------

    def packets(self) -> PacketInbox:
        """Switch to reading packets; unread text moves over to the packet reader."""
        if self._packets is None:
            # Only a reader that starts at the very first byte sees the server's banner.
            self._packets = PacketInbox(self._backlog_size, expect_banner=self._received == 0)
        if self._mode is _Mode.TEXT:
            self._mode = _Mode.PACKETS
            leftover = self.text.take_all()
            if leftover:
                self._packets.feed(leftover)
            if self.eof:
                self._packets.feed_eof()
        return self._packets

    def use_text(self) -> StreamBuffer:
        """Switch to reading text; bytes the packet reader holds move back."""
        if self._mode is _Mode.PACKETS and self._packets is not None:
            self._mode = _Mode.TEXT
            leftover = self._packets.unread()
            if leftover:
                self.text.feed(leftover)
            if self.eof and not self.text.eof:
                self.text.feed_eof()
        return self.text

    # -- the one wait loop -----------------------------------------------------------------

    def wait(
        self,
        transport: Transport | None,
        poll: Callable[[bool], T | None],
        timeout: float,
        deferred: Callable[[], bool] = lambda: False,
    ) -> tuple[T | Outcome, float]:
        """Feed what arrives to ``poll`` until it answers, the stream ends, or time runs out.

        ``poll(final)`` returns a result or None; ``final`` means nothing more will come (end
        of file, the deadline, or the peer went quiet while ``deferred()``). Returns the
        result or the Outcome, and the seconds waited.
        """
        started = self._clock()
        deadline = started + timeout
        while True:
            result = poll(self.eof)
            if result is not None:
                return result, self._clock() - started
            if self.eof or transport is None:
                return Outcome.EOF, self._clock() - started
            remaining = deadline - self._clock()
            if remaining <= 0:
                result = poll(True)
                if result is not None:
                    return result, self._clock() - started
                return Outcome.TIMEOUT, self._clock() - started
            # A deferred match is taken once the peer has been quiet for a moment.
            is_deferred = deferred()
            wait = min(remaining, SETTLE_SECONDS) if is_deferred else remaining
            if self.cancel is not None:
                if self.cancel.is_set():
                    raise Cancelled
                wait = min(wait, CANCEL_POLL)
            try:
                data = transport.receive(wait)
            except ConnectionLost as exc:
                self.lose(exc)
                continue
            if data is None:
                if is_deferred:
                    result = poll(True)
                    if result is not None:
                        return result, self._clock() - started
                continue
            if data == b"":
                self.note("end of file from the peer")
                self._end()
                continue
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        if self._received < GREETING_BYTES:
            self._greeting = (self._greeting + data)[:GREETING_BYTES]
            self.speaks_ami = self.speaks_ami or AMI_BANNER.search(self._greeting) is not None
        self._received += len(data)
        if self.recorder is not None:
            self.recorder("received", data)
        if self._mode is _Mode.PACKETS and self._packets is not None:
            self._packets.feed(data)
        else:
            if self._packets is not None:
                self._packets.skip_banner()  # raw expects are reading the start of the stream
            self.text.feed(data)
        if self._shows_received:
            self._log(data)

    def _end(self) -> None:
        if self.eof:
            return
        self.eof = True
        if self.recorder is not None:
            self.recorder("eof", b"")
        self.text.feed_eof()
        if self._packets is not None:
            self._packets.feed_eof()

    # -- what -v shows ---------------------------------------------------------------------

    def note(self, text: str) -> None:
        self._output.note(self._mask(text))

    def _log(self, data: bytes) -> None:
        lines = self._log_decoder.decode(data).split("\n")
        rest = lines.pop()  # the start of a line that has not ended yet
        if lines:
            first = self._partial_line + lines[0]
            if self._cutting_line:
                del lines[0]  # the end of a line already shown cut
            elif len(first) > LOG_LINE_MAX:
                lines[0] = self._cut(first)
            else:
                lines[0] = first
            self._partial_line = ""
            self._cutting_line = False
            for line in lines:
                self._output.received(self._mask(line.removesuffix("\r")))
        if self._cutting_line:
            return
        self._partial_line += rest
        if len(self._partial_line) > LOG_LINE_MAX:
            self._output.received(self._cut(self._partial_line))
            self._partial_line = ""
            self._cutting_line = True

    def _cut(self, line: str) -> str:
        """A line too long to show whole (a peer may send one without end); masked before cutting
        so a secret across the cut cannot show in part."""
        return f"{self._mask(line)[:LOG_LINE_MAX]}… (line cut: longer than {LOG_LINE_MAX} characters)"

    def flush_log(self) -> None:
        if self._partial_line:
            self._output.received(self._mask(self._partial_line))
            self._partial_line = ""
