"""Ctrl-C and SIGTERM mid-run: Logoff if logged in, close, reap the child, one line, 130/143.

Real processes only: the CLI as a subprocess against real TCP peers that keep every byte the
client sent until it closes.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .helpers import AMISCRIPT
from .peers import tcp_peer
from .test_spawn import needs_telnet, processes_with

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ENDED_WITHIN = 5.0  # seconds from the signal to the exit: Logoff waits at most 1 s, reaping less
INTERRUPTED = [(signal.SIGINT, 130, "amiscript: interrupted"), (signal.SIGTERM, 143, "amiscript: terminated")]


@dataclass
class AmiPeer:
    """Answers a Login and a Ping with Success, a Logoff with Goodbye (then closes, as Asterisk
    does), and keeps everything each connection sent until it ended. A Ping (or vmcount's
    MailboxCount, left unanswered) comes after the login in the scripts here: once it arrives,
    the client has taken the login's answer. ``banner`` is its greeting: a peer that answers
    logins but greets otherwise is not Asterisk."""

    past_login: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    banners: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    received: list[bytes] = field(default_factory=list)
    close_on_logoff: bool = True
    banner: bytes = BANNER

    def __call__(self, conn: socket.socket) -> None:
        conn.sendall(self.banner)
        self.banners.release()
        conn.settimeout(30)
        data = pending = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
                pending += chunk
                while b"\r\n\r\n" in pending:
                    packet, pending = pending.split(b"\r\n\r\n", 1)
                    action_id = re.search(rb"ActionID: *(\S+)", packet)
                    echo = b"ActionID: " + action_id.group(1) + b"\r\n" if action_id else b""
                    if packet.startswith(b"Action: Login"):
                        conn.sendall(b"Response: Success\r\n" + echo + b"Message: Authentication accepted\r\n\r\n")
                    elif packet.startswith(b"Action: Ping"):
                        conn.sendall(b"Response: Success\r\n" + echo + b"Ping: Pong\r\n\r\n")
                        self.past_login.release()
                    elif packet.startswith(b"Action: MailboxCount"):
                        self.past_login.release()
                    elif packet.startswith(b"Action: Logoff"):
                        conn.sendall(b"Response: Goodbye\r\n" + echo + b"Message: Thanks for all the fish.\r\n\r\n")
                        if self.close_on_logoff:
                            return
        finally:
            self.received.append(data)

    def wait(self, what: threading.Semaphore, count: int = 1) -> None:
        for _ in range(count):
            assert what.acquire(timeout=20), "the run never got there"


@contextmanager
def running(*argv: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([*AMISCRIPT, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def interrupt(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    """Signal the run; its exit status and stderr, checked to come within ENDED_WITHIN."""
    time.sleep(0.2)  # into the wait that follows
    process.send_signal(signum)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < ENDED_WITHIN
    return process.returncode, stderr


def script(tmp_path: Path, steps: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(f"connect: {{}}\nsteps:\n{steps}")
    return str(path)


LOGIN_THEN_WAIT = (
    "  - login: {username: admin, secret: s3cret-never-shown}\n  - action: {Action: Ping}\n"
    "  - wait_event: {Event: Never}\n    timeout: 60\n"
)


@pytest.mark.parametrize(("signum", "code", "line"), INTERRUPTED)
def test_a_logged_in_run_sends_logoff_when_interrupted_and_says_one_line(
    tmp_path: Path, signum: int, code: int, line: str
) -> None:
    peer = AmiPeer()
    with (
        tcp_peer(peer) as (host, port),
        running("run", script(tmp_path, LOGIN_THEN_WAIT), "--target", f"tcp://{host}:{port}") as process,
    ):
        peer.wait(peer.past_login)
        status, stderr = interrupt(process, signum)
    assert (status, stderr.splitlines()) == (code, [line])
    assert len(peer.received) == 1 and b"\r\n\r\nAction: Logoff\r\nActionID: " in peer.received[0]
    assert "s3cret" not in stderr


@pytest.mark.parametrize(("signum", "code", "line"), INTERRUPTED)
def test_before_login_an_interrupted_run_sends_no_logoff(tmp_path: Path, signum: int, code: int, line: str) -> None:
    peer = AmiPeer()
    steps = "  - expect: never\n    timeout: 60\n  - login: {username: admin, secret: x}\n"
    with (
        tcp_peer(peer) as (host, port),
        running("run", script(tmp_path, steps), "--target", f"tcp://{host}:{port}") as process,
    ):
        peer.wait(peer.banners)
        status, stderr = interrupt(process, signum)
    assert (status, stderr.splitlines()) == (code, [line])
    assert peer.received == [b""]


def test_after_the_script_logged_off_itself_no_second_logoff_is_sent(tmp_path: Path) -> None:
    peer = AmiPeer(close_on_logoff=False)
    steps = LOGIN_THEN_WAIT.replace(
        "  - action: {Action: Ping}", "  - action: {Action: Logoff}\n  - action: {Action: Ping}"
    )
    with (
        tcp_peer(peer) as (host, port),
        running("run", script(tmp_path, steps), "--target", f"tcp://{host}:{port}") as process,
    ):
        peer.wait(peer.past_login)
        status, stderr = interrupt(process, signal.SIGINT)
    assert (status, stderr.splitlines()) == (130, ["amiscript: interrupted"])
    assert peer.received[0].count(b"Action: Logoff") == 1


def test_every_logged_in_job_of_a_parallel_run_logs_off_on_ctrl_c(tmp_path: Path) -> None:
    peer = AmiPeer()
    path = script(tmp_path, LOGIN_THEN_WAIT)
    with tcp_peer(peer) as (host, port):
        url = f"tcp://{host}:{port}"
        with running("run", path, "--target", url, "--target", url, "--target", url, "--jobs", "3") as process:
            peer.wait(peer.past_login, 3)
            status, stderr = interrupt(process, signal.SIGINT)
    assert (status, stderr.splitlines()) == (130, ["amiscript: interrupted"])
    assert len(peer.received) == 3
    assert all(b"\r\n\r\nAction: Logoff\r\n" in data for data in peer.received)


@needs_telnet
@pytest.mark.parametrize(("signum", "code", "line"), INTERRUPTED)
def test_through_telnet_an_interrupted_run_logs_off_and_leaves_no_telnet_behind(
    tmp_path: Path, signum: int, code: int, line: str
) -> None:
    peer = AmiPeer()
    with tcp_peer(peer) as (host, port):
        marker = f"--\0{host}\0{port}\0"  # telnet's own command line: telnet -E -- HOST PORT
        with running("run", script(tmp_path, LOGIN_THEN_WAIT), "--target", f"telnet://{host}:{port}") as process:
            peer.wait(peer.past_login)
            telnets = processes_with(marker)
            assert len(telnets) == 1
            status, stderr = interrupt(process, signum)
    assert (status, stderr.splitlines()) == (code, [line])
    assert len(peer.received) == 1 and b"Action: Logoff\r\n" in peer.received[0]
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{telnets[0]}"), "the telnet child is still there (running or a zombie)"


VMCOUNT = str(Path(__file__).resolve().parents[1] / "scripts" / "vmcount.yaml")


@pytest.mark.parametrize("scheme", ["tcp", pytest.param("telnet", marks=needs_telnet)])
def test_a_book_style_script_that_logs_in_with_raw_send_text_logs_off_when_interrupted(scheme: str) -> None:
    """vmcount.yaml logs in as the book does, with `send: "Action: Login..."`: the peer greeted
    as AMI and a Login went out, so Ctrl-C still ends the session with a Logoff."""
    peer = AmiPeer()
    with (
        tcp_peer(peer) as (host, port),
        running("run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"{scheme}://{host}:{port}") as process,
    ):
        peer.wait(peer.past_login)
        status, stderr = interrupt(process, signal.SIGINT)
    assert (status, stderr.splitlines()) == (130, ["amiscript: interrupted"])
    assert len(peer.received) == 1
    sent = peer.received[0].replace(b"\r\n", b"\n")
    assert sent.index(b"Action: Login\n") < sent.index(b"Action: MailboxCount\n") < sent.index(b"Action: Logoff\n")


@pytest.mark.parametrize("scheme", ["tcp", pytest.param("telnet", marks=needs_telnet)])
def test_a_peer_that_did_not_greet_as_ami_gets_no_logoff_it_was_not_sent(scheme: str) -> None:
    """The same conversation with a peer whose greeting is not the AMI banner: amiscript adds
    nothing to what the script sent."""
    peer = AmiPeer(banner=b"Manager of something else 1.0\r\n")
    with (
        tcp_peer(peer) as (host, port),
        running("run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"{scheme}://{host}:{port}") as process,
    ):
        peer.wait(peer.past_login)
        status, stderr = interrupt(process, signal.SIGINT)
    assert (status, stderr.splitlines()) == (130, ["amiscript: interrupted"])
    assert len(peer.received) == 1 and b"Action: MailboxCount" in peer.received[0]
    assert b"Logoff" not in peer.received[0]


# -- helper threads leave Ctrl-C and SIGTERM to the main thread ----------------------------------


def blocked_signals(native_id: int) -> set[int]:
    """The signals a thread of this process blocks, from the kernel's view (SigBlk)."""
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
    return {number for number in range(1, 65) if mask & (1 << (number - 1))}


def test_helper_threads_block_the_stop_signals_so_the_kernel_delivers_them_to_the_main_thread() -> None:
    """Delivered to a helper thread, Ctrl-C only set a flag while the main thread slept in a wait
    with no timeout: a parallel run then ignored it until a job ended (seen under load)."""
    from amiscript.console.client import AmiClient
    from amiscript.engine.runner import Job, run_jobs
    from amiscript.sim import Simulator, default_config
    from amiscript.transports.base import Target
    from amiscript.transports.tcp import TcpTransport

    stop = {signal.SIGINT, signal.SIGTERM}
    seen: list[set[int]] = []

    def job(out: object, err: object, cancel: object) -> int:
        seen.append(blocked_signals(threading.get_native_id()))
        return 0

    run_jobs([Job("a.yaml", "t", job), Job("b.yaml", "t", job)], 2)
    assert len(seen) == 2 and all(stop <= blocked for blocked in seen)
    assert not stop & blocked_signals(threading.get_native_id())  # the main thread takes them
    with Simulator(default_config(), host="127.0.0.1", port=0) as sim:
        assert sim._thread is not None and sim._thread.native_id is not None
        assert stop <= blocked_signals(sim._thread.native_id)
        client = AmiClient(TcpTransport.open(Target("tcp", *sim.address, 5.0)), lambda packet: None, lambda why: None)
        try:
            client.start(5.0)
            assert client._thread.native_id is not None
            assert stop <= blocked_signals(client._thread.native_id)
        finally:
            client.close()
