"""Spawned sessions: telnet as in the book, and any command on a pty (real processes only)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from amiscript.engine import Interpreter
from amiscript.errors import ConnectFailed, ConnectionLost, RunFailed
from amiscript.script import load_script_text
from amiscript.transports.base import Target

from .helpers import AMISCRIPT, Recorder
from .peers import free_port, recorder, tcp_peer

ROOT = Path(__file__).resolve().parents[1]
VMCOUNT = str(ROOT / "scripts" / "vmcount.yaml")

# .ci/run installs Debian's telnet, so in CI these tests always run (and fail if it is missing);
# a developer machine without a telnet client skips them.
needs_telnet = pytest.mark.skipif(
    shutil.which("telnet") is None and not os.environ.get("CI"), reason="no telnet client installed"
)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMISCRIPT, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


# -- telnet: the book's transport ------------------------------------------------------------


@needs_telnet
@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--var", "mailbox=124@default"], 0),
        (["--var", "mailbox=123@default"], 0),
        (["--var", "mailbox=124@default", "--var", "secret=wrong"], 1),
    ],
)
def test_vmcount_over_telnet_prints_exactly_what_it_prints_over_tcp(
    sim: tuple[str, int], extra: list[str], code: int
) -> None:
    host, port = sim
    over_tcp = run_cli("run", VMCOUNT, *extra, "--target", f"tcp://{host}:{port}")
    over_telnet = run_cli("run", VMCOUNT, *extra, "--target", f"telnet://{host}:{port}")
    assert over_tcp.returncode == over_telnet.returncode == code
    assert over_telnet.stdout == over_tcp.stdout
    assert over_telnet.stdout.startswith("Mailbox: ")
    assert "Traceback" not in over_telnet.stderr


@needs_telnet
def test_vmcount_over_telnet_prints_the_book_lines(sim: tuple[str, int]) -> None:
    host, port = sim
    result = run_cli("run", VMCOUNT, "--var", "mailbox=124@default", "--target", f"telnet://{host}:{port}")
    assert result.stdout == "Mailbox: 124@default\nConnected.\nLogged in.\nNew messages: 2\nOld messages: 1\n"


@needs_telnet
def test_vmcount_over_telnet_with_nothing_listening_prints_failed_to_connect() -> None:
    port = free_port()
    over_tcp = run_cli("run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"tcp://127.0.0.1:{port}")
    over_telnet = run_cli("run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"telnet://127.0.0.1:{port}")
    assert over_telnet.returncode == over_tcp.returncode == 1
    assert over_telnet.stdout == over_tcp.stdout == "Mailbox: 123@default\nFailed to connect.\n"


@needs_telnet
def test_simulate_flag_can_go_through_telnet() -> None:
    result = run_cli("run", VMCOUNT, "--var", "mailbox=124@default", "--simulate", "--target", "telnet://")
    assert (result.returncode, result.stdout.splitlines()[-1]) == (0, "Old messages: 1")


@needs_telnet
def test_telnet_refused_without_handler_exits_3_with_telnets_own_words(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text(f"connect: {{transport: telnet, port: '{free_port()}'}}\nsteps:\n  - expect: Manager\n")
    result = run_cli("run", str(script))
    assert result.returncode == 3
    assert "telnet: Unable to connect to remote host: Connection refused" in result.stderr


@needs_telnet
def test_telnet_chatter_is_not_seen_by_the_script(sim: tuple[str, int], tmp_path: Path) -> None:
    host, port = sim
    script = tmp_path / "s.yaml"
    script.write_text(
        "connect: {}\nsteps:\n"
        "  - expect: '(?s)^(?P<first>[^\\r]*)\\r\\n'\n"
        "  - print: 'first line: ${first}'\n"
        '  - send: "Action: Logoff\\n\\n"\n'
        "  - expect: 'Goodbye'\n"
        "  - expect:\n      - re: 'Connection closed'\n        then:\n          - fail: saw telnet's trailer\n"
        "      - eof:\n          - print: clean end of file\n"
    )
    for scheme in ("tcp", "telnet"):
        result = run_cli("run", str(script), "--target", f"{scheme}://{host}:{port}")
        assert (result.returncode, result.stdout) == (
            0,
            "first line: Asterisk Call Manager/11.0.0\nclean end of file\n",
        ), scheme


ECHO_PROBE = (
    "steps:\n"
    '  - send: "Action: Login\\nUsername: admin\\nSecret: x\\n\\n"\n'
    "  - expect:\n"
    "      - re: 'Secret: x'\n        then:\n          - fail: matched our own echo\n"
    "      - re: 'Response: Error'\n        then:\n          - print: no echo\n"
)


@needs_telnet
def test_telnet_does_not_echo_what_we_send_into_what_we_match(sim: tuple[str, int], tmp_path: Path) -> None:
    host, port = sim
    script = tmp_path / "echo.yaml"
    script.write_text("connect: {transport: telnet}\n" + ECHO_PROBE)
    result = run_cli("run", str(script), "--target", f"telnet://{host}:{port}")
    assert (result.returncode, result.stdout) == (0, "no echo\n"), result.stderr


@needs_telnet
def test_telnet_sends_each_newline_as_crlf_exactly_once(tmp_path: Path) -> None:
    received: list[bytes] = []
    record = recorder(received, until=b"end", greeting=b"hello\r\n")

    script = tmp_path / "s.yaml"
    script.write_text('connect: {}\nsteps:\n  - expect: hello\n  - send: "a\\nb\\r\\n\\nend\\n"\n  - sleep: 0.3\n')
    with tcp_peer(record) as (host, port):
        result = run_cli("run", str(script), "--target", f"telnet://{host}:{port}")
    assert result.returncode == 0, result.stderr
    assert received == [b"a\r\nb\r\n\r\nend\r\n"]


# -- spawn: any command on a pty -------------------------------------------------------------

LINE_SERVER = (
    "import sys\n"
    "print('READY', flush=True)\n"
    "for line in sys.stdin:\n"
    "    word = line.strip()\n"
    "    if word == 'quit':\n"
    "        print('BYE', flush=True); break\n"
    "    print('GOT ' + word.upper(), flush=True)\n"
)


def spawn_script(extra_steps: str, command: str = "") -> str:
    command = command or f"[{sys.executable!r}, -u, -c, {json.dumps(LINE_SERVER)}]"
    return f"connect:\n  transport: spawn\n  command: {command}\n  timeout: 5\nsteps:\n{extra_steps}"


OPENED: list[object] = []  # transports stay referenced, so only close() can end their child


def keeping(target: Target) -> object:
    from amiscript.frontend import open_transport

    transport = open_transport(target)
    OPENED.append(transport)
    return transport


def run_in_process(text: str, **kwargs: object) -> tuple[int, Recorder]:
    output = Recorder()
    code = Interpreter(load_script_text(text, "t.yaml"), keeping, output, **kwargs).run()  # type: ignore[arg-type]
    return code, output


def test_spawn_runs_a_line_protocol_over_a_pty() -> None:
    code, output = run_in_process(
        spawn_script(
            "  - expect: 'READY\\r?\\n'\n"
            '  - send: "hello\\n"\n'
            "  - expect: 'GOT (?P<word>\\w+)'\n"
            "  - print: ${word}\n"
            '  - send: "quit\\n"\n'
            "  - expect: BYE\n"
            "  - expect:\n      - eof:\n          - print: ended\n"
        )
    )
    assert (code, output.printed) == (0, ["HELLO", "ended"])


def test_spawn_pty_does_not_echo_what_we_send() -> None:
    code, output = run_in_process(
        spawn_script(
            "  - expect: READY\n"
            '  - send: "Secret: x\\n"\n'
            "  - expect:\n      - re: 'Secret: x'\n        then:\n          - fail: echoed\n"
            "      - re: 'GOT SECRET: X'\n        then:\n          - print: no echo\n"
        )
    )
    assert (code, output.printed) == (0, ["no echo"])


def test_spawn_passes_bytes_unchanged_in_both_directions() -> None:
    echo = "import os\nwhile True:\n    data = os.read(0, 100)\n    if not data: break\n    os.write(1, data)\n"
    code, output = run_in_process(
        spawn_script(
            "  - send: \"one\\r\\ntwo\\n\"\n    newline: lf\n  - expect: 'one\\r\\ntwo\\n'\n  - print: exact\n",
            command=f"[{sys.executable!r}, -c, {json.dumps(echo)}]",
        )
    )
    assert (code, output.printed) == (0, ["exact"])


def test_spawn_env_and_cwd_reach_the_program(tmp_path: Path) -> None:
    show = "import os; print(os.environ['AMI_GREETING'], os.getcwd(), flush=True)"
    text = (
        "connect:\n  transport: spawn\n"
        f"  command: [{sys.executable!r}, -c, {json.dumps(show)}]\n"
        f"  env: {{AMI_GREETING: hi}}\n  cwd: {str(tmp_path)!r}\n"
        "steps:\n  - expect: 'hi (?P<dir>\\S+)'\n  - print: ${dir}\n"
    )
    code, output = run_in_process(text)
    assert (code, output.printed) == (0, [str(tmp_path)])


def test_a_command_that_is_not_installed_runs_the_eof_handler_or_exits_3() -> None:
    missing = "[amiscript-no-such-program-xyz, --flag]"
    code, output = run_in_process(
        "on:\n  eof:\n    - print: cannot start\n    - exit: 1\n" + spawn_script("  - expect: x\n", command=missing)
    )
    assert (code, output.printed) == (1, ["cannot start"])
    with pytest.raises(ConnectFailed, match="'amiscript-no-such-program-xyz' is not installed"):
        run_in_process(spawn_script("  - expect: x\n", command=missing))


def test_a_command_that_exits_at_once_reports_its_last_words_with_exit_3() -> None:
    dying = "[sh, -c, 'echo nc: connect to pbx port 5038 failed: Connection refused >&2; exit 1']"
    with pytest.raises(ConnectionLost) as failure:
        run_in_process(spawn_script("  - expect: Manager\n", command=dying))
    assert failure.value.exit_code == 3
    assert "exited with status 1: nc: connect to pbx port 5038 failed: Connection refused" in str(failure.value)


def test_a_command_that_ends_cleanly_is_an_ordinary_end_of_file() -> None:
    with pytest.raises(RunFailed, match="connection closed by the peer"):
        run_in_process(spawn_script("  - expect: Manager\n", command="[sh, -c, 'echo hi']"))


# -- children are always reaped --------------------------------------------------------------


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry.name))
    return found


def my_children() -> list[tuple[int, str]]:
    """This process's children (any state, zombies included)."""
    me = os.getpid()
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == me:
                children.append((int(entry.name), fields[0]))
    return children


SLEEPER = f"[{sys.executable!r}, -c, 'import sys, time; print(\"READY\", flush=True); time.sleep(60)', MARKER]"


@pytest.mark.parametrize(
    ("steps", "outcome"),
    [
        ("  - expect: READY\n", 0),
        ("  - expect: READY\n  - fail: stop here\n", 1),
        ("  - expect: never\n    timeout: 0.3\n", RunFailed),
    ],
)
def test_the_child_is_reaped_after_success_failure_and_timeout(steps: str, outcome: object) -> None:
    marker = f"amiscript-test-{uuid.uuid4().hex}"
    text = spawn_script(steps, command=SLEEPER.replace("MARKER", marker))
    before = my_children()
    if isinstance(outcome, int):
        assert run_in_process(text)[0] == outcome
    else:
        with pytest.raises(outcome):  # type: ignore[call-overload]
            run_in_process(text)
    assert processes_with(marker) == []
    assert my_children() == before


STUBBORN = {
    "ignores hangup": "signal.signal(signal.SIGHUP, signal.SIG_IGN)",
    "ignores hangup and SIGTERM": "[signal.signal(s, signal.SIG_IGN) for s in (signal.SIGHUP, signal.SIGTERM)]",
    "stops itself": "print('READY', flush=True); os.kill(os.getpid(), signal.SIGSTOP)",
}


@pytest.mark.parametrize("behaviour", list(STUBBORN))
def test_a_child_that_lingers_after_its_terminal_closes_is_still_reaped(behaviour: str) -> None:
    marker = f"amiscript-test-{uuid.uuid4().hex}"
    code = f"import os, signal, time; {STUBBORN[behaviour]}; print('READY', flush=True); time.sleep(60)"
    text = spawn_script("  - expect: READY\n", command=f"[{sys.executable!r}, -c, {code!r}, {marker}]")
    before = my_children()
    assert run_in_process(text)[0] == 0
    assert processes_with(marker) == []
    assert my_children() == before


def interrupt_and_check_reaped(argv: list[str], marker: str, signum: int, code: int, said: bytes) -> None:
    """Start amiscript, wait for its child (found by ``marker``), signal it, check nothing is left."""
    process = subprocess.Popen([*AMISCRIPT, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_with(marker), "the child never started"
        time.sleep(0.3)
        process.send_signal(signum)
        assert process.wait(10) == code
        assert said in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.1)
    assert processes_with(marker) == []


@pytest.mark.parametrize(
    ("signum", "code", "said"), [(signal.SIGINT, 130, b"interrupted"), (signal.SIGTERM, 143, b"terminated")]
)
def test_ctrl_c_or_sigterm_ends_the_run_and_leaves_no_child(
    tmp_path: Path, signum: int, code: int, said: bytes
) -> None:
    marker = f"amiscript-test-{uuid.uuid4().hex}"
    script = tmp_path / "s.yaml"
    script.write_text(spawn_script("  - expect: never\n    timeout: 60\n", command=SLEEPER.replace("MARKER", marker)))
    interrupt_and_check_reaped(["run", str(script)], marker, signum, code, said)


@needs_telnet
def test_ctrl_c_during_a_telnet_run_leaves_no_telnet_behind(tmp_path: Path) -> None:
    def silent(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        time.sleep(10)

    script = tmp_path / "s.yaml"
    script.write_text("connect: {transport: telnet}\nsteps:\n  - expect: never\n    timeout: 60\n")
    with tcp_peer(silent) as (host, port):
        marker = f"--\0{host}\0{port}\0"  # telnet's own command line: telnet -E -- HOST PORT
        argv = ["run", str(script), "--target", f"telnet://{host}:{port}"]
        interrupt_and_check_reaped(argv, marker, signal.SIGINT, 130, b"interrupted")


@needs_telnet
def test_telnet_sends_each_packet_as_one_segment(tmp_path: Path) -> None:
    """Line by line, telnet would send each line apart and wait out a delayed ACK (up to 40 ms)
    before the second line of every packet after the first exchange."""
    chunks: list[list[bytes]] = []

    def answer_twice(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        conn.settimeout(5)
        for _ in range(2):
            arrived = [conn.recv(65536)]
            while not arrived[-1].endswith(b"\r\n\r\n") and arrived[-1]:
                arrived.append(conn.recv(65536))
            chunks.append(arrived)
            conn.sendall(b"Response: Success\r\n\r\n")

    send = '  - send: "Action: MailboxCount\\nMailbox: 123@default\\nActionID: 7\\n\\n"\n  - expect: Success\n'
    script = tmp_path / "s.yaml"
    script.write_text("connect: {}\nsteps:\n  - expect: Manager\n" + send * 2)
    with tcp_peer(answer_twice) as (host, port):
        result = run_cli("run", str(script), "--target", f"telnet://{host}:{port}")
    assert result.returncode == 0, result.stderr
    whole = b"Action: MailboxCount\r\nMailbox: 123@default\r\nActionID: 7\r\n\r\n"
    assert chunks == [[whole], [whole]]


@needs_telnet
def test_a_long_line_goes_through_telnet_whole(tmp_path: Path) -> None:
    received: list[bytes] = []
    line = "".join(chr(65 + i % 26) for i in range(100_000))
    script = tmp_path / "s.yaml"
    script.write_text(
        'vars: {t: x}\nconnect: {}\nsteps:\n  - expect: hello\n  - send: "${t}\\nEND\\n"\n  - sleep: 0.5\n'
    )
    with tcp_peer(recorder(received, until=b"END\r\n", greeting=b"hello\r\n")) as (host, port):
        result = run_cli("run", str(script), "--target", f"telnet://{host}:{port}", "--var", f"t={line}")
    assert result.returncode == 0, result.stderr
    assert received == [(line + "\r\nEND\r\n").encode()]


@needs_telnet
def test_utf8_text_goes_through_telnet_unchanged_and_cannot_press_telnet_keys(tmp_path: Path) -> None:
    received: list[bytes] = []
    text = "".join(chr(code) for code in range(0xA0, 0x800) if 0x85 not in chr(code).encode())

    record = recorder(received, until=b"END", greeting=b"hello\r\n")

    script = tmp_path / "s.yaml"
    script.write_text(
        'vars: {t: x}\nconnect: {}\nsteps:\n  - expect: hello\n  - send: "${t}END\\n"\n  - sleep: 0.5\n',
        encoding="utf-8",
    )
    with tcp_peer(record) as (host, port):
        result = run_cli("run", str(script), "--target", f"telnet://{host}:{port}", "--var", f"t={text}")
    assert result.returncode == 0, result.stderr
    assert received == [(text + "END\r\n").encode()]
    received.clear()
    with tcp_peer(record) as (host, port):  # U+0145 is c5 85 in UTF-8: 0x85 is telnet's fixed echo key
        refused = run_cli("run", str(script), "--target", f"telnet://{host}:{port}", "--var", "t=\u0145")
    assert refused.returncode == 2
    assert "cannot send the byte 0x85 through telnet's terminal (nothing was sent)" in refused.stderr


@needs_telnet
def test_a_host_cannot_pass_options_to_telnet(tmp_path: Path) -> None:
    trap = tmp_path / "trace"
    script = tmp_path / "s.yaml"
    script.write_text(
        "vars: {host: x}\nconnect: {transport: telnet, host: '${host}', timeout: 3}\nsteps:\n  - expect: x\n"
    )
    result = run_cli("run", str(script), "--var", f"host=-n{trap}")
    assert result.returncode == 3
    assert not trap.exists()


@needs_telnet
def test_telnets_closing_line_never_reaches_the_script_and_a_servers_own_never_ends_it(tmp_path: Path) -> None:
    def goodbye_without_newline(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\nGoodbye")

    ends = tmp_path / "ends.yaml"
    ends.write_text(
        "connect: {}\nsteps:\n  - expect: Manager\n"
        "  - expect:\n      - re: 'Connection closed'\n        then:\n          - fail: leaked\n"
        "      - eof:\n          - print: clean end\n"
    )
    with tcp_peer(goodbye_without_newline) as (host, port):
        for _ in range(5):
            result = run_cli("run", str(ends), "--target", f"telnet://{host}:{port}")
            assert (result.returncode, result.stdout) == (0, "clean end\n")

    def says_it_but_stays(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        time.sleep(0.3)
        conn.sendall(b"Connection closed by foreign host.\r\n")
        time.sleep(0.5)
        conn.sendall(b"still here\r\n")
        time.sleep(2)

    stays = tmp_path / "stays.yaml"
    stays.write_text("connect: {}\nsteps:\n  - expect: 'foreign host\\.\\r\\nstill here'\n  - print: matched\n")
    with tcp_peer(says_it_but_stays) as (host, port):
        result = run_cli("run", str(stays), "--target", f"telnet://{host}:{port}")
    assert (result.returncode, result.stdout) == (0, "matched\n"), result.stderr


def test_a_program_that_stops_reading_cannot_hang_a_send_past_its_timeout() -> None:
    """select() says there is room, not how much: a blocking write of more waited in the kernel
    for ever. The send has one deadline, kept by writing without blocking."""
    silent = "[sh, -c, 'echo READY; exec sleep 60']"
    text = spawn_script(
        f"  - expect: READY\n  - set: {{big: '{'A' * 100_000}'}}\n  - send: \"${{big}}\\n\"\n", command=silent
    ).replace("  timeout: 5\n", "  timeout: 5\ntimeout: 1\n")
    started = time.monotonic()
    with pytest.raises(ConnectionLost, match="the program did not read its input within 1 s"):
        run_in_process(text)
    assert time.monotonic() - started < 5  # the deadline (1 s) and the reaping, not the 60 s sleep


@needs_telnet
def test_telnet_refuses_0xff_which_it_would_take_for_its_interrupt_key(tmp_path: Path) -> None:
    received: list[bytes] = []
    script = tmp_path / "s.yaml"
    script.write_text('vars: {t: x}\nconnect: {}\nsteps:\n  - expect: hello\n  - send: "${t}END\\n"\n')
    with tcp_peer(recorder(received, until=b"END", greeting=b"hello\r\n")) as (host, port):
        argv = [*AMISCRIPT, "run", str(script), "--target", f"telnet://{host}:{port}"]
        result = subprocess.run([*map(os.fsencode, argv), b"--var", b"t=caf\xff"], capture_output=True, timeout=60)
    assert result.returncode == 2
    assert b"cannot send the byte 0xff through telnet's terminal (nothing was sent)" in result.stderr


@needs_telnet
def test_telnet_switching_back_to_line_mode_during_a_long_send_stops_the_run(tmp_path: Path) -> None:
    """A server that negotiates telnet options makes telnet rebuild its terminal mode; in line
    mode the terminal would cut the long line short and the run would pass: it must not."""

    def negotiating(conn: socket.socket) -> None:
        conn.sendall(b"hello\r\n")
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(b"\xff\xfb\x01")  # IAC WILL ECHO, in the middle of the client's send
            while conn.recv(65536):
                pass

    doubled = "  - set: {t: '${t}${t}'}\n" * 10  # a line of 1,024,000 bytes
    script = tmp_path / "s.yaml"
    script.write_text(
        f'vars: {{t: {"A" * 1000}}}\nconnect: {{}}\nsteps:\n{doubled}  - expect: hello\n  - send: "${{t}}\\nEND\\n"\n'
    )
    with tcp_peer(negotiating) as (host, port):
        result = run_cli("run", str(script), "--target", f"telnet://{host}:{port}")
    assert result.returncode == 3, result.stderr
    assert "telnet switched its terminal back to line mode during the send" in result.stderr


def test_a_background_job_that_ignores_sighup_does_not_outlive_the_run() -> None:
    marker = f"amiscript-test-{uuid.uuid4().hex}"
    # the shell ignores SIGHUP and leaves a job behind that does too (it inherits the trap)
    command = (
        f'[sh, -c, \'trap "" HUP; {sys.executable} -c "import time; time.sleep(60)" {marker} & echo READY; wait\']'
    )
    assert run_in_process(spawn_script("  - expect: READY\n", command=command))[0] == 0
    assert processes_with(marker) == []
