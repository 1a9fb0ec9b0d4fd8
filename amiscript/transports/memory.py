"""An in-process transport for tests: a peer function answers what the client sends.

The peer sees each chunk the client sends and returns the bytes to deliver (``b""`` closes).
Unlike a mock of our code, it exercises the real engine against a scripted peer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from amiscript.errors import ConnectionLost

Peer = Callable[[bytes], bytes | None]


class MemoryTransport:
    def __init__(
        self, greeting: bytes = b"", peer: Peer | None = None, on_idle: Callable[[float], None] | None = None
    ) -> None:
        self._on_idle = on_idle  # called with the timeout when nothing is queued (a fake clock)
        self._inbox: deque[bytes] = deque([greeting] if greeting else [])
        self._peer = peer
        self.sent: list[bytes] = []
        self.closed = False
        self._peer_closed = False

    def push(self, data: bytes) -> None:
        """Deliver ``data`` to the client; ``b""`` is end of file."""
        self._inbox.append(data)

    def send(self, data: bytes, timeout: float) -> None:
        if self._peer_closed or self.closed:
            raise ConnectionLost("memory peer: connection closed")
        self.sent.append(data)
        if self._peer is not None:
            answer = self._peer(data)
            if answer is not None:
                self.push(answer)

    def receive(self, timeout: float) -> bytes | None:
        if self._peer_closed:
            return b""
        if not self._inbox:
            if self._on_idle is not None:
                self._on_idle(timeout)
            return None
        data = self._inbox.popleft()
        if data == b"":
            self._peer_closed = True
        return data

    def close(self) -> None:
        self.closed = True
