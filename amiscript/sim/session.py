"""One AMI connection as a state machine: bytes in, bytes and timers out, no sockets.

The server hands a Session a Link (write, close, call_later) and feeds it what the peer sends.
Everything a client can observe is decided here and in actions.py, following Asterisk's
manager.c as recorded in the captures: the banner at once, Login before anything but
Logoff/Challenge, a failed Login answered after a pause and then hung up, events filtered by
the user's read classes and the session's event mask, and an unauthenticated connection closed
when authtimeout runs out.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from amiscript.protocol import (
    SERVER_MAX_HEADERS,
    SERVER_MAX_LINE,
    Malformed,
    Packet,
    PacketReader,
    Problem,
    Signal,
    encode_banner,
)
from amiscript.sim import perms
from amiscript.sim.actions import find_action
from amiscript.sim.hub import Hub
from amiscript.sim.identity import BANNER
from amiscript.sim.managerconf import ManagerUser, find_user
from amiscript.sim.messages import AmiEvent, action_id, error, event_tv, render, success

# Actions a connection may use before logging in (process_message in manager.c).
_BEFORE_LOGIN = frozenset({"login", "logoff", "challenge"})
# Asterisk formats this error into a 512-byte buffer, so long action names are cut.
_ERROR_BUFFER = 512


class Link(Protocol):
    """What a session needs from its connection. The server implements it over asyncio."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None:
        """Send what is buffered, then close. Later writes are dropped."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``delay`` seconds unless the link has closed by then."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def security_text(self) -> str:
        """How security events print an address: ``IPV4/TCP/127.0.0.1/5038``."""
        try:
            version = ipaddress.ip_address(self.host.split("%", 1)[0]).version
        except ValueError:
            version = 4
        return f"IPV{version}/TCP/{self.host}/{self.port}"


class Phase(Enum):
    CONNECTED = "connected"  # banner sent, not logged in
    AUTHENTICATED = "authenticated"
    REJECTING = "rejecting"  # failed Login: pausing before the error, then hanging up
    CLOSED = "closed"


@dataclass(eq=False, slots=True)
class _Wait:
    """A WaitEvent in progress; compared by identity so a timer knows its own wait."""

    packet: Packet


@dataclass(eq=False, slots=True)
class _Hold:
    """A synchronous action in progress: the events this session may read, queued meanwhile."""

    events: list[bytes]


class Session:
    """The server side of one connection; the Link carries out what it decides."""

    def __init__(self, hub: Hub, link: Link, local: Endpoint, peer: Endpoint) -> None:
        self.hub = hub
        self.link = link
        self.local = local
        self.peer = peer
        self.reader = PacketReader(max_line=SERVER_MAX_LINE, max_headers=SERVER_MAX_HEADERS)
        self.phase = Phase.CONNECTED
        self.account = ""  # the Username as the client typed it (Asterisk reports that)
        self.read_classes = perms.NONE
        self.write_classes = perms.NONE
        self.event_mask = perms.ALL  # Asterisk starts every session with events on
        self.challenge = ""
        self.session_id = f"0x{id(self):x}"  # Asterisk prints its session pointer
        self.connected_at = hub.clock()
        self.logged_in_at: float | None = None
        self._wait: _Wait | None = None
        self._hold: _Hold | None = None

    # -- driven by the server -------------------------------------------------------------

    def start(self) -> None:
        self.hub.join(self)
        self.link.write(encode_banner(BANNER))
        timeout = self.hub.config.auth_timeout
        if timeout > 0:
            self.link.call_later(timeout, self._auth_deadline)

    def receive_data(self, data: bytes) -> None:
        if self.phase in (Phase.REJECTING, Phase.CLOSED) or not data:
            return  # Asterisk is asleep or gone; nothing more is read
        self.reader.receive_data(data)
        if self._wait is not None:
            self._finish_wait([])  # input ends a WaitEvent, as in Asterisk
        self._pump()

    def receive_eof(self) -> None:
        if self.phase in (Phase.REJECTING, Phase.CLOSED):
            return
        self.reader.receive_data(b"")
        if self._wait is not None:
            self._finish_wait([])
        self._pump()  # packets that arrived before the close are still answered

    def connection_lost(self) -> None:
        self.phase = Phase.CLOSED
        self._wait = None
        self._hold = None
        self.hub.leave(self)

    def deliver(self, event: AmiEvent) -> None:
        """Hub callback: a new event exists. Send it if this session may and wants to read it."""
        if self.phase is not Phase.AUTHENTICATED:
            return
        readable = self._wants(event.category)
        if self._hold is not None:
            if readable:
                self._hold.events.append(event.data)
        elif self._wait is not None:
            # Any new event ends a WaitEvent, even one this session may not read.
            self._finish_wait([event.data] if readable else [])
            self.link.call_later(0, self._pump)
        elif readable:
            self.link.write(event.data)

    # -- state ----------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        return self.phase is Phase.AUTHENTICATED

    def send(self, data: bytes) -> None:
        if self.phase is not Phase.CLOSED:
            self.link.write(data)

    def publish(self, event: AmiEvent) -> None:
        self.hub.publish(event)

    def close(self) -> None:
        if self.phase is Phase.CLOSED:
            return
        self.phase = Phase.CLOSED
        self._wait = None
        self._hold = None
        self.hub.leave(self)
        self.link.close()

    def _wants(self, category: int) -> bool:
        return (self.read_classes & category) == category and (self.event_mask & category) == category

    def _auth_deadline(self) -> None:
        if self.phase is Phase.CONNECTED:
            self.close()  # silently, as Asterisk does

    # -- reading packets ------------------------------------------------------------------

    def _pump(self) -> None:
        while self.phase in (Phase.CONNECTED, Phase.AUTHENTICATED) and self._wait is None and self._hold is None:
            item = self.reader.next_event()
            if item is Signal.NEED_DATA:
                return
            if item is Signal.END_OF_STREAM:
                self.close()
                return
            if isinstance(item, Malformed):
                self._malformed(item)
            elif isinstance(item, Packet):
                self._dispatch(item)

    def _malformed(self, item: Malformed) -> None:
        if item.problem is Problem.TOO_MANY_HEADERS:
            self.send(error(item.packet, "Too many lines in message or allocation failure"))
        elif item.problem is Problem.LINE_TOO_LONG:
            self.send(error(item.packet, "Failed to parse message: line too long"))
        # TRUNCATED: the peer closed mid-packet; Asterisk drops the fragment silently.

    def _dispatch(self, packet: Packet) -> None:
        action = next((value for name, value in packet if name.lower() == "action" and value), "")
        if not action:
            self.send(error(packet, "Missing action in request"))
            self._report_bad_format("NONE")
            return
        if not self.authenticated and action.lower() not in _BEFORE_LOGIN:
            self.send(error(packet, "Permission denied"))
            return
        spec = find_action(action)
        if spec is None:
            message = f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands."
            self.send(error(packet, _cut(message, _ERROR_BUFFER - 1)))
            self._report_bad_format(action)
            return
        if spec.authority and not (self.write_classes & spec.authority):
            self.send(error(packet, "Permission denied"))
            return
        spec.handler(self, packet)

    # -- login ----------------------------------------------------------------------------

    def login(self, packet: Packet) -> None:
        if self.authenticated:
            self.send(success(packet, "Already authenticated"))
            return
        user = self._authenticate(packet)
        if user is None:
            self._reject_login(packet)
            return
        self.account = packet.get("Username") or ""
        self.read_classes = user.read
        self.write_classes = user.write
        self.logged_in_at = self.hub.clock()
        mask = perms.parse_event_mask(packet.get("Events") or "")
        if mask is not None:
            self.event_mask = mask
        self.phase = Phase.AUTHENTICATED
        self.send(success(packet, "Authentication accepted"))
        if self.event_mask & perms.SYSTEM and self.read_classes & perms.SYSTEM:
            uptime = str(self.hub.uptime())
            self.send(
                render(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", perms.privilege_text(perms.SYSTEM)),
                        ("Uptime", uptime),
                        ("LastReload", uptime),
                        ("Status", "Fully Booted"),
                    ]
                )
            )
        self.publish(self._successful_auth())

    def _authenticate(self, packet: Packet) -> ManagerUser | None:
        """Asterisk's authenticate(): unknown user, refused address and wrong secret all look alike."""
        username = packet.get("Username") or ""
        if not username:
            return None
        user = find_user(self.hub.config.users, username)
        if user is None or not user.allows(self.peer.host) or user.secret is None:
            return None
        if (packet.get("AuthType") or "").lower() == "md5":
            key = packet.get("Key") or ""
            if not key or not self.challenge:
                return None
            expected = hashlib.md5((self.challenge + user.secret).encode("utf-8", "surrogateescape")).hexdigest()
            return user if key == expected else None
        return user if (packet.get("Secret") or "") == user.secret else None

    def _reject_login(self, packet: Packet) -> None:
        self.phase = Phase.REJECTING
        answer = error(packet, "Authentication failed")

        def hang_up() -> None:
            if self.phase is Phase.REJECTING:
                self.link.write(answer)
                self.close()

        delay = self.hub.config.login_fail_delay
        if delay > 0:
            self.link.call_later(delay, hang_up)
        else:
            hang_up()

    def new_challenge(self) -> str:
        """Asterisk keeps one challenge per session: ast_random() printed into 10 bytes."""
        if not self.challenge:
            self.challenge = str(random.randrange(2**31))[:9]
        return self.challenge

    # -- synchronous actions --------------------------------------------------------------

    def hold(self) -> Callable[[bytes], None]:
        """Start an action that answers later; returns the function that sends its answer.

        Asterisk runs such an action (a synchronous Originate) on the session's own thread:
        until it answers, nothing more is read, and events queue up for this session and
        follow the answer. Other sessions see the events as they happen.
        """
        hold = _Hold([])
        self._hold = hold

        def answer(data: bytes) -> None:
            if self._hold is not hold:
                return  # the connection is gone
            self._hold = None
            self.send(data)
            for event in hold.events:
                self.send(event)
            self.link.call_later(0, self._pump)  # packets that waited meanwhile

        return answer

    # -- WaitEvent ------------------------------------------------------------------------

    def begin_wait(self, packet: Packet, timeout: int) -> None:
        """Hold further packets until input arrives, any event happens or ``timeout`` s pass (-1: never)."""
        wait = _Wait(packet)
        self._wait = wait
        if timeout == 0:
            self._finish_wait([])
        elif timeout > 0:

            def expire() -> None:
                if self._wait is wait and self.phase is Phase.AUTHENTICATED:
                    self._finish_wait([])
                    self._pump()

            self.link.call_later(timeout, expire)

    def _finish_wait(self, events: list[bytes]) -> None:
        wait = self._wait
        if wait is None:
            return
        self._wait = None
        self.send(success(wait.packet, "Waiting for Event completed."))
        for data in events:
            self.send(data)
        tail = [("Event", "WaitEventComplete")]
        aid = action_id(wait.packet)
        if aid:
            tail.append(("ActionID", aid))
        self.send(render(tail))

    # -- security events ------------------------------------------------------------------

    def _successful_auth(self) -> AmiEvent:
        when = event_tv(self.logged_in_at or self.hub.clock())
        return AmiEvent.build(
            "SuccessfulAuth",
            perms.SECURITY,
            [
                ("EventTV", when),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", self.account),
                ("SessionID", self.session_id),
                ("LocalAddress", self.local.security_text()),
                ("RemoteAddress", self.peer.security_text()),
                ("UsingPassword", "0"),
                ("SessionTV", when),
            ],
        )

    def _report_bad_format(self, request: str) -> None:
        headers = [
            ("EventTV", event_tv(self.hub.clock())),
            ("Severity", "Error"),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("SessionID", self.session_id),
            ("LocalAddress", self.local.security_text()),
            ("RemoteAddress", self.peer.security_text()),
            ("RequestType", f"Action: {request}"),
            ("SessionTV", event_tv(self.logged_in_at or self.connected_at)),
        ]
        if self.account:
            headers.append(("AccountID", self.account))
        self.publish(AmiEvent.build("RequestBadFormat", perms.SECURITY, headers))


def _cut(text: str, limit: int) -> str:
    """Truncate to ``limit`` bytes of UTF-8, as a C buffer would."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "surrogateescape")
