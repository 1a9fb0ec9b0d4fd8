"""The TCP transport over real loopback sockets: errors become amiscript errors at the edge."""

from __future__ import annotations

import contextlib
import socket
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
        try:
            transport = TcpTransport.open(target(port, timeout=0.3))
        except ConnectFailed as exc:
            assert "no answer within 0.3 s" in str(exc) or "refused" in str(exc)
            assert time.monotonic() - started < 5
        else:  # the kernel accepted anyway (backlog rounding): nothing to check on this machine
            transport.close()
            pytest.skip("the loopback backlog did not fill on this kernel")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_reset_by_peer_is_connection_lost_or_end_of_file() -> None:
    def reset(conn: socket.socket) -> None:
        conn.sendall(b"banner\r\n")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    with tcp_peer(reset) as (host, port):
        transport = TcpTransport.open(target(port, host))
        try:
            time.sleep(0.2)
            outcomes = []
            for _ in range(3):
                try:
                    outcomes.append(transport.receive(1.0))
                except ConnectionLost as exc:
                    outcomes.append(str(exc))
                    break
            assert outcomes[0] == b"banner\r\n" or "reset" in str(outcomes[0]).lower()
            assert outcomes[-1] == b"" or "reset" in str(outcomes[-1]).lower()
        finally:
            transport.close()
