"""The TCP transport over real loopback sockets: errors become amiscript errors at the edge."""

from __future__ import annotations

import contextlib
import socket
import struct
import time

import pytest

from amiscript.errors import ConnectFailed, ConnectionLost
from amiscript.transports.base import Target
from amiscript.transports.tcp import TcpTransport

from .peers import free_port, read_until, tcp_peer


def target(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> Target:
    return Target("tcp", host, port, timeout)


def test_sends_and_receives_bytes_and_reports_end_of_file() -> None:
    def echo_once(conn: socket.socket) -> None:
        conn.sendall(b"banner\r\n")
        conn.sendall(read_until(conn, b"\n").upper())

    with tcp_peer(echo_once) as (host, port):
        transport = TcpTransport.open(target(port, host))
        try:
            assert transport.receive(2.0) == b"banner\r\n"
            transport.send(b"ping\n", 2.0)
            received = b""
            while True:
                chunk = transport.receive(2.0)
                assert chunk is not None, "peer should answer then close"
                if chunk == b"":
                    break
                received += chunk
            assert received == b"PING\n"
        finally:
            transport.close()
            transport.close()  # idempotent


def test_receive_returns_none_when_nothing_arrives_within_the_timeout() -> None:
    with tcp_peer(lambda conn: read_until(conn, b"never", 1.0)) as (host, port):
        transport = TcpTransport.open(target(port, host))
        try:
            assert transport.receive(0.05) is None
        finally:
            transport.close()


def test_connection_refused_names_the_target_and_what_to_check() -> None:
    port = free_port()
    with pytest.raises(ConnectFailed, match=rf"tcp://127.0.0.1:{port}: connection refused"):
        TcpTransport.open(target(port))


def test_unknown_host_is_a_connect_failure() -> None:
    with pytest.raises(ConnectFailed, match="host not found"):
        TcpTransport.open(target(5038, host="no-such-host.invalid"))


def test_connect_timeout_is_honoured() -> None:
    # A listener with a full backlog never completes the handshake for the next client.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        port = listener.getsockname()[1]
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        started = time.monotonic()
        with pytest.raises(ConnectFailed, match=r"no answer within 0\.3 s"):
            TcpTransport.open(target(port, timeout=0.3)).close()
        assert time.monotonic() - started < 3
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def reset_after_banner(conn: socket.socket) -> None:
    time.sleep(0.1)  # let the client finish connecting: a reset during connect is "cannot connect"
    conn.sendall(b"banner\r\n")
    # linger 0: close() sends RST instead of FIN
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_reset_by_peer_delivers_the_data_then_raises_connection_lost() -> None:
    with tcp_peer(reset_after_banner) as (host, port):
        transport = TcpTransport.open(target(port, host))
        try:
            time.sleep(0.2)
            assert transport.receive(1.0) == b"banner\r\n"
            with pytest.raises(ConnectionLost, match=rf"tcp://127.0.0.1:{port}: Connection reset by peer"):
                transport.receive(1.0)
        finally:
            transport.close()
