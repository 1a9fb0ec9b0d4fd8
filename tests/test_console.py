"""`amiscript console` and `amiscript record` in a real pseudo-terminal (pexpect), against the
simulator or a small recording peer over real sockets; and record-then-replay end to end."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from amiscript.protocol import Packet, encode_packet
from amiscript.protocol.codec import SERVER_MAX_LINE, PacketReader, Signal
from tests.peers import free_port, tcp_peer

SECRET = "secret5"
LOGIN = ("--username", "admin", "--secret-env", "AMI_TEST_SECRET")
TIMEOUT = 20  # seconds any one expectation may take on a loaded machine


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env.update({"AMI_TEST_SECRET": SECRET, "AMISCRIPT_HISTORY": str(tmp_path / "history"), "TERM": "xterm", **extra})
    return env


def _spawn(address: tuple[str, int], tmp_path: Path, *args: str, **env: str) -> pexpect.spawn:
    host, port = address
    child = pexpect.spawn(
        sys.executable,
        ["-m", "amiscript", *args, "--target", f"tcp://{host}:{port}", *LOGIN],
        env=_env(tmp_path, **env),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
        cwd=str(tmp_path),
    )
    child.logfile_read = io.StringIO()  # everything it printed, for checks over the whole session
    child.expect_exact("ami> ")
    return child


def _finish(child: pexpect.spawn) -> int:
    """Ctrl-D at a fresh prompt (one typed between two prompts could meet a cooked terminal)."""
    child.sendline("/events on")
    child.expect_exact("# ")
    child.expect_exact("ami> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_raw_packets_and_short_forms_get_their_answers(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.sendline("Action: Ping")
    child.expect_exact("...> ")
    child.sendline("")
    child.expect(r"Ping: +Pong")
    child.expect_exact("ami> ")
    child.sendline("MailboxCount Mailbox=124@default")
    child.expect(r"Mailbox: +124@default\r\n.*NewMessages: +2\r\nOldMessages: +1")
    child.sendline('Command "core show version"')
    child.expect(r"Output: +Asterisk 22")
    child.sendline("Nonsense")
    child.expect(r"Response: Error\r\n.*Message: +Invalid/unknown command")
    child.sendline("Originate Local/100@default")
    child.expect_exact("give Originate's headers as Name=Value")
    assert _finish(child) == 0


def test_events_show_while_typing_and_the_half_typed_line_survives(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.sendline("Originate Channel=Local/200@default Context=default Exten=100 Priority=1 Async=true")
    child.expect_exact("Originate successfully queued")
    child.expect_exact("ami> ")
    child.send("Pin")  # no Enter: the call's events arrive while this sits on the line
    child.expect(r"-- event Hangup\r\n")
    child.expect_exact("ami> Pin")  # the prompt and the typed text drawn again below the event
    child.send("g\r")
    child.expect(r"Ping: +Pong")
    assert _finish(child) == 0


def test_tab_completes_actions_from_list_commands_and_their_headers(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.send("VoicemailU\t")
    child.expect_exact("VoicemailUsersList ")
    child.send("\x15")  # readline: clear the line
    child.send("MailboxC\t")
    child.expect_exact("MailboxCount ")
    child.send("Ma\t")
    child.expect_exact("Mailbox=")
    child.send("124@default\r")
    child.expect(r"NewMessages: +2")
    assert _finish(child) == 0


def test_a_window_resized_at_the_prompt_keeps_the_console_working(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.send("UserEvent Resized")
    child.setwinsize(30, 40)  # SIGWINCH while a line is half typed
    child.sendline(" Note=" + "x" * 60)  # longer than the new width
    child.expect(r"Note: +x{60}")
    assert _finish(child) == 0


def test_help_filter_and_events_off(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.sendline("/help")
    child.expect_exact("/filter Name=Value")
    child.sendline("/filter UserEvent=Second")
    child.expect_exact("# showing events with UserEvent=Second")
    child.sendline("UserEvent First")
    child.expect_exact("Event Sent")
    child.sendline("UserEvent Second")
    child.expect(r"-- event UserEvent\r\n.*UserEvent: +Second")
    assert "UserEvent: First" not in child.before
    child.sendline("/events off")
    child.expect_exact("# events are off")
    child.sendline("UserEvent Second")
    child.expect_exact("Event Sent")
    child.sendline("Ping")
    child.expect(r"Ping: +Pong")
    assert "-- event" not in child.before
    child.sendline("/bogus")
    child.expect_exact("unknown console command")
    assert _finish(child) == 0


def test_ctrl_c_clears_the_line_search_and_raw_packet_and_up_recalls(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.send("garbage")
    child.sendintr()
    child.expect_exact("^C")
    child.expect_exact("ami> ")
    child.sendline("Ping")
    child.expect(r"Ping: +Pong")
    child.expect_exact("ami> ")
    child.send("\x12Pi")  # Ctrl-R: a history search, left with Ctrl-C
    child.expect_exact("reverse-i-search")
    child.sendintr()
    child.expect_exact("ami> ")
    child.sendline("Action: Ping")  # a raw packet half typed is dropped by Ctrl-C too
    child.expect_exact("...> ")
    child.sendintr()
    child.expect_exact("ami> ")
    child.send("\x1b[A\x1b[A\r")  # Up, Up: the line before the last
    child.expect(r"Ping: +Pong")
    assert _finish(child) == 0


def test_ctrl_c_at_varied_moments_always_gives_a_fresh_prompt_that_works(sim: tuple[str, int], tmp_path: Path) -> None:
    """Ctrl-C in the same write as the letters before it (readline still reading them ahead), twice
    at once, at an empty prompt, and while an event is printed: each time the line is dropped and
    the next prompt answers a Ping. As a tty signal this hung about one Ctrl-C in fifteen: the
    terminal discarded the letters readline had seen waiting, and it blocked in read()."""
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.delaybeforesend = None  # the Ctrl-C right behind the letters, as a fast typist's
    moments = ["garbage", "UserEvent Foo=" + "x" * 60, "", "abc\x03", "event", "Ping Extra=1"]
    for moment in moments * 5:
        if moment == "event":  # typed while the UserEvent's event is printed above the prompt
            child.sendline("UserEvent UserEvent=Bar")
            child.expect_exact("Event Sent")
            child.expect_exact("ami> ")
            moment = "zz"
        for letter in moment:  # one write each: the console is woken for the first, readline reads ahead
            child.send(letter)
        child.sendintr()
        child.expect_exact("^C")
        child.expect_exact("ami> ")
        child.sendline("Ping")
        child.expect(r"\r\nPing: +Pong")  # "garbagePing" would be an error, not this
        child.expect_exact("ami> ")
    shown = child.logfile_read.getvalue()
    assert "error" not in shown and "Traceback" not in shown and "Exception ignored" not in shown
    assert _finish(child) == 0


def test_a_sigint_outside_a_wait_is_ignored_so_it_can_never_end_the_console(
    sim: tuple[str, int], tmp_path: Path
) -> None:
    """Between an answer and the next prompt there is nothing to stop: a Ctrl-C landing there
    ended the console (130). The console now acts on SIGINT only while it waits for an answer;
    at the prompt Ctrl-C is a key. A SIGINT sent while a line is half typed shows it."""
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.send("Pi")
    time.sleep(0.3)  # the letters reach readline first
    os.kill(child.pid, signal.SIGINT)
    time.sleep(0.3)
    child.sendline("ng")
    child.expect(r"\r\nPing: +Pong")  # the line survived whole
    child.expect_exact("ami> ")
    assert child.isalive()
    assert _finish(child) == 0


def test_colour_on_a_terminal_unless_no_color(sim: tuple[str, int], tmp_path: Path) -> None:
    coloured = _spawn(sim, tmp_path, "console")
    coloured.sendline("Ping")
    coloured.expect_exact("\x1b[32mSuccess")
    assert _finish(coloured) == 0
    assert "\x1b[36m-- event" in coloured.logfile_read.getvalue()  # the login's events
    plain = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    plain.sendline("Ping")
    plain.expect(r"Ping: +Pong")
    assert _finish(plain) == 0
    shown = plain.logfile_read.getvalue()
    assert "Ping: " in shown and "-- event" in shown and "\x1b[3" not in shown and "\x1b[0m" not in shown


def _packets(conn: socket.socket, seen: list[Packet]) -> Iterator[Packet]:
    reader = PacketReader(max_line=SERVER_MAX_LINE)
    conn.settimeout(TIMEOUT)
    while True:
        event = reader.next_event()
        if event is Signal.NEED_DATA:
            data = conn.recv(4096)
            reader.receive_data(data)
            continue
        if not isinstance(event, Packet):
            return
        seen.append(event)
        yield event


def _answer(packet: Packet, *headers: tuple[str, str]) -> bytes:
    return encode_packet([("Response", "Success"), ("ActionID", packet.get("ActionID") or ""), *headers])


def test_ctrl_d_logs_off_and_exits_0(tmp_path: Path) -> None:
    seen: list[Packet] = []

    def pbx(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        for packet in _packets(conn, seen):
            if packet.get("Action") == "Logoff":
                conn.sendall(encode_packet([("Response", "Goodbye"), ("ActionID", packet.get("ActionID") or "")]))
                return
            conn.sendall(_answer(packet))

    with tcp_peer(pbx) as address:
        child = _spawn(address, tmp_path, "console", NO_COLOR="1")
        assert _finish(child) == 0
    assert [packet.get("Action") for packet in seen] == ["Login", "ListCommands", "Logoff"]
    assert seen[0].get("Secret") == SECRET  # it went to the server, and only there


def test_md5_login_never_sends_the_secret(tmp_path: Path) -> None:
    seen: list[Packet] = []

    def pbx(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        for packet in _packets(conn, seen):
            conn.sendall(_answer(packet, ("Challenge", "12345")))

    with tcp_peer(pbx) as address:
        child = _spawn(address, tmp_path, "console", "--auth", "md5", NO_COLOR="1")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    assert [packet.get("Action") for packet in seen][:2] == ["Challenge", "Login"]
    assert seen[1].get("Key") and seen[1].get("Secret") is None
    assert all(SECRET not in value for packet in seen for _, value in packet)


def test_a_server_that_hangs_up_ends_the_console_with_exit_3(tmp_path: Path) -> None:
    def pbx(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        for packet in _packets(conn, []):
            if packet.get("Action") == "Ping":
                return  # hang up instead of answering
            conn.sendall(_answer(packet))

    with tcp_peer(pbx) as address:
        child = _spawn(address, tmp_path, "console", NO_COLOR="1")
        child.sendline("Ping")
        child.expect_exact("the server closed the connection")
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 3


def test_without_a_terminal_lines_come_from_stdin_and_nothing_is_coloured(sim: tuple[str, int], tmp_path: Path) -> None:
    host, port = sim
    result = subprocess.run(
        [sys.executable, "-m", "amiscript", "console", "--target", f"tcp://{host}:{port}", *LOGIN],
        input="Ping\nMailboxCount Mailbox=${box}\nAction: MailboxCount\nMailbox: 124@default\n\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "Ping:      Pong" in result.stdout and "NewMessages: 2" in result.stdout
    assert "# error: variable 'box' has no value yet" in result.stdout and "--var NAME=VALUE" in result.stdout
    assert result.stdout.rstrip().endswith("# logged off")
    assert "\x1b" not in result.stdout and SECRET not in result.stdout


@pytest.mark.skipif(shutil.which("telnet") is None, reason="needs a telnet client")
def test_through_telnet_with_md5(sim: tuple[str, int], tmp_path: Path) -> None:
    host, port = sim
    result = subprocess.run(
        [sys.executable, "-m", "amiscript", "console", "--target", f"telnet://{host}:{port}", "--auth", "md5", *LOGIN],
        input='Command "core show version"\n',
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert f"# connected to telnet://{host}:{port}" in result.stdout and "Output:   Asterisk 22" in result.stdout


def test_a_refused_login_is_one_line_and_exit_1(sim: tuple[str, int], tmp_path: Path) -> None:
    host, port = sim
    result = subprocess.run(
        [sys.executable, "-m", "amiscript", "console", "--target", f"tcp://{host}:{port}", *LOGIN],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path, AMI_TEST_SECRET="wrong"),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert result.stderr == "amiscript: error: login as 'admin' failed: Authentication failed\n"
    assert "closed the connection" not in result.stdout  # the error says it all


def test_nothing_listening_is_one_line_and_exit_3(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amiscript", "console", "--target", f"tcp://127.0.0.1:{free_port()}", *LOGIN],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 3
    assert len(result.stderr.splitlines()) == 1 and "connection refused" in result.stderr


def test_a_secret_env_that_is_not_set_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amiscript", "console", "--username", "admin", "--secret-env", "NO_SUCH_VAR_HERE"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "amiscript: error: --secret-env NO_SUCH_VAR_HERE: the environment variable is not set "
        "(export NO_SUCH_VAR_HERE=...)"
    ]


def test_without_a_terminal_the_secret_is_asked_for_by_name_never_read_from_stdin(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amiscript", "console", "--username", "admin", "--simulate"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path),
        input="secret5\nPing\n",
        start_new_session=True,  # no controlling terminal, as under cron or CI
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "amiscript: error: console: there is no terminal to ask for the secret on: give --secret-env NAME "
        "(export NAME=... first)"
    ]


@pytest.mark.parametrize(
    ("given", "line"),
    [
        ({"username": "ad\nmin"}, "--username contains a line feed (LF)"),
        ({"secret": SECRET + "\r\nAction: Command"}, "the secret in $AMI_TEST_SECRET contains a carriage return (CR)"),
    ],
)
def test_a_line_break_in_the_username_or_secret_is_refused_before_connecting(
    tmp_path: Path, given: dict[str, str], line: str
) -> None:
    """As `run` refuses it: it would add header lines to the Login. The value is never shown."""
    connections: list[bytes] = []
    secret = given.get("secret", SECRET)
    with tcp_peer(lambda conn: connections.append(conn.recv(100))) as (host, port):
        result = subprocess.run(
            [sys.executable, "-m", "amiscript", "console", "--target", f"tcp://{host}:{port}",
             "--username", given.get("username", "admin"), "--secret-env", "AMI_TEST_SECRET"],
            capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
            env=_env(tmp_path, AMI_TEST_SECRET=secret),
        )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and line in result.stderr and "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr and "min" not in result.stderr
    assert connections == []


# -- record, check, replay ------------------------------------------------------------------


def _amiscript(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amiscript", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path),
        cwd=str(tmp_path),
    )


def test_a_recorded_session_checks_clean_and_replays_with_exit_0(sim: tuple[str, int], tmp_path: Path) -> None:
    script = tmp_path / "explore.yaml"
    child = _spawn(sim, tmp_path, "record", str(script), "--var", "box=124@default", NO_COLOR="1")
    child.sendline("Ping")
    child.expect(r"Ping: +Pong")
    child.sendline("Action: MailboxCount")
    child.sendline("Mailbox: ${box}")
    child.sendline("")
    child.expect(r"NewMessages: +2")
    child.sendline('Command "core show version"')
    child.expect(r"Output: +Asterisk")
    child.sendline("UserEvent Recorded Note=hi")
    child.expect_exact("Event Sent")
    child.sendline(f"DBPut Family=t Key=k Val={SECRET}")  # the secret typed by hand: recorded as ${secret}
    child.expect_exact("Updated database successfully")
    child.sendline("NoSuchAction")
    child.expect_exact("Invalid/unknown command")
    assert _finish(child) == 0
    text = script.read_text()
    assert SECRET not in text
    assert '"${env:AMI_TEST_SECRET}"' in text and 'Val: "${secret}"' in text and 'Mailbox: "${box}"' in text
    assert "# observed: Timestamp:" in text
    check = _amiscript("check", str(script), tmp_path=tmp_path)
    assert (check.returncode, check.stdout.splitlines()[-1]) == (0, "1 script checked: 0 errors, 0 warnings")
    replay = _amiscript("run", str(script), "-v", tmp_path=tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "Action: Logoff" in replay.stderr
    assert SECRET not in replay.stdout + replay.stderr
    history = (tmp_path / "history").read_text()
    assert "Ping" in history and "NoSuchAction" in history and SECRET not in history


def test_record_against_the_built_in_simulator_replays_with_simulate(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "amiscript", "record", "sim.yaml", "--simulate", "--secret-env", "AMI_TEST_SECRET"],
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=TIMEOUT,
        cwd=str(tmp_path),
    )
    child.expect_exact("ami> ")
    child.sendline("VoicemailUsersList")
    child.expect_exact("Voicemail user list will follow")  # the answer, then its list's events
    child.expect(r"VoiceMailbox: *(\x1b\[0m)? +123")  # coloured: a terminal without NO_COLOR
    child.expect(r"EventList: *(\x1b\[0m)? +Complete")
    child.expect_exact("ami> ")  # the prompt comes back once the list has ended
    assert _finish(child) == 0
    text = (tmp_path / "sim.yaml").read_text()
    assert text.splitlines()[1].endswith("amiscript run sim.yaml --simulate")
    assert (
        "    # observed: 3 items (VoicemailUserEntry), ended by VoicemailUserEntryComplete\n"
        "    list: voicemailuserslist_items\n    items:\n      min: 1\n      every: {Event: VoicemailUserEntry}\n"
    ) in text
    assert _amiscript("run", "sim.yaml", "--simulate", tmp_path=tmp_path).returncode == 0


def test_record_inside_the_console_starts_from_there(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.sendline("UserEvent NotRecorded")
    child.expect_exact("Event Sent")
    child.sendline("/record later.yaml")
    child.expect_exact("# recording to later.yaml")
    child.sendline("Ping")
    child.expect(r"Ping: +Pong")
    child.sendline("/record other.yaml")
    child.expect_exact("already recording to later.yaml")
    assert _finish(child) == 0
    text = (tmp_path / "later.yaml").read_text()
    assert "NotRecorded" not in text and "Action: Ping" in text
    assert _amiscript("run", "later.yaml", tmp_path=tmp_path).returncode == 0


def test_record_refuses_to_overwrite_a_file(tmp_path: Path) -> None:
    (tmp_path / "there.yaml").write_text("keep me\n")
    result = _amiscript("record", "there.yaml", "--username", "admin", tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("amiscript: error: record: there.yaml exists")
    assert (tmp_path / "there.yaml").read_text() == "keep me\n"


def _pbx(seen: list[Packet], hold: str = "", held: threading.Event | None = None):  # type: ignore[no-untyped-def]
    """A PBX that answers every action (Logoff with Goodbye) except ``hold``, which it keeps."""

    def pbx(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        for packet in _packets(conn, seen):
            action = packet.get("Action") or ""
            if action == "Logoff":
                conn.sendall(encode_packet([("Response", "Goodbye"), ("ActionID", packet.get("ActionID") or "")]))
                return
            if action == hold and held is not None:
                held.set()
            else:
                conn.sendall(_answer(packet))

    return pbx


def test_record_to_a_path_that_cannot_be_written_stops_before_connecting(tmp_path: Path) -> None:
    seen: list[Packet] = []
    with tcp_peer(_pbx(seen)) as (host, port):
        result = _amiscript("record", "/proc/x.yaml", "--target", f"tcp://{host}:{port}", *LOGIN, tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "amiscript: error: record: cannot write /proc/x.yaml: No such file or directory"
    ]
    assert seen == []  # not even a login: nothing to log off


def test_slash_record_to_an_unwritable_path_leaves_the_console_as_it_was(sim: tuple[str, int], tmp_path: Path) -> None:
    child = _spawn(sim, tmp_path, "console", NO_COLOR="1")
    child.sendline("/record /proc/x.yaml")
    child.expect_exact("# error: record: cannot write /proc/x.yaml")
    child.sendline("Ping")
    child.expect(r"Ping: +Pong")
    child.expect_exact("ami> ")
    assert "error" not in child.before  # not recording: nothing fails to be written
    child.sendline("/record ok.yaml")
    child.expect_exact("# recording to ok.yaml")
    child.sendline("UserEvent Kept")
    child.expect_exact("Event Sent")
    assert _finish(child) == 0
    assert "UserEvent: Kept" in (tmp_path / "ok.yaml").read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["history", "ok.yaml"]  # no temporary file left


def test_the_recording_is_replaced_whole_not_rewritten_in_place(sim: tuple[str, int], tmp_path: Path) -> None:
    """A reader (or a crash) never sees half a script: each write is a new file renamed over it."""
    child = _spawn(sim, tmp_path, "record", "whole.yaml", NO_COLOR="1")
    first = (tmp_path / "whole.yaml").stat().st_ino
    child.sendline("Ping")
    child.expect(r"Ping: +Pong")
    child.expect_exact("ami> ")
    assert (tmp_path / "whole.yaml").stat().st_ino != first
    assert _finish(child) == 0


@pytest.mark.parametrize("when", ["at the prompt", "while waiting for an answer"])
def test_sigterm_logs_off_and_exits_143_with_one_line(tmp_path: Path, when: str) -> None:
    seen: list[Packet] = []
    held = threading.Event()
    with tcp_peer(_pbx(seen, "Hold", held)) as address:
        child = _spawn(address, tmp_path, "console", NO_COLOR="1")
        if when != "at the prompt":
            child.sendline("Hold")
            assert held.wait(TIMEOUT)
        child.kill(signal.SIGTERM)
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 143
    shown = child.logfile_read.getvalue()
    assert shown.count("amiscript: terminated") == 1 and "Traceback" not in shown and "error" not in shown
    assert [packet.get("Action") for packet in seen][-1] == "Logoff"


def test_ctrl_c_while_waiting_keeps_the_action_in_the_recording(tmp_path: Path) -> None:
    seen: list[Packet] = []
    held = threading.Event()
    with tcp_peer(_pbx(seen, "Hold", held)) as address:
        child = _spawn(address, tmp_path, "record", "held.yaml", NO_COLOR="1")
        child.sendline("Hold Note=x")
        assert held.wait(TIMEOUT)
        child.sendintr()
        child.expect_exact("# stopped waiting for the answer")
        child.sendline("Ping")
        child.expect_exact("ami> ")
        assert _finish(child) == 0
    text = (tmp_path / "held.yaml").read_text()
    note = "  # sent, but Ctrl-C stopped the wait during the session: no answer was seen\n"
    assert note + "  - action:\n      Action: Hold\n" in text
    assert text.index("Action: Hold") < text.index("Action: Ping")


def test_timeout_has_the_same_bound_as_run(sim: tuple[str, int], tmp_path: Path) -> None:
    """One day, as for `run --timeout` (the console once had an hour of its own)."""
    host, port = sim
    base = [sys.executable, "-m", "amiscript", "console", "--target", f"tcp://{host}:{port}", *LOGIN]
    hours = subprocess.run(
        [*base, "--timeout", "7200"],
        input="Ping\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path),
    )
    assert hours.returncode == 0 and "Pong" in hours.stdout, hours.stderr
    too_long = subprocess.run(
        [*base, "--timeout", "86401"], capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert too_long.returncode == 2
    assert too_long.stderr == (
        "amiscript: error: --timeout must be greater than 0 and at most 86400 seconds, not 86401\n"
    )


def test_ctrl_d_while_an_answer_is_awaited_logs_off_once_the_wait_ends(tmp_path: Path) -> None:
    seen: list[Packet] = []
    held = threading.Event()
    with tcp_peer(_pbx(seen, "Hold", held)) as address:
        child = _spawn(address, tmp_path, "console", "--timeout", "2", NO_COLOR="1")
        child.sendline("Hold")
        assert held.wait(TIMEOUT)
        child.sendeof()  # pressed while the console waits for the answer that never comes
        child.expect_exact("no answer within 2 s")
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 0
    assert [packet.get("Action") for packet in seen] == ["Login", "ListCommands", "Hold", "Logoff"]


def test_the_banner_wait_ends_at_the_timeout_given(tmp_path: Path) -> None:
    def silent(conn: socket.socket) -> None:
        conn.settimeout(TIMEOUT)
        with contextlib.suppress(OSError):
            conn.recv(1)  # until the console gives up and closes

    with tcp_peer(silent) as (host, port):
        started = time.monotonic()
        result = _amiscript("console", "--target", f"tcp://{host}:{port}", "--timeout", "1", *LOGIN, tmp_path=tmp_path)
        took = time.monotonic() - started
    assert result.returncode != 0 and "no AMI banner within 1 s" in result.stderr
    assert took < 1 + 5  # not the 10 s connect timeout (bound generous for a loaded machine)


@pytest.mark.parametrize(
    ("args", "prompt", "line"),
    [
        ((), "Username: ", "amiscript: error: console: no username given (type one at the prompt, or pass --username)"),
        (
            ("--username", "admin"),
            "Secret for admin: ",
            "amiscript: error: console: no secret given (type it at the prompt, or pass --secret-env NAME)",
        ),
    ],
)
def test_ctrl_d_at_the_username_or_secret_prompt_ends_with_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], prompt: str, line: str
) -> None:
    """Ctrl-D there means "I do not want to log in": no traceback, and nothing is sent."""
    connections: list[bytes] = []
    with tcp_peer(lambda conn: connections.append(conn.recv(100))) as (host, port):
        child = pexpect.spawn(
            sys.executable,
            ["-m", "amiscript", "console", "--target", f"tcp://{host}:{port}", *args],
            env=_env(tmp_path),
            encoding="utf-8",
            timeout=TIMEOUT,
            cwd=str(tmp_path),
        )
        child.logfile_read = io.StringIO()
        child.expect_exact(prompt)
        child.sendeof()
        child.expect(pexpect.EOF)
        child.close()
    text = child.logfile_read.getvalue()
    assert child.exitstatus == 2, text
    assert line in text.splitlines() and "Traceback" not in text
    assert connections == []
