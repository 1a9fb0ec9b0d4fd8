"""The simulator over real loopback sockets: timings, isolation between clients, start/stop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from amiscript.errors import TransportError
from amiscript.sim import SimConfig, Simulator, default_config, load_manager_conf, load_state

from .capturelib import split_packets

FIXTURES = Path(__file__).parent / "fixtures" / "sim"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN = b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\n\r\n"


def fixture_config(**overrides: float) -> SimConfig:
    settings = {"login_fail_delay": 0.0, "auth_timeout": 30.0, **overrides}
    return SimConfig(
        users=load_manager_conf(FIXTURES / "manager.conf"),
        mailboxes=load_state(FIXTURES / "state.yaml"),
        **settings,
    )


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(fixture_config(), host="127.0.0.1", port=0) as server:
        yield server


class Client:
    """A raw AMI client: what it sent, and everything it got back."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.data = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, marker: bytes, timeout: float = 3.0) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.data and not self.eof and time.monotonic() < deadline:
            self._recv(deadline - time.monotonic())
        assert marker in self.data, f"never saw {marker!r}; got {self.data!r}"
        return self.data

    def read_to_eof(self, timeout: float = 3.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._recv(deadline - time.monotonic())
        assert self.eof, f"the server did not close; got {self.data!r}"
        return self.data

    def quiet_for(self, seconds: float) -> bytes:
        """Whatever arrives within ``seconds``; used to show that nothing does."""
        before = len(self.data)
        deadline = time.monotonic() + seconds
        while not self.eof and time.monotonic() < deadline:
            self._recv(deadline - time.monotonic())
        return self.data[before:]

    def _recv(self, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return
        except ConnectionResetError:
            chunk = b""
        self.eof = not chunk
        self.data += chunk

    def close(self) -> None:
        self.sock.close()


Connect = Callable[[tuple[str, int]], Client]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open clients that are closed again after the test."""
    opened: list[Client] = []

    def open_client(address: tuple[str, int]) -> Client:
        opened.append(Client(address))
        return opened[-1]

    yield open_client
    for client in opened:
        client.close()


def test_start_returns_the_bound_address_and_the_banner_comes_at_once(sim: Simulator, connect: Connect) -> None:
    host, port = sim.address
    assert host == "127.0.0.1" and port > 0
    client = connect(sim.address)
    assert client.read_until(b"\r\n", timeout=1.0) == BANNER


def test_failed_login_is_answered_after_the_delay_then_closed(connect: Connect) -> None:
    with Simulator(fixture_config(login_fail_delay=0.3), port=0) as sim:
        client = connect(sim.address)
        client.read_until(BANNER)
        started = time.monotonic()
        client.send(b"Action: Login\r\nUsername: admin\r\nSecret: wrong\r\n\r\n")
        client.read_until(b"Authentication failed\r\n\r\n")
        elapsed = time.monotonic() - started
        client.read_to_eof()
    assert 0.25 <= elapsed < 2.0


def test_failed_login_delay_defaults_to_one_second_like_asterisk() -> None:
    assert default_config().login_fail_delay == 1.0
    assert SimConfig().auth_timeout == 30.0


def test_unauthenticated_connection_is_closed_silently_after_authtimeout(
    connect: Connect,
) -> None:
    with Simulator(fixture_config(auth_timeout=0.3), port=0) as sim:
        idle = connect(sim.address)
        busy = connect(sim.address)  # Asterisk counts from the connect, not from the last packet
        started = time.monotonic()
        busy.send(b"Action: Ping\r\n\r\n")
        assert idle.read_to_eof() == BANNER
        elapsed = time.monotonic() - started
        assert busy.read_to_eof() == BANNER + b"Response: Error\r\nMessage: Permission denied\r\n\r\n"
    assert 0.25 <= elapsed < 2.0


def test_a_logged_in_session_is_not_timed_out(connect: Connect) -> None:
    with Simulator(fixture_config(auth_timeout=0.2), port=0) as sim:
        client = connect(sim.address)
        client.send(LOGIN)
        client.read_until(b"Event: SuccessfulAuth")
        assert client.quiet_for(0.5) == b"" and not client.eof
        client.send(b"Action: Ping\r\n\r\n")
        client.read_until(b"Ping: Pong")


GARBAGE = [
    b"\x00\x01\x02\xff\xfe garbage \x00\r\n\r\n",
    b"Action: \xff\xfe\xfd\r\nActionID: \xc3\x28\r\n\r\n",  # not UTF-8; echoed back as bytes
    b"A" * 200_000,  # one endless line
    b"\n" * 10_000,
    b": no name\r\nAction:\r\n\r\n",
    b"Action: Login\r\nUsername: admin\r\nSecr",  # and then the client vanishes mid-packet
]


def test_garbage_from_one_client_does_not_disturb_another(sim: Simulator, connect: Connect) -> None:
    good = connect(sim.address)
    good.send(LOGIN)
    good.read_until(b"Event: SuccessfulAuth")
    for payload in GARBAGE:
        bad = connect(sim.address)
        bad.send(payload)
        bad.close()
    mid = connect(sim.address)
    mid.send(b"Action: Login\r\nUsername: admin\r\n")
    mid.sock.shutdown(socket.SHUT_WR)
    mid.read_to_eof()
    good.send(b"Action: MailboxCount\r\nMailbox: 123\r\nActionID: still-here\r\n\r\n")
    assert b"ActionID: still-here\r\nMessage: Mailbox Message Count\r\n" in good.read_until(b"OldMessages: 1\r\n")


def test_a_client_survives_its_own_garbage(sim: Simulator, connect: Connect) -> None:
    client = connect(sim.address)
    client.send(LOGIN)
    client.read_until(b"Event: SuccessfulAuth")
    client.send(b"\x00\xff\r\nAction: \xff\r\nActionID: x\r\n\r\n" + b"B" * 5000 + b"\r\n\r\n")
    client.send(b"Action: Ping\r\nActionID: after\r\n\r\n")
    data = client.read_until(b"ActionID: after\r\nPing: Pong\r\n")
    assert b"Invalid/unknown command: \xff. Use Action" in data
    assert b"Failed to parse message: line too long" in data


def test_user_event_of_one_client_reaches_the_other_clients(sim: Simulator, connect: Connect) -> None:
    sender, listener, monitor = connect(sim.address), connect(sim.address), connect(sim.address)
    sender.send(LOGIN)
    listener.send(LOGIN)
    monitor.send(b"Action: Login\r\nUsername: monitor\r\nSecret: mon1tor\r\n\r\n")
    for client in (sender, listener):
        client.read_until(b"UsingPassword: 0\r\nSessionTV")
    monitor.read_until(b"Status: Fully Booted\r\n\r\n")
    sender.send(b"Action: UserEvent\r\nUserEvent: Hi\r\nActionID: ue\r\n\r\n")
    event = b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Hi\r\nActionID: ue\r\n\r\n"
    listener.read_until(event)
    sender.read_until(event)
    assert monitor.quiet_for(0.2) == b""


def test_wait_event_answers_when_its_timeout_runs_out(sim: Simulator, connect: Connect) -> None:
    client = connect(sim.address)
    client.send(LOGIN)
    client.read_until(b"Event: SuccessfulAuth")
    started = time.monotonic()
    client.send(b"Action: WaitEvent\r\nTimeout: 1\r\nActionID: we\r\n\r\n")
    data = client.read_until(b"Event: WaitEventComplete\r\nActionID: we\r\n\r\n")
    assert 0.9 <= time.monotonic() - started < 2.5
    answer = b"Response: Success\r\nActionID: we\r\nMessage: Waiting for Event completed.\r\n\r\n"
    assert split_packets(data)[-2] == answer


def test_stop_closes_clients_and_leaves_no_thread_behind(connect: Connect) -> None:
    before = set(threading.enumerate())
    sim = Simulator(fixture_config(), port=0)
    address = sim.start()
    client = connect(address)
    client.send(LOGIN)
    client.read_until(b"Event: SuccessfulAuth")
    sim.stop()
    sim.stop()  # idempotent
    client.read_to_eof()
    assert set(threading.enumerate()) <= before
    assert not sim.running
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()


def test_stop_before_start_is_harmless_and_start_twice_is_an_error() -> None:
    sim = Simulator(fixture_config(), port=0)
    sim.stop()
    with sim, pytest.raises(RuntimeError):
        sim.start()
    with pytest.raises(RuntimeError):
        _ = Simulator(fixture_config(), port=0).address


def test_listening_on_a_busy_port_is_a_transport_error(sim: Simulator) -> None:
    host, port = sim.address
    other = Simulator(fixture_config(), host=host, port=port)
    with pytest.raises(TransportError) as caught:
        other.start()
    assert f"{host}:{port}" in str(caught.value)
    other.stop()


def test_serve_forever_returns_once_stop_is_called_elsewhere() -> None:
    sim = Simulator(fixture_config(), port=0)
    sim.start()
    threading.Timer(0.2, sim.stop).start()
    started = time.monotonic()
    sim.serve_forever()
    assert time.monotonic() - started < 3.0
    assert not sim.running


def test_default_config_reproduces_the_books_session(connect: Connect) -> None:
    config = default_config()
    fast = SimConfig(users=config.users, mailboxes=config.mailboxes, login_fail_delay=0.0)
    with Simulator(fast, port=0) as sim:
        client = connect(sim.address)
        client.send(b"Action: Login\r\nActionID: 1\r\nUsername: admin\r\nSecret: secret5\r\n\r\n")
        client.read_until(b"Event: SuccessfulAuth")
        client.send(b"Action: MailboxCount\r\nMailbox: 123@default\r\n\r\n")
        data = client.read_until(b"OldMessages: 0\r\n\r\n")
    assert data.startswith(BANNER + b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n")
    assert b"NewMessages: 0\r\nOldMessages: 0\r\n" in data


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv4_acl_rules_do_not_apply_to_ipv6_peers(connect: Connect) -> None:
    sim = Simulator(fixture_config(), host="::1", port=0)
    try:
        sim.start()
    except TransportError:
        pytest.skip("cannot listen on ::1")
    try:
        client = connect(sim.address)
        client.send(LOGIN)
        # "deny = 0.0.0.0/0" cannot refuse ::1 and nothing else does: Asterisk lets it in
        assert b"Authentication accepted" in client.read_until(b"Event: SuccessfulAuth")
        assert b"RemoteAddress: IPV6/TCP/::1/" in client.data
    finally:
        sim.stop()
