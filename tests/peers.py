"""Small real TCP peers for tests: each connection runs a function on a real socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Handler = Callable[[socket.socket], None]


@contextmanager
def tcp_peer(handler: Handler) -> Iterator[tuple[str, int]]:
    """Listen on a free loopback port; run ``handler`` for each connection in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=_guarded, args=(handler, conn), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()
        for thread in threads:
            thread.join(2)


def _guarded(handler: Handler, conn: socket.socket) -> None:
    try:
        with conn:
            handler(conn)
    except OSError:
        pass


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_until(conn: socket.socket, marker: bytes, limit: float = 5.0) -> bytes:
    conn.settimeout(limit)
    data = b""
    while marker not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def recorder(received: list[bytes], until: bytes, greeting: bytes = b"") -> Handler:
    """A peer that greets, then keeps what the client sends until ``until`` arrives."""

    def record(conn: socket.socket) -> None:
        if greeting:
            conn.sendall(greeting)
        received.append(read_until(conn, until))

    return record
