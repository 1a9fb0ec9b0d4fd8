"""A small AMI client for the console: a reader thread turns the transport's bytes into
packets; answers go to whoever waits for their ActionID, everything else (events, stray
answers) to a callback. Sending happens on the caller's thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from amiscript.errors import AmiscriptError, ConnectionLost, RunFailed
from amiscript.protocol import Banner, Malformed, Packet, encode_packet
from amiscript.protocol.auth import md5_key
from amiscript.protocol.codec import PacketReader, Signal
from amiscript.signals import leave_signals_to_main_thread
from amiscript.transports.base import Transport

POLL = 0.2  # how often the reader looks whether it should stop
SEND_TIMEOUT = 10.0


class ListItems:
    """The events of one list action, and whether its ``EventList: Complete`` event came."""

    def __init__(self) -> None:
        self.items: list[Packet] = []
        self.complete: Packet | None = None
        self.started = False  # its answer said `EventList: start`
        self.ended = threading.Event()

    def add(self, event: Packet) -> None:
        if self.ended.is_set():
            return
        if (event.get("EventList") or "").strip().lower() == "complete":
            self.complete = event
            self.ended.set()
        else:
            self.items.append(event)


class AmiClient:
    def __init__(
        self,
        transport: Transport,
        on_packet: Callable[[Packet], None],
        on_close: Callable[[str], None],
    ) -> None:
        self._transport = transport
        self._on_packet = on_packet
        self._on_close = on_close
        self._reader = PacketReader(expect_banner=True)
        self._pending: dict[str, queue.Queue[Packet | None]] = {}
        self._lists: dict[str, ListItems] = {}  # ActionID: the list its answer may start
        self._lock = threading.Lock()
        self._banner: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="amiscript-console-reader", daemon=True)

    def start(self, timeout: float) -> str:
        """Start reading; the server's banner, or RunFailed if none comes within ``timeout``."""
        self._thread.start()
        try:
            banner = self._banner.get(timeout=timeout)
        except queue.Empty:
            banner = None
        if banner is None:
            raise RunFailed(f"{self._where()}: no AMI banner within {timeout:g} s (is this an Asterisk manager port?)")
        return banner

    def request(self, headers: Sequence[tuple[str, str]], timeout: float) -> Packet | None:
        """Send one action (its headers include an ActionID) and wait for the answer with that
        ActionID; None if none came within ``timeout`` or the connection closed."""
        return self.request_list(headers, timeout)[0]

    def request_list(
        self, headers: Sequence[tuple[str, str]], timeout: float
    ) -> tuple[Packet | None, ListItems | None]:
        """``request``, and if the answer starts a list (``EventList: start``), its items too:
        the events carrying the ActionID up to the one with ``EventList: Complete``, waited for
        within another ``timeout``. Events still reach ``on_packet`` (the console shows them)."""
        action_id = next(value for name, value in headers if name.lower() == "actionid")
        data = encode_packet(headers)
        waiter: queue.Queue[Packet | None] = queue.Queue(maxsize=1)
        items = ListItems()
        with self._lock:
            if self.closed.is_set():
                return None, None
            self._pending[action_id] = waiter
            self._lists[action_id] = items
        try:
            self._transport.send(data, SEND_TIMEOUT)
            try:
                answer = waiter.get(timeout=timeout)
            except queue.Empty:
                return None, None
            if answer is None or not _starts_list(answer):
                return answer, None
            items.ended.wait(timeout)
            return answer, items
        finally:
            with self._lock:
                self._pending.pop(action_id, None)
                self._lists.pop(action_id, None)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(POLL * 5)
        self._transport.close()

    def _where(self) -> str:
        return str(getattr(self._transport, "target", "the server"))

    def _read_loop(self) -> None:
        leave_signals_to_main_thread()  # the prompt's thread acts on Ctrl-C, SIGTERM, resizes
        reason = "the server closed the connection"
        try:
            while not self._stop.is_set():
                data = self._transport.receive(POLL)
                if data is None:
                    continue
                self._reader.receive_data(data)
                if self._drain() or not data:
                    break
        except AmiscriptError as exc:
            reason = exc.message
        finally:
            with self._lock:
                self.closed.set()
                for waiter in self._pending.values():
                    waiter.put_nowait(None)
                for items in self._lists.values():
                    items.ended.set()  # no Complete will come
            self._banner.put(None)
            if not self._stop.is_set():
                self._on_close(reason)

    def _drain(self) -> bool:
        """Hand out every whole packet received; True at end of stream."""
        while True:
            event = self._reader.next_event()
            if event is Signal.NEED_DATA:
                return False
            if event is Signal.END_OF_STREAM:
                return True
            if isinstance(event, Banner):
                self._banner.put(event.text)
            elif isinstance(event, Malformed):
                self._on_packet(event.packet)
            elif isinstance(event, Packet):
                self._dispatch(event)

    def _dispatch(self, packet: Packet) -> None:
        """Answers to their waiters; the events of a list its answer started to the list (in
        order: this thread sees the answer before the events); everything else to on_packet."""
        action_id = packet.get("ActionID")
        waiter = None
        with self._lock:
            items = self._lists.get(action_id) if action_id is not None else None
            if action_id is not None and packet.kind != "event":
                waiter = self._pending.pop(action_id, None)
                if items is not None and waiter is not None and _starts_list(packet):
                    items.started = True
                else:
                    self._lists.pop(action_id, None)
            elif items is not None and items.started:
                items.add(packet)
                return
        if waiter is not None:
            waiter.put_nowait(packet)
        else:
            self._on_packet(packet)


def _starts_list(answer: Packet) -> bool:
    return (answer.get("EventList") or "").strip().lower() == "start"


def login(
    client: AmiClient,
    username: str,
    secret: str,
    *,
    auth: str,
    timeout: float,
    remember_secret: Callable[[str], None],
) -> Packet:
    """Log in as the `login` step does (plain, or md5 so the secret never crosses the wire);
    RunFailed with the server's message if refused. ``remember_secret`` learns the md5 key,
    which proves the secret and is masked like it."""
    if auth == "md5":
        challenge = _answer(client, [("Action", "Challenge"), ("AuthType", "md5")], timeout, "challenge")
        nonce = challenge.get("Challenge") or ""
        if (challenge.get("Response") or "").lower() != "success" or not nonce:
            raise RunFailed(f"login as {username!r} failed: {challenge.get('Message') or 'no challenge'}")
        key = md5_key(nonce, secret)
        remember_secret(key)
        headers = [("Action", "Login"), ("AuthType", "md5"), ("Username", username), ("Key", key)]
    else:
        headers = [("Action", "Login"), ("Username", username), ("Secret", secret)]
    answer = _answer(client, headers, timeout, "login")
    if (answer.get("Response") or "").lower() != "success":
        raise RunFailed(f"login as {username!r} failed: {answer.get('Message') or 'refused'}")
    return answer


def _answer(client: AmiClient, headers: list[tuple[str, str]], timeout: float, what: str) -> Packet:
    answer = client.request([*headers, ("ActionID", f"console-{what}")], timeout)
    if answer is None:
        if client.closed.is_set():
            raise ConnectionLost(f"the server closed the connection during the {what}")
        raise RunFailed(f"no answer to the {what} within {timeout:g} s")
    return answer
