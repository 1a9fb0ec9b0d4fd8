"""Every script shipped in scripts/ runs against the simulator, over TCP and over telnet."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from amiscript.sim import SimConfig, Simulator, default_config
from amiscript.sim.identity import VERSION_LINE

from .helpers import AMISCRIPT

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
SCHEMES = ["tcp", pytest.param("telnet", marks=pytest.mark.skipif(shutil.which("telnet") is None, reason="no telnet"))]


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
    assert result.stdout == f"{len(paths)} scripts checked: 0 errors, 0 warnings\n"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_ami_login_check(sim: tuple[str, int], scheme: str) -> None:
    result = run("checks/ami-login.yaml", sim, scheme)
    assert (result.returncode, result.stdout) == (0, "AMI 11.0.0 answers; login as admin accepted\n")
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


@pytest.mark.parametrize("scheme", SCHEMES)
def test_command_demo_runs_reload_and_any_cli_command(sim: tuple[str, int], scheme: str) -> None:
    assert run("demos/command.yaml", sim, scheme).stdout == "reload: done\n\n"
    uptime = run("demos/command.yaml", sim, scheme, "--var", "command=core show uptime seconds")
    assert uptime.returncode == 0
    assert uptime.stdout.splitlines()[1].startswith("System uptime: ")
    unknown = run("demos/command.yaml", sim, scheme, "--var", "command=frobnicate")
    assert unknown.returncode == 1
    assert unknown.stdout.startswith("Command failed: Command output follows: No such command 'frobnicate'")


def test_command_demo_reads_the_legacy_follows_answer_the_same_way() -> None:
    config = default_config()
    legacy = SimConfig(users=config.users, mailboxes=config.mailboxes, login_fail_delay=0.0, command_style="follows")
    with Simulator(legacy, host="127.0.0.1", port=0) as server:
        result = run("demos/command.yaml", server.address, "tcp", "--var", "command=core show version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["core show version: done", VERSION_LINE]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_dial_demo_and_originate_check_reach_originate_response_success(sim: tuple[str, int], scheme: str) -> None:
    dial = run("demos/dial.yaml", sim, scheme)
    assert (dial.returncode, dial.stdout) == (0, "Call from Local/100@default to 200@default: Success (reason 4)\n")
    check = run("checks/originate.yaml", sim, scheme)
    assert (check.returncode, check.stdout) == (0, "OK: call to Local/100@default answered\n")
    failed = run("checks/originate.yaml", sim, scheme, "--var", "channel=Local/999@default")
    assert failed.returncode == 1
    assert "assert failed: the test call failed: result == 'Success' (result = 'Failure')" in failed.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_friends_loop_calls_each_number(sim: tuple[str, int], scheme: str) -> None:
    result = run("demos/friends.yaml", sim, scheme, "--var", "friends=100, 200,999")
    assert result.stdout == "Called 100: Success\nCalled 200: Success\nCalled 999: Failure\n"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_voicemail_users_list_check(sim: tuple[str, int], scheme: str) -> None:
    result = run("checks/voicemail-users.yaml", sim, scheme)
    assert (result.returncode, result.stdout) == (
        0,
        "123@default: 0 new, 0 old\n124@default: 2 new, 1 old\n200@sales: 6 new, 3 old\n",
    )
    too_few = run("checks/voicemail-users.yaml", sim, scheme, "--var", "min=5")
    assert too_few.returncode == 1
    assert "too few voicemail users: len(boxes) >= min" in too_few.stderr


def test_a_shipped_check_reads_the_secret_from_ami_secret_and_says_so_when_it_is_unset(
    sim: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AMI_SECRET")
    unset = run("checks/ami-login.yaml", sim, "tcp")
    assert unset.returncode == 2 and unset.stdout == ""
    assert "environment variable AMI_SECRET is not set (used as ${env:AMI_SECRET})" in unset.stderr
    assert "export AMI_SECRET=... before running" in unset.stderr
    monkeypatch.setenv("AMI_SECRET", "not-the-secret")
    refused = run("checks/ami-login.yaml", sim, "tcp")
    assert refused.returncode == 1 and "Authentication failed" in refused.stderr


def usage_lines() -> list[tuple[str, dict[str, str], list[str], int]]:
    """Every `amiscript run ...` line written in a comment of a shipped script: the environment it
    sets first (`AMI_SECRET=...`: the simulator's secret stands for the reader's), its arguments,
    and the exit status it should end with: 0, or what a trailing `# exit N: why` says."""
    found = []
    for path in sorted(SCRIPTS.rglob("*.yaml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            written = re.match(r"#\s+((?:[A-Z_]+=\S+\s+)*)amiscript run (.*)", line)
            if written:
                env = dict(pair.split("=", 1) for pair in written.group(1).split())
                env = {name: "secret5" if value == "..." else value for name, value in env.items()}
                status = re.search(r"\s#\s*exit (\d+)", written.group(2))
                args = shlex.split(written.group(2), comments=True)
                where = f"{path.relative_to(ROOT)}:{number}"
                found.append((where, env, args, int(status.group(1)) if status else 0))
    return found


def as_simulated(args: list[str]) -> list[str]:
    """The usage line against the built-in simulator: a PBX's address becomes its scheme alone
    (`--simulate --target tcp://`), and a value written `...` is the reader's own, left out."""
    result: list[str] = []
    for arg in args:
        if result and result[-1] == "--target":
            arg = arg.partition("://")[0] + "://"
        elif result and result[-1] == "--var" and arg.endswith("=..."):
            result.pop()
            continue
        result.append(arg)
    return result if "--simulate" in result else [*result, "--simulate"]


def test_the_usage_lines_of_the_shipped_scripts_are_found() -> None:
    """The test below runs what this finds: it must not silently find nothing."""
    named = {where.rpartition(":")[0] for where, _, _, _ in usage_lines()}
    assert {"scripts/vmcount.yaml", "scripts/demos/friends.yaml", "scripts/checks/ami-login.yaml"} <= named


@pytest.mark.parametrize(
    ("where", "env", "args", "status"), usage_lines(), ids=[where for where, _, _, _ in usage_lines()]
)
def test_each_usage_line_in_a_scripts_comment_runs_as_written(
    where: str, env: dict[str, str], args: list[str], status: int
) -> None:
    """A reader copies these lines first: each must work (with --simulate instead of a PBX), with
    only the environment the line itself sets."""
    environ = {name: value for name, value in os.environ.items() if name != "AMI_SECRET"}
    result = subprocess.run(
        [*AMISCRIPT, "run", *as_simulated(args)], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**environ, **env},
    )  # fmt: skip
    assert result.returncode == status, f"{where}: {result.stderr}"
