"""A fault-injecting AMI peer: each fault is a connection handler for ``peers.tcp_peer``.

The peer speaks just enough AMI to get a client to the point where the fault should hit
(banner, a successful login, reading the next action) and then misbehaves in one precise way.
It parses what the client sends with its own few lines, not amiscript's codec, so a codec bug
cannot hide itself. Every handler ends when the client goes away (its sends fail or its reads
see end of file), so ``tcp_peer`` can join them.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

from .peers import Handler

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

# Events as a real Asterisk 22 sends them during a Local channel call (see the
# originate-local-async capture), with an ActionID no client ever uses.
EVENTS = (
    b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: Local/200@default-00000000;1\r\n"
    b"ChannelState: 0\r\nChannelStateDesc: Down\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n"
    b"ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\n"
    b"Context: default\r\nExten: 200\r\nPriority: 1\r\nUniqueid: 1795673699.0\r\nLinkedid: 1795673699.0\r\n\r\n"
    b"Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: Local/200@default-00000000;1\r\n"
    b"ChannelState: 0\r\nChannelStateDesc: Down\r\nCallerIDNum: 5551234\r\nCallerIDName: AMI Test\r\n"
    b"Context: default\r\nExten: 200\r\nPriority: 1\r\nUniqueid: 1795673699.0\r\nLinkedid: 1795673699.0\r\n"
    b"Extension: 200\r\nApplication: AppDial2\r\nAppData: (Outgoing Line)\r\n\r\n"
    b"Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: Local/200@default-00000000;2\r\n"
    b"Uniqueid: 1795673699.1\r\nLinkedid: 1795673699.0\r\nVariable: DIALSTATUS\r\nValue: ANSWER\r\n"
    b"ActionID: not-yours\r\n\r\n"
)
BLOCK = EVENTS * max(1, (1 << 20) // len(EVENTS))  # about 1 MiB of whole events, built once


class Conversation:
    """The peer's side of one connection: read the client's packets, answer with its ActionID."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self._buf = b""
        self.said = bytearray()  # what ``say`` sent, to compare with what the client shows
        conn.settimeout(30)

    def say(self, data: bytes) -> None:
        """Send and keep a copy (the floods send with ``conn.sendall``: a copy would not be bounded)."""
        self.conn.sendall(data)
        self.said += data

    def read_packet(self) -> dict[str, str]:
        """The client's next packet as headers (lower-case names); empty if it went away."""
        while b"\r\n\r\n" not in self._buf:
            chunk = self.conn.recv(65536)
            if not chunk:
                return {}
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\r\n\r\n", 1)
        headers = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return headers

    def answer(self, packet: dict[str, str], *lines: str) -> bytes:
        """An answer to ``packet``: ``Response: Success``, its ActionID, then ``lines``."""
        action_id = [f"ActionID: {packet['actionid']}"] if "actionid" in packet else []
        text = "".join(f"{line}\r\n" for line in ("Response: Success", *action_id, *lines))
        return text.encode() + b"\r\n"

    def logged_in(self) -> dict[str, str]:
        """Greet, accept the login, and return the action that follows it."""
        self.say(BANNER)
        login = self.read_packet()
        self.say(self.answer(login, "Message: Authentication accepted"))
        return self.read_packet()

    def wait_for_close(self) -> None:
        """Say nothing until the client goes away."""
        while self.conn.recv(65536):
            pass


Act = Callable[[Conversation], None]


def fault(act: Act, talks: list[Conversation] | None = None) -> Handler:
    """A handler running ``act`` on each connection; ``talks`` collects the conversations."""

    def handle(conn: socket.socket) -> None:
        talk = Conversation(conn)
        if talks is not None:
            talks.append(talk)
        act(talk)

    return handle


def silent(talk: Conversation) -> None:
    talk.wait_for_close()


def close_after_banner(talk: Conversation) -> None:
    """Greet, then close without answering. The login is read first: closing with unread bytes
    would make the kernel send RST, and the client would see a reset instead of end of file."""
    talk.say(BANNER)
    talk.read_packet()


def close_mid_packet(talk: Conversation) -> None:
    action = talk.logged_in()
    answer = talk.answer(action, "Ping: Pong", "Timestamp: 1795673699.000000")
    talk.say(answer[: len(answer) // 2])


def reset(talk: Conversation) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    talk.logged_in()
    talk.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


GARBAGE = b"caf\xe9 \x00\x1b[2J\xff\xfe end"  # Latin-1, a NUL, a clear-screen escape, bytes never UTF-8


def garbage(talk: Conversation) -> None:
    """Answer with a Message that is not UTF-8 and holds a NUL, then say nothing more."""
    action = talk.logged_in()
    answer = talk.answer(action, "Message: @")
    talk.say(answer.replace(b"@", GARBAGE))
    talk.wait_for_close()


class LongLine:
    """After the login, ``size`` bytes of one line with no line end, then silence."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent_all = threading.Event()  # the client read it all (bar the socket buffers)

    def __call__(self, talk: Conversation) -> None:
        talk.logged_in()
        chunk = b"x" * (1 << 20)
        for _ in range(self.size // len(chunk)):
            talk.conn.sendall(chunk)
        self.sent_all.set()
        talk.wait_for_close()


def flood(talk: Conversation) -> None:
    """After the login, events and never an answer, for as long as the client reads."""
    talk.logged_in()
    while True:
        talk.conn.sendall(BLOCK)


def trickle(interval: float) -> Act:
    """After the login, the right answer one byte every ``interval`` seconds."""

    def act(talk: Conversation) -> None:
        action = talk.logged_in()
        for byte in talk.answer(action, "Ping: Pong"):
            talk.say(bytes([byte]))
            time.sleep(interval)
        talk.wait_for_close()

    return act


class LateAnswer:
    """After the login, ``size`` bytes of unrelated events, then the answer to the action."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.answered = threading.Event()

    def __call__(self, talk: Conversation) -> None:
        action = talk.logged_in()
        while self.sent < self.size:
            talk.conn.sendall(BLOCK)
            self.sent += len(BLOCK)
        talk.conn.sendall(talk.answer(action, "Ping: Pong", "Message: the right answer, at last"))
        self.answered.set()
        talk.wait_for_close()
