"""The simulator against the oracle: replay each reference capture's writes, compare the bytes.

Every capture in ../shared/ami-captures is either reproduced here or listed, with the reason,
in NOT_REPRODUCED; a new capture fails test_every_capture_is_accounted_for until it is sorted.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from amiscript.sim import SimConfig, Simulator, load_manager_conf, load_state

from .capturelib import CAPTURES, Capture, capture_names, load_capture, normalize, split_packets

FIXTURES = Path(__file__).parent / "fixtures" / "sim"

REPRODUCED = [
    "action-without-login",
    "banner-only",
    "bare-lf-line-endings",
    "challenge-md5-bad-key",
    "challenge-md5-login",
    "command-core-show-version",
    "command-multiline",
    "command-unknown-cli-command",
    "coresettings",
    "corestatus",
    "dbput-dbget",
    "events-off-then-on",
    "getvar-setvar-global",
    "header-without-colon",
    "idle-authenticated",
    "idle-unauthenticated",
    "login-bad-secret",
    "login-ok",
    "login-then-close",
    "login-twice",
    "login-unknown-user",
    "login-with-Events-off",
    "logoff",
    "long-header-10k",
    "mailboxcount-123",
    "mailboxcount-nonexistent",
    "mailboxstatus",
    "originate-bad-exten",
    "originate-local-async",
    "permission-denied",
    "ping",
    "pipelined-actions",
    "status",
    "too-many-headers",
    "unknown-action",
    "userevent",
]
NOT_REPRODUCED = {
    "listcommands": "the simulator lists only the ~20 actions it implements, not Asterisk's 112",
    "originate-sync": "two Asterisk threads raced at hangup (Hangup ;1 came last, after ;2's); the simulator"
    " keeps originate-local-async's order; test_originate_sync_matches_but_for_the_hangup_race",
    "waitevent": "its waits take 2 s and 5 s of wall time; test_sim_server covers WaitEvent",
}
# Captures whose only point is a timeout: the simulator runs them with a short authtimeout.
SHORT_AUTH_TIMEOUT = 0.3
# Captures whose client waited for a call to play out before its next write; the replay waits
# until the simulator has been quiet this long (its calls take milliseconds, not seconds).
SETTLE = {"originate-bad-exten": 0.1}


def fixture_config(**overrides: float) -> SimConfig:
    settings = {"login_fail_delay": 0.0, "auth_timeout": 30.0, **overrides}
    return SimConfig(
        users=load_manager_conf(FIXTURES / "manager.conf"),
        mailboxes=load_state(FIXTURES / "state.yaml"),
        **settings,
    )


def test_every_capture_is_accounted_for() -> None:
    assert CAPTURES.is_dir(), f"the reference captures are missing: {CAPTURES}"
    assert sorted(REPRODUCED + list(NOT_REPRODUCED)) == capture_names()


@pytest.mark.parametrize("name", REPRODUCED)
def test_simulator_reproduces_capture(name: str) -> None:
    capture = load_capture(name)
    idle = name.startswith("idle-")
    config = fixture_config(auth_timeout=SHORT_AUTH_TIMEOUT if idle else 30.0)
    with Simulator(config, host="127.0.0.1", port=0) as sim, socket.create_connection(sim.address, 5) as conn:
        received, eof = replay(conn, capture, quiet=0.5 if idle else 0.05)

    assert normalize(received).decode("latin-1") == normalize(capture.received).decode("latin-1")
    assert eof == capture.server_closed


def test_actions_listed_by_the_simulator_are_listed_verbatim_by_asterisk() -> None:
    capture = load_capture("listcommands")
    with Simulator(fixture_config(), port=0) as sim, socket.create_connection(sim.address, 5) as conn:
        received, _ = replay(conn, capture, quiet=0.05, expect_exact=False)
    ours = split_packets(received)[-1].split(b"\r\n")
    real = split_packets(capture.received)[-1].split(b"\r\n")
    assert ours[:2] == real[:2] == [b"Response: Success", b"ActionID: lc-1"]
    assert len(ours) > 20
    assert [line for line in ours if line not in real] == []


def replay(conn: socket.socket, capture: Capture, quiet: float, expect_exact: bool = True) -> tuple[bytes, bool]:
    """Send the capture's writes in order; read as the recording client did.

    Reading stops at EOF when the capture ended with one; otherwise once the bytes match the
    capture (or, without ``expect_exact``, once ``quiet`` seconds pass without new bytes).
    """
    inbox = Inbox(conn)
    inbox.read_until(lambda got: b"\r\n" in got)  # the banner comes first, unasked
    for index, chunk in enumerate(capture.chunks):
        data = chunk.data
        # The challenge is random, so the captured Key only fits Asterisk's. challenge-md5-bad-key
        # needs no such care: its all-zero Key is wrong for every challenge and is replayed as is.
        if capture.name == "challenge-md5-login" and index == 1:
            data = with_key_for_our_challenge(data, inbox)
        if index and capture.name in SETTLE:
            while inbox.read_more(SETTLE[capture.name]):
                pass
        conn.sendall(data)
    if capture.name == "login-then-close":
        return inbox.data, False  # the client hung up at once; it read nothing more
    if capture.server_closed:
        inbox.read_until(lambda got: False, timeout=3)  # i.e. until EOF
    elif expect_exact:
        expected = normalize(capture.received)
        inbox.read_until(lambda got: normalize(got) == expected, timeout=3)
        inbox.read_until(lambda got: False, timeout=quiet)  # nothing else may follow
    else:
        while inbox.read_more(quiet):
            pass
    return inbox.data, inbox.eof


def with_key_for_our_challenge(login: bytes, inbox: Inbox) -> bytes:
    """The captured Key answers Asterisk's challenge; compute the one for the simulator's."""
    assert inbox.read_until(lambda got: re.search(rb"Challenge: [0-9]+\r\n\r\n", got) is not None)
    challenge = re.search(rb"Challenge: ([0-9]+)\r\n", inbox.data)
    assert challenge is not None
    key = hashlib.md5(challenge[1] + b"secret5").hexdigest().encode()
    return re.sub(rb"Key: [0-9a-f]{32}", b"Key: " + key, login)


class Inbox:
    """Everything received on a socket so far, read with monotonic deadlines."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.data = b""
        self.eof = False

    def read_until(self, done: Callable[[bytes], bool], timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while not done(self.data) and not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.conn.settimeout(remaining)
            try:
                chunk = self.conn.recv(65536)
            except TimeoutError:
                break
            self.eof = not chunk
            self.data += chunk
        return done(self.data)

    def read_more(self, timeout: float) -> bool:
        """Whether any new bytes arrive within ``timeout`` seconds."""
        before = len(self.data)
        return self.read_until(lambda got: len(got) > before, timeout)
