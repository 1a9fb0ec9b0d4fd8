"""Every script shipped in scripts/ runs against the simulator, over TCP and over telnet."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from amiscript.sim import SimConfig, Simulator, default_config

from .helpers import AMISCRIPT

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
SCHEMES = ["tcp", pytest.param("telnet", marks=pytest.mark.skipif(shutil.which("telnet") is None, reason="no telnet"))]


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[str, int]]:
    config = default_config()
    fast = SimConfig(users=config.users, mailboxes=config.mailboxes, login_fail_delay=0.0)
    with Simulator(fast, host="127.0.0.1", port=0) as server:
        yield server.address


def run(script: str, sim: tuple[str, int], scheme: str, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = sim
    return subprocess.run(
        [*AMISCRIPT, "run", str(SCRIPTS / script), "--target", f"{scheme}://{host}:{port}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_every_shipped_script_passes_check() -> None:
    paths = sorted(str(path) for path in SCRIPTS.rglob("*.yaml"))
    result = subprocess.run([*AMISCRIPT, "check", *paths], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"{len(paths)} of {len(paths)} scripts ok")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_ami_login_check(sim: tuple[str, int], scheme: str) -> None:
    result = run("checks/ami-login.yaml", sim, scheme)
    assert (result.returncode, result.stdout) == (0, "OK: AMI 11.0.0 on 127.0.0.1:5038, login as admin accepted\n")
    refused = run("checks/ami-login.yaml", sim, scheme, "--var", "secret=wrong")
    assert refused.returncode == 1
    assert "login as 'admin' failed: Authentication failed" in refused.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_md5_login_check(sim: tuple[str, int], scheme: str) -> None:
    result = run("checks/ami-login.yaml", sim, scheme, "--var", "auth=md5", "-v")
    assert result.returncode == 0, result.stderr
    assert "Key: ****" in result.stderr and "secret5" not in result.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_asterisk_version_check(sim: tuple[str, int], scheme: str) -> None:
    assert run("checks/asterisk-version.yaml", sim, scheme).stdout == "OK: Asterisk 22.10.1\n"
    wrong = run("checks/asterisk-version.yaml", sim, scheme, "--var", "expected=^13\\.")
    assert wrong.returncode == 1
    assert "assert failed: unexpected Asterisk version: version =~ expected (version = '22.10.1'" in wrong.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_mailbox_count_check(sim: tuple[str, int], scheme: str) -> None:
    ok = run("checks/mailbox-count.yaml", sim, scheme, "--var", "mailbox=124@default")
    assert (ok.returncode, ok.stdout) == (0, "OK: 124@default has 2 new and 1 old messages\n")
    over = run("checks/mailbox-count.yaml", sim, scheme, "--var", "mailbox=200@sales", "--var", "max_new=3")
    assert over.returncode == 1
    assert "too many new messages in 200@sales: new <= max_new (new = '5', max_new = '3')" in over.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_login_demo_tells_the_truth(sim: tuple[str, int], scheme: str) -> None:
    assert run("demos/login.yaml", sim, scheme).stdout == "Login successful\n"
    refused = run("demos/login.yaml", sim, scheme, "--var", "username=mark")
    assert (refused.returncode, refused.stdout) == (1, "Login failed: Authentication failed\n")


def send_user_events(sim: tuple[str, int], count: int, delay: float) -> None:
    time.sleep(delay)
    with socket.create_connection(sim, 5) as conn:
        conn.recv(100)
        conn.sendall(b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\nEvents: off\r\n\r\n")
        for number in range(count):
            conn.sendall(b"Action: UserEvent\r\nUserEvent: Demo%d\r\n\r\n" % number)
        time.sleep(0.5)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_events_demo_prints_the_events_that_arrive(sim: tuple[str, int], scheme: str) -> None:
    sender = threading.Thread(target=send_user_events, args=(sim, 8, 1.0))
    sender.start()
    result = run("demos/events.yaml", sim, scheme)
    sender.join()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # our own login's events, the other client's login (SuccessfulAuth goes to every session that
    # reads the security class, as in Asterisk), then its UserEvents, up to the demo's 10
    assert lines[:3] == ["Event: FullyBooted (system,all)"] + ["Event: SuccessfulAuth (security,all)"] * 2
    assert lines[3:] == ["Event: UserEvent (user,all)"] * 7
