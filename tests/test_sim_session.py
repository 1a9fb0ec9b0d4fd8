"""The simulator's per-connection state machine driven directly, without sockets or threads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from amiscript.sim import SimConfig, load_manager_conf, load_state
from amiscript.sim.hub import Hub
from amiscript.sim.session import Endpoint, Session

from .capturelib import load_capture, normalize, split_packets

FIXTURES = Path(__file__).parent / "fixtures" / "sim"
NOW = 1795673679.026459


class RecordingLink:
    """Stands in for the socket: keeps what the session writes and the timers it asks for."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def write(self, data: bytes) -> None:
        assert not self.closed, "a session wrote after closing"
        self.out += data

    def close(self) -> None:
        self.closed = True

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.timers.append((delay, callback))

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data


def make_hub(**overrides: float) -> Hub:
    config = SimConfig(
        users=load_manager_conf(FIXTURES / "manager.conf"),
        mailboxes=load_state(FIXTURES / "state.yaml"),
        **overrides,
    )
    return Hub(config, clock=lambda: NOW)


def connect(hub: Hub, port: int = 40000) -> tuple[Session, RecordingLink]:
    link = RecordingLink()
    session = Session(hub, link, Endpoint("127.0.0.1", 5038), Endpoint("127.0.0.1", port))
    session.start()
    return session, link


LOGIN = b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\n\r\n"


@pytest.mark.parametrize("name", ["pipelined-actions", "bare-lf-line-endings", "long-header-10k", "too-many-headers"])
def test_output_does_not_depend_on_how_input_is_chunked(name: str) -> None:
    sent = load_capture(name).sent
    whole_session, whole = connect(make_hub())
    whole_session.receive_data(sent)
    bytewise_session, bytewise = connect(make_hub())
    for index in range(len(sent)):
        bytewise_session.receive_data(sent[index : index + 1])
    assert normalize(bytes(bytewise.out)) == normalize(bytes(whole.out))
    assert normalize(bytes(whole.out)) == normalize(load_capture(name).received)


def test_banner_is_sent_on_connect_and_authtimeout_is_armed() -> None:
    _, link = connect(make_hub(auth_timeout=30.0))
    assert link.take() == b"Asterisk Call Manager/11.0.0\r\n"
    assert [delay for delay, _ in link.timers] == [30.0]


def test_authtimeout_closes_only_a_session_that_has_not_logged_in() -> None:
    hub = make_hub()
    _, idle_link = connect(hub)
    busy, busy_link = connect(hub, 40001)
    busy.receive_data(LOGIN)
    for _, fire in idle_link.timers + busy_link.timers:
        fire()
    assert idle_link.closed and not busy_link.closed
    assert hub.sessions == [busy]


def test_failed_login_waits_before_answering_then_hangs_up() -> None:
    session, link = connect(make_hub(login_fail_delay=1.0))
    link.take()
    session.receive_data(b"Action: Login\r\nUsername: admin\r\nSecret: nope\r\nActionID: 7\r\n\r\n")
    session.receive_data(b"Action: Ping\r\n\r\n")  # read while asleep: ignored, as by Asterisk
    assert link.take() == b"" and not link.closed
    delay, answer = link.timers[-1]
    assert delay == 1.0
    answer()
    assert link.take() == b"Response: Error\r\nActionID: 7\r\nMessage: Authentication failed\r\n\r\n"
    assert link.closed


def test_user_event_reaches_every_session_that_may_and_wants_to_read_it() -> None:
    hub = make_hub()
    sender, sender_link = connect(hub, 40001)
    listener, listener_link = connect(hub, 40002)
    deaf, deaf_link = connect(hub, 40003)
    monitor, monitor_link = connect(hub, 40004)
    _, stranger_link = connect(hub, 40005)  # never logs in
    for session in (sender, listener):
        session.receive_data(LOGIN)
    deaf.receive_data(b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\nEvents: off\r\n\r\n")
    monitor.receive_data(b"Action: Login\r\nUsername: monitor\r\nSecret: mon1tor\r\n\r\n")
    for link in (sender_link, listener_link, deaf_link, monitor_link, stranger_link):
        link.take()

    sender.receive_data(b"Action: UserEvent\r\nUserEvent: Hello\r\nX: 1\r\n\r\n")

    event = b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Hello\r\nX: 1\r\n\r\n"
    assert sender_link.take() == b"Response: Success\r\nMessage: Event Sent\r\n\r\n" + event
    assert listener_link.take() == event
    assert deaf_link.take() == b""  # Events: off
    assert monitor_link.take() == b""  # may not read class "user"
    assert stranger_link.take() == b""


def test_a_login_is_announced_to_other_sessions_that_read_security_events() -> None:
    hub = make_hub()
    watcher, watcher_link = connect(hub, 40001)
    watcher.receive_data(LOGIN)
    watcher_link.take()
    newcomer, _ = connect(hub, 40002)
    newcomer.receive_data(b"Action: Login\r\nUsername: ADMIN\r\nSecret: secret5\r\n\r\n")
    (event,) = split_packets(watcher_link.take())
    assert b"Event: SuccessfulAuth\r\n" in event
    assert b"AccountID: ADMIN\r\n" in event  # the name as the client typed it
    assert b"RemoteAddress: IPV4/TCP/127.0.0.1/40002\r\n" in event


def test_wait_event_ends_with_the_next_event_and_then_goes_on_with_queued_actions() -> None:
    hub = make_hub()
    waiter, waiter_link = connect(hub, 40001)
    other, _ = connect(hub, 40002)
    waiter.receive_data(LOGIN)
    other.receive_data(LOGIN)
    waiter_link.take()
    waiter_link.timers.clear()
    waiter.receive_data(b"Action: WaitEvent\r\nTimeout: 5\r\nActionID: w\r\n\r\nAction: Ping\r\nActionID: p\r\n\r\n")
    assert waiter_link.take() == b""
    assert [delay for delay, _ in waiter_link.timers] == [5]

    other.receive_data(b"Action: UserEvent\r\nUserEvent: Wake\r\n\r\n")
    assert split_packets(waiter_link.take()) == [
        b"Response: Success\r\nActionID: w\r\nMessage: Waiting for Event completed.\r\n\r\n",
        b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Wake\r\n\r\n",
        b"Event: WaitEventComplete\r\nActionID: w\r\n\r\n",
    ]
    resume = waiter_link.timers[-1][1]
    resume()  # the queued Ping is answered on the next loop turn
    assert b"ActionID: p\r\nPing: Pong\r\n" in waiter_link.take()
    waiter_link.timers[0][1]()  # the old wait's timer fires late: nothing happens
    assert waiter_link.take() == b""


def test_wait_event_times_out_without_events() -> None:
    session, link = connect(make_hub())
    session.receive_data(LOGIN)
    link.take()
    session.receive_data(b"Action: WaitEvent\r\nTimeout: 0x2\r\n\r\n")
    delay, expire = link.timers[-1]
    assert delay == 2
    expire()
    assert link.take() == (
        b"Response: Success\r\nMessage: Waiting for Event completed.\r\n\r\nEvent: WaitEventComplete\r\n\r\n"
    )


def test_md5_login_needs_the_sessions_own_challenge() -> None:
    session, link = connect(make_hub(login_fail_delay=0.0))
    session.receive_data(b"Action: Challenge\r\nAuthType: MD5\r\n\r\n")
    challenge = link.take().split(b"Challenge: ")[1].split(b"\r\n")[0]
    assert challenge.isdigit() and len(challenge) <= 9
    session.receive_data(b"Action: Challenge\r\nAuthType: md5\r\n\r\n")
    assert challenge in link.take()  # asked again: the same challenge
    key = hashlib.md5(challenge + b"secret5").hexdigest().encode()
    session.receive_data(b"Action: Login\r\nAuthType: md5\r\nUsername: admin\r\nKey: " + key + b"\r\n\r\n")
    assert link.take().startswith(b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n")


def test_md5_login_without_a_challenge_fails() -> None:
    session, link = connect(make_hub(login_fail_delay=0.0))
    link.take()
    key = b"0" * 32
    session.receive_data(b"Action: Login\r\nAuthType: md5\r\nUsername: admin\r\nKey: " + key + b"\r\n\r\n")
    assert link.take() == b"Response: Error\r\nMessage: Authentication failed\r\n\r\n"
    assert link.closed


def test_a_peer_outside_the_acl_cannot_log_in_even_with_the_right_secret() -> None:
    hub = make_hub(login_fail_delay=0.0)
    link = RecordingLink()
    session = Session(hub, link, Endpoint("10.0.0.5", 5038), Endpoint("10.0.0.9", 50000))
    session.start()
    link.take()
    session.receive_data(LOGIN)
    assert link.take() == b"Response: Error\r\nMessage: Authentication failed\r\n\r\n"


def test_mailbox_lists_add_up_and_a_bare_box_means_context_default() -> None:
    session, link = connect(make_hub())
    session.receive_data(LOGIN)
    link.take()
    session.receive_data(b"Action: MailboxCount\r\nMailbox: 123,124@default,999\r\n\r\n")
    assert b"Mailbox: 123,124@default,999\r\nUrgMessages: 0\r\nNewMessages: 2\r\nOldMessages: 1\r\n" in link.take()


def test_blacklisted_cli_commands_are_refused() -> None:
    session, link = connect(make_hub())
    session.receive_data(LOGIN)
    link.take()
    session.receive_data(b"Action: Command\r\nCommand: module unload app_voicemail.so\r\n\r\n")
    assert link.take() == b"Response: Error\r\nMessage: Command blacklisted\r\n\r\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (60, "60 seconds"),
        (80, "1 minute, 20 seconds"),
        (7322, "2 hours, 2 minutes, 2 seconds"),
    ],
)
def test_core_show_uptime_words_like_asterisk(seconds: int, text: str) -> None:
    hub = make_hub()
    hub.started_at = NOW - seconds
    session, link = connect(hub)
    session.receive_data(LOGIN)
    link.take()
    session.receive_data(b"Action: Command\r\nCommand: core show uptime\r\n\r\n")
    assert f"Output: System uptime: {text}\r\nOutput: Last reload: {text}\r\n".encode() in link.take()
