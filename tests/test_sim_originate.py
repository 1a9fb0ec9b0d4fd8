"""Originate on the simulator's built-in dialplan, beyond what the three originate captures show.

The captures themselves are replayed in test_sim_captures; here: who sees which events, the
synchronous form, failures, applications, variables, and that a call outlives its client.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from amiscript.protocol import Packet
from amiscript.sim import Simulator
from amiscript.sim.calls import VirtualClock, parse_callerid, parse_variables

from .capturelib import load_capture, normalize, split_packets
from .test_sim_captures import Inbox, fixture_config, replay
from .test_sim_session import LOGIN, connect, make_hub

ADMIN = b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\nEvents: off\r\n\r\n"
MONITOR = b"Action: Login\r\nUsername: monitor\r\nSecret: mon1tor\r\nEvents: off\r\n\r\n"
EVENTS_ON = b"Action: Events\r\nEventMask: on\r\n\r\n"
CALL_OVER = b"State: NOT_INUSE\r\n\r\n"  # the last two events of a call that was up
ASYNC_200 = (
    b"Action: Originate\r\nChannel: Local/200@default\r\nContext: default\r\nExten: 100\r\nPriority: 1\r\n"
    b"Async: true\r\nCallerID: AMI Test <5551234>\r\nActionID: orig-1\r\n\r\n"
)
# Everything originate-local-async shows, in its order.
CALL_EVENTS = [
    "Newchannel",
    "Newchannel",
    "Newexten",
    "NewCallerid",
    "NewConnectedLine",
    "NewCallerid",
    "NewConnectedLine",
    "LocalBridge",
    "DialBegin",
    "Newexten",
    "Newstate",
    "OriginateResponse",
    "Newstate",
    "DialEnd",
    "Newexten",
    "Newexten",
    "DeviceStateChange",
    "DeviceStateChange",
    "Newexten",
    "UserEvent",
    "Newexten",
    "Newexten",
    "SoftHangupRequest",
    "HangupRequest",
    "Hangup",
    "SoftHangupRequest",
    "Hangup",
    "DeviceStateChange",
    "DeviceStateChange",
]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(fixture_config(), host="127.0.0.1", port=0) as server:
        yield server


class Peer:
    """A logged-in client with events switched on only once every peer has logged in."""

    def __init__(self, sim: Simulator, login: bytes = ADMIN) -> None:
        self.sock = socket.create_connection(sim.address, 5)
        self.inbox = Inbox(self.sock)
        self.sock.sendall(login)
        assert self.inbox.read_until(lambda got: b"Authentication accepted\r\n\r\n" in got)
        self.inbox.data = b""

    def events_on(self) -> None:
        self.sock.sendall(EVENTS_ON)
        assert self.inbox.read_until(lambda got: b"Events: On\r\n\r\n" in got)
        self.inbox.data = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until_count(self, marker: bytes, count: int) -> list[Packet]:
        assert self.inbox.read_until(lambda got: got.count(marker) >= count), self.inbox.data
        return packets(self.inbox.data)

    def close(self) -> None:
        self.sock.close()


def packets(data: bytes) -> list[Packet]:
    """The packets in ``data`` (CRLF framing, as the simulator always writes)."""
    out = []
    for raw in split_packets(data):
        pairs = (line.partition(": ") for line in raw.decode("utf-8").split("\r\n") if ": " in line)
        out.append(Packet(tuple((name, value) for name, _, value in pairs)))
    return out


def names(items: list[Packet]) -> list[str]:
    return [item.get("Event") or f"Response {item.get('Response')}" for item in items]


def test_each_session_sees_the_call_events_its_read_classes_and_event_mask_allow(sim: Simulator) -> None:
    admin, monitor, deaf = Peer(sim), Peer(sim, MONITOR), Peer(sim)
    admin.events_on()
    monitor.events_on()  # deaf keeps Events: off
    started = time.monotonic()
    admin.send(ASYNC_200)
    seen = admin.read_until_count(CALL_OVER, 2)
    elapsed = time.monotonic() - started
    assert names(seen) == ["Response Success", *CALL_EVENTS]
    # monitor reads system,call,reporting: no Newexten (dialplan) and no UserEvent (user)
    expected = [name for name in CALL_EVENTS if name not in ("Newexten", "UserEvent")]
    assert names(monitor.read_until_count(CALL_OVER, 2)) == expected
    assert not deaf.inbox.read_more(0.1)
    assert elapsed < 1.0  # Wait(1) and the 500 ms of Answer run on compressed time
    for peer in (admin, monitor, deaf):
        peer.close()


def test_the_call_is_played_as_the_capture_shows_it(sim: Simulator) -> None:
    admin = Peer(sim)
    admin.events_on()
    admin.send(ASYNC_200)
    seen = admin.read_until_count(CALL_OVER, 2)
    response = next(item for item in seen if item.get("Event") == "OriginateResponse")
    assert response.headers[2:] == (
        ("ActionID", "orig-1"),
        ("Response", "Success"),
        ("Channel", "Local/200@default-00000000;1"),
        ("Context", "default"),
        ("Exten", "100"),
        ("Reason", "4"),
        ("Uniqueid", seen[1].get("Uniqueid")),
        ("CallerIDNum", "5551234"),
        ("CallerIDName", "AMI Test"),
    )
    user_event = next(item for item in seen if item.get("Event") == "UserEvent")
    assert user_event.headers[-2:] == (("UserEvent", "AmiscriptTest"), ("Status", "ok"))
    hangups = [item for item in seen if item.get("Event") == "Hangup"]
    assert [(item.get("Channel"), item.get("Cause"), item.get("Cause-txt")) for item in hangups] == [
        ("Local/200@default-00000000;1", "16", "Normal Clearing"),
        ("Local/200@default-00000000;2", "16", "Normal Clearing"),
    ]
    admin.close()


def test_channel_numbers_and_uniqueids_count_up_from_call_to_call(sim: Simulator) -> None:
    admin = Peer(sim)
    admin.events_on()
    admin.send(ASYNC_200)
    admin.read_until_count(CALL_OVER, 2)
    admin.send(ASYNC_200)
    seen = admin.read_until_count(CALL_OVER, 4)
    created = [item for item in seen if item.get("Event") == "Newchannel"]
    ids = [(item.get("Channel"), item.get("Uniqueid"), item.get("Linkedid")) for item in created]
    ids = [(channel, str(uniqueid).split(".")[1], str(linkedid).split(".")[1]) for channel, uniqueid, linkedid in ids]
    assert ids == [
        ("Local/200@default-00000000;1", "0", "0"),
        ("Local/200@default-00000000;2", "1", "0"),
        ("Local/200@default-00000001;1", "2", "2"),
        ("Local/200@default-00000001;2", "3", "2"),
    ]
    admin.close()


def test_originate_sync_matches_but_for_the_hangup_race() -> None:
    """Asterisk's two halves of the Local channel hung up in a different order than in the async
    capture; the simulator keeps one order, so that stretch is compared as a set, per channel."""
    capture = load_capture("originate-sync")
    with Simulator(fixture_config(), port=0) as sim, socket.create_connection(sim.address, 5) as conn:
        received, _ = replay(conn, capture, quiet=0.2, expect_exact=False)
    ours, real = split_packets(normalize(received)), split_packets(normalize(capture.received))
    start = next(i for i, item in enumerate(real) if item.startswith(b"Event: SoftHangupRequest"))
    end = next(i for i, item in enumerate(real) if b"State: NOT_INUSE" in item)
    assert ours[:start] == real[:start]  # the answer first, then every event before it, ...
    assert ours[end:] == real[end:]
    assert sorted(ours[start:end]) == sorted(real[start:end])
    for half in (b";1\r\n", b";2\r\n"):
        assert [item for item in ours[start:end] if half in item] == [item for item in real[start:end] if half in item]


def test_sync_originate_holds_the_session_until_the_call_is_up(sim: Simulator) -> None:
    admin = Peer(sim)
    admin.events_on()
    sync = b"Action: Originate\r\nChannel: Local/200@default\r\nContext: default\r\nExten: 100\r\nPriority: 1\r\n"
    admin.send(sync + b"ActionID: s-1\r\n\r\nAction: Ping\r\nActionID: p-1\r\n\r\n")
    seen = admin.read_until_count(CALL_OVER, 2)
    order = names(seen)
    assert order[0] == "Response Success" and seen[0].get("ActionID") == "s-1"
    assert seen[0].get("Message") == "Originate successfully queued"
    ping = next(i for i, item in enumerate(seen) if item.get("Ping") == "Pong")
    assert seen[ping].get("ActionID") == "p-1"
    assert order.index("DialEnd") < ping  # the Ping waited for the Originate
    assert "OriginateResponse" not in order  # only the async form reports by event
    admin.close()


def test_sync_originate_to_a_missing_extension_fails_after_the_hangups(sim: Simulator) -> None:
    admin = Peer(sim)
    admin.events_on()
    admin.send(
        b"Action: Originate\r\nChannel: Local/999@default\r\nContext: default\r\nExten: 100\r\nPriority: 1\r\n"
        b"ActionID: bad\r\n\r\n"
    )
    seen = admin.read_until_count(b"State: INVALID\r\n\r\n", 2)
    assert admin.inbox.data.startswith(b"Response: Error\r\nActionID: bad\r\nMessage: Originate failed\r\n\r\n")
    assert names(seen)[1:] == ["Newchannel", "Newchannel", "Newexten", "Hangup", "Hangup"] + ["DeviceStateChange"] * 2
    assert [item.get("Cause") for item in seen if item.get("Event") == "Hangup"] == ["0", "0"]
    admin.close()


def test_originate_to_an_application_runs_it_on_the_dialled_channel(sim: Simulator) -> None:
    admin = Peer(sim)
    admin.events_on()
    admin.send(
        b"Action: Originate\r\nChannel: Local/200@default\r\nApplication: UserEvent\r\nData: Hello,Who: ami\r\n"
        b"Async: yes\r\nActionID: app-1\r\n\r\n"
    )
    seen = admin.read_until_count(CALL_OVER, 2)
    one = "Local/200@default-00000000;1"
    response = next(item for item in seen if item.get("Event") == "OriginateResponse")
    assert (response.get("Response"), response.get("Context"), response.get("Exten")) == ("Success", "", "")
    runs = [item for item in seen if item.get("Channel") == one and item.get("Event") == "Newexten"]
    assert [(item.get("Application"), item.get("AppData"), item.get("Priority")) for item in runs] == [
        ("AppDial2", "(Outgoing Line)", "1"),
        ("UserEvent", "Hello,Who: ami", "1"),
    ]
    hello = next(item for item in seen if item.get("UserEvent") == "Hello")
    assert (hello.get("Channel"), hello.headers[-1]) == (one, ("Who", "ami"))
    # The application returned: the channel is simply hung up, without a SoftHangupRequest.
    assert [item.get("Channel") for item in seen if item.get("Event") == "SoftHangupRequest"] == [
        "Local/200@default-00000000;2"
    ]
    admin.close()


def test_channel_variables_are_set_on_the_dialled_channel(sim: Simulator) -> None:
    admin = Peer(sim)
    admin.events_on()
    admin.send(ASYNC_200.replace(b"ActionID", b"Variable: FOO=bar,BAZ=1\r\nVariable: QUUX=a=b\r\nActionID"))
    seen = admin.read_until_count(CALL_OVER, 2)
    sets = [item for item in seen if item.get("Event") == "VarSet"]
    assert [(item.get("Channel"), item.get("Variable"), item.get("Value")) for item in sets] == [
        ("Local/200@default-00000000;1", "FOO", "bar"),
        ("Local/200@default-00000000;1", "BAZ", "1"),
        ("Local/200@default-00000000;1", "QUUX", "a=b"),
    ]
    assert names(seen)[3:7] == ["Newexten", "VarSet", "VarSet", "VarSet"]  # after AppDial2
    admin.close()


def test_other_technologies_have_no_endpoints_and_fail(sim: Simulator) -> None:
    admin = Peer(sim)
    admin.events_on()
    admin.send(b"Action: Originate\r\nChannel: PJSIP/nobody\r\nApplication: NoOp\r\nAsync: true\r\nActionID: x\r\n\r\n")
    seen = admin.read_until_count(b"Event: OriginateResponse", 1)
    assert names(seen) == ["Response Success", "OriginateResponse"]
    assert (seen[1].get("Response"), seen[1].get("Channel"), seen[1].get("Reason")) == ("Failure", "PJSIP/nobody", "0")
    admin.send(b"Action: Originate\r\nChannel: PJSIP/nobody\r\nApplication: NoOp\r\nActionID: y\r\n\r\n")
    assert admin.inbox.read_until(lambda got: b"Message: Originate failed\r\n\r\n" in got)
    admin.close()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            b"Channel: Local/200@default\r\nContext: default\r\nExten: 555\r\nPriority: 1\r\n",
            "Extension does not exist.",
        ),
        (
            b"Channel: Local/200@default\r\nContext: default\r\nExten: 100\r\nPriority: 9\r\n",
            "Extension does not exist.",
        ),
        (b"Channel: Local/200@default\r\nContext: default\r\nExten: 100\r\nPriority: start\r\n", "Invalid priority"),
        (
            b"Channel: Local/200@default\r\nContext: default\r\nExten: 100\r\n",
            "Originate with 'Exten' requires 'Context' and 'Priority'",
        ),
        (b"Channel: nonsense\r\nContext: default\r\nExten: 100\r\nPriority: 1\r\n", "Invalid channel"),
    ],
)
def test_originate_arguments_are_checked_before_anything_is_dialled(
    sim: Simulator, headers: bytes, message: str
) -> None:
    admin = Peer(sim)
    admin.events_on()
    admin.send(b"Action: Originate\r\n" + headers + b"ActionID: chk\r\n\r\n")
    answer = f"Response: Error\r\nActionID: chk\r\nMessage: {message}\r\n\r\n".encode()
    assert admin.inbox.read_until(lambda got: answer in got)
    assert not admin.inbox.read_more(0.05)  # and no channel was created
    admin.close()


def test_a_call_goes_on_after_the_client_that_originated_it_hangs_up(sim: Simulator) -> None:
    watcher, caller = Peer(sim), Peer(sim)
    watcher.events_on()
    caller.send(ASYNC_200)
    assert caller.inbox.read_until(lambda got: b"Originate successfully queued" in got)
    caller.close()
    assert names(watcher.read_until_count(CALL_OVER, 2)) == CALL_EVENTS
    watcher.close()


def test_without_a_loop_the_hub_queues_the_call_and_the_session_waits_for_it() -> None:
    hub = make_hub(login_fail_delay=0.0)
    session, link = connect(hub)
    session.receive_data(LOGIN)
    link.take()
    sync = b"Action: Originate\r\nChannel: Local/200@default\r\nContext: default\r\nExten: 100\r\nPriority: 1\r\n\r\n"
    session.receive_data(sync + b"Action: Ping\r\n\r\n")
    assert link.take() == b""  # nothing is answered before the call is up
    assert hub.pending
    hub.run_pending()
    out = link.take()
    assert out.startswith(b"Response: Success\r\nMessage: Originate successfully queued\r\n\r\nEvent: Newchannel\r\n")
    assert b"Ping: Pong" not in out  # the held Ping waits for the session's next turn
    for _, callback in link.timers:
        callback()
    assert b"Ping: Pong" in link.take()


def test_virtual_clock_runs_an_instant_in_scheduling_order_and_instants_in_time_order() -> None:
    hub = make_hub()
    clock = VirtualClock(hub)
    ran: list[str] = []
    clock.at(2.0, lambda: ran.append("late"))
    clock.at(0.5, lambda: (ran.append("a"), clock.at(0, lambda: ran.append("a, same instant"))))
    clock.at(0.5, lambda: ran.append("b"))
    hub.run_pending()
    assert ran == ["a", "b", "a, same instant", "late"]
    assert clock.now == 2.0


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("AMI Test <5551234>", ("5551234", "AMI Test")),
        ('"Jo Bo" <(555) 123-4567>', ("5551234567", "Jo Bo")),
        ("5551234", ("5551234", None)),
        ("Reception", (None, "Reception")),
        ("<100>", ("100", None)),
        ("", (None, None)),
    ],
)
def test_callerid_is_read_as_ast_callerid_parse_reads_it(text: str, parsed: tuple[str | None, str | None]) -> None:
    assert parse_callerid(text) == parsed


def test_variable_headers_hold_comma_separated_assignments() -> None:
    assert parse_variables(["A=1,B=2", "C=x=y", "no-equals", "=empty-name"]) == (("A", "1"), ("B", "2"), ("C", "x=y"))
