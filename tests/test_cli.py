"""The command line, as a user meets it: real subprocesses, real sockets, the real simulator."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from amiscript.cli import main

from .helpers import AMISCRIPT
from .peers import free_port, read_until, tcp_peer

ROOT = Path(__file__).resolve().parents[1]
VMCOUNT = str(ROOT / "scripts" / "vmcount.yaml")
BOOK_SESSION = "Mailbox: 123@default\nConnected.\nLogged in.\nNew messages: 0\nOld messages: 0\n"


def amiscript(*args: str, timeout: float = 30, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMISCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout


def test_vmcount_prints_the_books_session_against_the_simulator(sim: tuple[str, int]) -> None:
    host, port = sim
    result = amiscript("run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"tcp://{host}:{port}")
    assert (result.returncode, result.stdout, result.stderr) == (0, BOOK_SESSION, "")


def test_vmcount_with_simulate_flag_needs_no_server() -> None:
    result = amiscript("run", VMCOUNT, "--var", "mailbox=123@default", "--simulate")
    assert (result.returncode, result.stdout, result.stderr) == (0, BOOK_SESSION, "")


def test_vmcount_counts_other_mailboxes_via_host_and_port_vars(sim: tuple[str, int]) -> None:
    host, port = sim
    result = amiscript("run", VMCOUNT, "--var", "mailbox=124@default", "--var", f"host={host}", "--var", f"port={port}")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-2:] == ["New messages: 2", "Old messages: 1"]


def test_vmcount_with_a_wrong_secret_prints_login_failed_and_exits_1(sim: tuple[str, int]) -> None:
    host, port = sim
    result = amiscript(
        "run", VMCOUNT, "--var", "mailbox=123@default", "--var", "secret=wrong", "--target", f"tcp://{host}:{port}"
    )
    assert (result.returncode, result.stdout) == (1, "Mailbox: 123@default\nConnected.\nLogin failed.\n")
    no_traceback(result)


def test_vmcount_with_nothing_listening_prints_failed_to_connect_and_exits_1() -> None:
    result = amiscript("run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"tcp://127.0.0.1:{free_port()}")
    assert (result.returncode, result.stdout) == (1, "Mailbox: 123@default\nFailed to connect.\n")
    no_traceback(result)


def test_verbose_shows_the_conversation_on_stderr_with_the_secret_masked(sim: tuple[str, int]) -> None:
    host, port = sim
    result = amiscript("run", VMCOUNT, "-v", "--var", "mailbox=123@default", "--target", f"tcp://{host}:{port}")
    assert result.returncode == 0 and result.stdout == BOOK_SESSION
    assert ">> Secret: ****" in result.stderr
    assert "<< Asterisk Call Manager/11.0.0" in result.stderr
    assert "<< NewMessages: 0" in result.stderr
    assert "secret5" not in result.stderr + result.stdout


def test_vars_file_supplies_values_and_var_overrides_it(tmp_path: Path, sim: tuple[str, int]) -> None:
    host, port = sim
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text(f"mailbox: 124@default\nhost: {host}\nport: '{port}'\n")
    result = amiscript("run", VMCOUNT, "--vars-file", str(vars_file), "--var", "mailbox=123@default")
    assert (result.returncode, result.stdout) == (0, BOOK_SESSION)


def test_secret_from_the_environment_never_needs_the_command_line(tmp_path: Path, sim: tuple[str, int]) -> None:
    host, port = sim
    script = tmp_path / "login.yaml"
    script.write_text(
        "vars:\n  secret: {default: '${env:AMI_TEST_SECRET}', secret: true}\n"
        f"connect: {{host: {host}, port: '{port}'}}\n"
        "steps:\n"
        "  - expect: Manager\n"
        '  - send: "Action: Login\\nUsername: admin\\nSecret: ${secret}\\n\\n"\n'
        "  - expect: 'Response: Success'\n"
        "  - print: ok ${secret}\n"
    )
    result = amiscript("run", str(script), "-v", env={"AMI_TEST_SECRET": "secret5"})
    assert (result.returncode, result.stdout) == (0, "ok ****\n")
    assert "secret5" not in result.stderr


def test_timeout_option_overrides_the_default_and_the_failure_names_the_step(tmp_path: Path) -> None:
    def silent_after_banner(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        read_until(conn, b"never", 3.0)

    script = tmp_path / "wait.yaml"
    script.write_text("connect: {}\nsteps:\n  - expect: 'Response: Success'\n")
    with tcp_peer(silent_after_banner) as (host, port):
        started = time.monotonic()
        result = amiscript("run", str(script), "--timeout", "0.5", "--target", f"tcp://{host}:{port}")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr.startswith(f"amiscript: error: {script}:3:5: timeout after 0.5 s waiting for")
    assert 'last received: "Asterisk Call Manager/11.0.0\\r\\n"' in result.stderr
    assert elapsed < 10
    no_traceback(result)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("steps:\n  - print: [oops\n", ":2:12: YAML syntax error while parsing a flow sequence"),
        ("steps:\n  - prnt: hi\n", ":2:5: unknown step 'prnt' (did you mean 'print'?)"),
        ("timeout: x\nsteps: []\n", ":1:10: timeout must be a number"),
        ("steps:\n  - expect: 'a(b'\n", ":2:17: invalid regex"),
        ("steps:\n  - print: !!python/object/apply:os.system [echo hacked]\n", ":2:12: YAML tag"),
        ("steps:\n  - print: ${nobody}\n", ":2:12: undeclared variable 'nobody'"),
        ("", ": the file is empty"),
    ],
)
def test_script_mistakes_exit_2_with_one_line_naming_file_line_and_column(
    tmp_path: Path, content: str, expected: str
) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(content)
    result = amiscript("run", str(script))
    assert result.returncode == 2
    assert result.stderr.startswith(f"amiscript: error: {script}{expected}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hacked" not in result.stdout
    no_traceback(result)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such-file.yaml"], "no-such-file.yaml: no such file"),
        (["run", VMCOUNT], "variable 'mailbox' is required (the mailbox to query"),
        (["run", VMCOUNT, "--var", "mailbox"], "--var number 1 has no '=': write --var NAME=VALUE, such as"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--var", "=x"], "--var number 2 has no name before '='"),
        (["run", VMCOUNT, "--var", "mailbx=1"], "'mailbx' was given (--var or --vars-file) but"),
        (
            ["run", VMCOUNT, "--var", "mailbox=1", "--target", "http://x:1"],
            "expected tcp://HOST:PORT, tls://HOST[:PORT] or telnet://",
        ),
        (["run", VMCOUNT, "--var", "mailbox=1", "--target", "tcp://x:99999"], "port must be a number"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--target", "tcp://[::1"], "not a valid URL (an IPv6 address goes in"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--target", "tcp://[::1]:70000"], "port must be a number"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--target", "tcp://pbx:ami"], "port must be a number"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--target", "tcp://:5038"], "expected tcp://HOST:PORT"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--target", "tcp://pb x:5038"], "a URL has no spaces"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--target", "tcp://pbx:5038?tls=1"], "expected tcp://HOST:PORT"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--timeout", "0"], "--timeout must be greater than 0"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--simulate", "--target", "ftp://"], "expected tcp://"),
        (["run", VMCOUNT, "--var", "mailbox=1", "--simulate", "--target", "tcp://pbx:1"], "give only the scheme"),
        (["run", VMCOUNT, "--vars-file", "missing.yaml"], "missing.yaml: no such file"),
        (["simulate", "--port", "70000"], "simulate: --port must be a number from 0 to 65535, not 70000"),
        (["simulate", "--port", "-1"], "simulate: --port must be a number from 0 to 65535, not -1"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_mistakes_exit_2_with_one_clear_line(args: list[str], expected: str) -> None:
    result = amiscript(*args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.startswith("amiscript")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    no_traceback(result)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--bogus"], "unrecognized arguments: --bogus (see `amiscript --help`)"),
        (["run", VMCOUNT, "--bogus"], "unrecognized arguments: --bogus (see `amiscript --help`)"),
        (
            ["run", VMCOUNT, "--timeout", "abc"],
            "run: argument --timeout: invalid float value: 'abc' (see `amiscript run --help`)",
        ),
        (["check"], "check: the following arguments are required: SCRIPT (see `amiscript check --help`)"),
        (
            ["simulate", "--port", "x"],
            "simulate: argument --port: invalid int value: 'x' (see `amiscript simulate --help`)",
        ),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    ],
)
def test_a_command_line_mistake_names_amiscript_once_and_the_command(args: list[str], line: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(args, out, err) == 2
    assert err.getvalue().startswith(f"amiscript: error: {line}"), err.getvalue()
    assert err.getvalue().count("\n") == 1 and out.getvalue() == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, ": a directory, not a vars file (check the path)"),
        ("", ": the file is empty (a vars file is a mapping of names to values, such as `mailbox: 123@default`)"),
        ("# nothing yet\n", ": the file is empty (a vars file is a mapping of names to values"),
    ],
)
def test_a_vars_file_mistake_talks_about_the_vars_file_not_a_script(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    given = tmp_path / "vars.yaml"
    if content is None:
        given.mkdir()
    else:
        given.write_text(content)
    result = amiscript("run", VMCOUNT, "--vars-file", str(given))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"amiscript: error: {given}{expected}")
    assert "script" not in result.stderr.removeprefix("amiscript")
    no_traceback(result)


def test_a_malformed_inventory_url_is_one_line_at_its_file_and_line(tmp_path: Path) -> None:
    inventory = tmp_path / "pbxs.yaml"
    inventory.write_text("targets:\n  - name: east\n    url: 'tcp://[::1'\n")
    result = amiscript("run", VMCOUNT, "--var", "mailbox=1", "--inventory", str(inventory))
    assert result.returncode == 2
    assert (
        result.stderr
        == f"amiscript: error: {inventory}:3:10: url 'tcp://[::1': not a valid URL (an IPv6 address goes in brackets: tcp://[::1]:5038)\n"
    )


def test_a_vars_file_reads_env_and_file_values_and_names_the_line_of_one_missing(
    tmp_path: Path, sim: tuple[str, int]
) -> None:
    host, port = sim
    (tmp_path / "mailbox").write_text("123@default\n")
    good = tmp_path / "good.yaml"
    good.write_text(f"mailbox: '${{file:{tmp_path / 'mailbox'}}}'\nhost: ${{env:AMI_TEST_HOST}}\nport: '{port}'\n")
    result = amiscript("run", VMCOUNT, "--vars-file", str(good), env={"AMI_TEST_HOST": host})
    assert (result.returncode, result.stdout) == (0, BOOK_SESSION), result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("mailbox: 123@default\nhost: ${env:AMI_TEST_UNSET_HOST}\n")
    result = amiscript("run", VMCOUNT, "--vars-file", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"amiscript: error: {bad}:2:7: environment variable AMI_TEST_UNSET_HOST is not set")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_injection_through_a_var_is_refused_before_sending(sim: tuple[str, int]) -> None:
    host, port = sim
    result = amiscript("run", VMCOUNT, "--var", "mailbox=123\r\nAction: Originate", "--target", f"tcp://{host}:{port}")
    assert result.returncode == 2
    assert "${mailbox} contains a carriage return (CR); refusing" in result.stderr
    no_traceback(result)


def peer_run(handler, script_text: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    script = tmp_path / "s.yaml"
    script.write_text(script_text)
    with tcp_peer(handler) as (host, port):
        return amiscript("run", str(script), "--target", f"tcp://{host}:{port}", *extra)


def test_peer_closing_mid_packet_fails_with_exit_1_not_a_hang(tmp_path: Path) -> None:
    def close_mid_packet(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\nResponse: Succ")

    result = peer_run(close_mid_packet, "connect: {}\nsteps:\n  - expect: 'Response: Success'\n", tmp_path)
    assert result.returncode == 1
    assert "connection closed by the peer while waiting for /Response: Success/" in result.stderr
    assert 'Response: Succ"' in result.stderr
    no_traceback(result)


def test_bytes_that_are_not_utf8_are_matched_and_printed_safely(tmp_path: Path) -> None:
    def binary(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\nName: \xff\xfe\x00J\xc3\xbcrgen\r\n")
        read_until(conn, b"never", 1.0)

    result = peer_run(binary, "connect: {}\nsteps:\n  - expect: 'Name: (?P<n>[^\\r]*)\\r'\n  - print: ${n}\n", tmp_path)
    assert result.returncode == 0
    assert result.stdout == "\ufffd\ufffd\x00Jürgen\n"
    no_traceback(result)


def test_peer_that_never_answers_times_out_within_the_deadline(tmp_path: Path) -> None:
    def mute(conn: socket.socket) -> None:
        read_until(conn, b"never", 5.0)

    started = time.monotonic()
    result = peer_run(mute, "connect: {}\ntimeout: 0.5\nsteps:\n  - expect: Manager\n", tmp_path)
    assert result.returncode == 1
    assert "timeout after 0.5 s waiting for /Manager/" in result.stderr
    assert 'last received: ""' in result.stderr
    assert time.monotonic() - started < 10


def test_connection_reset_without_handler_exits_3_and_with_one_runs_the_eof_handler(tmp_path: Path) -> None:
    def reset(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        read_until(conn, b"\r\n\r\n")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    steps = 'steps:\n  - expect: Manager\n  - send: "Action: Ping\\n\\n"\n  - expect: Pong\n'
    result = peer_run(reset, "connect: {}\n" + steps, tmp_path)
    assert result.returncode == 3
    assert "Connection reset by peer" in result.stderr
    no_traceback(result)
    handled = peer_run(reset, "connect: {}\non:\n  eof:\n    - fail: PBX went away.\n" + steps, tmp_path)
    assert (handled.returncode, handled.stdout) == (1, "PBX went away.\n")


def test_host_not_found_without_handler_exits_3(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text("connect: {host: no-such-host.invalid}\nsteps:\n  - expect: Manager\n")
    result = amiscript("run", str(script))
    assert result.returncode == 3
    assert "tcp://no-such-host.invalid:5038: host not found" in result.stderr
    assert result.stderr.startswith(f"amiscript: error: {script}:3:5:")
    no_traceback(result)


def test_check_reports_every_problem_of_every_file_then_a_summary(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("timeot: 5\nsteps:\n  - sned: x\n  - expect: '(a'\n")
    gone = tmp_path / "gone.yaml"
    result = amiscript("check", VMCOUNT, str(bad), str(gone))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{bad}:1:1: error: unknown key 'timeot' in the script (did you mean 'timeout'?)",
        f"{bad}:3:5: error: unknown step 'sned' (did you mean 'send'?)",
        f"{bad}:4:16: error: invalid regex '(a': missing ) at position 2 (a ( [ {{ + * ? \\ or | that should match "
        "itself needs a backslash before it, e.g. \\()",
        f"{gone}: error: no such file (check the path)",
        "3 scripts checked: 4 errors, 0 warnings",
    ]
    assert result.stderr == ""
    assert amiscript("check", VMCOUNT).returncode == 0


def test_check_warnings_do_not_fail_and_json_is_for_tools(tmp_path: Path) -> None:
    script = tmp_path / "warn.yaml"
    script.write_text(
        "vars: {pw: {default: x, secret: true}}\nconnect: {}\nsteps:\n"
        "  - expect: 'a(?P<unused>b)'\n  - print: ${pw}\n  - exit: 0\n  - print: never\n"
    )
    text = amiscript("check", str(script))
    assert text.returncode == 0
    assert text.stdout.splitlines() == [
        f"{script}:4:13: warning: the capture 'unused' is never used (use it as ${{unused}}, or drop the group's name)",
        f"{script}:5:5: warning: prints the secret variable 'pw' (it will show as ****) "
        "(print something else; a secret never appears in output)",
        f"{script}:7:5: warning: this step can never run: the `exit` before it always stops the run "
        "(remove it, or move the fail/exit into a `then:` or handler)",
        "1 script checked: 0 errors, 3 warnings",
    ]
    report = json.loads(amiscript("check", "--format", "json", str(script)).stdout)
    assert report["errors"] == 0 and report["warnings"] == 3
    assert report["diagnostics"][0] == {
        "file": str(script),
        "line": 4,
        "column": 13,
        "severity": "warning",
        "message": "the capture 'unused' is never used",
        "hint": "use it as ${unused}, or drop the group's name",
    }


def test_help_explains_commands_and_exit_codes() -> None:
    top = amiscript("--help")
    assert top.returncode == 0 and "run" in top.stdout and "simulate" in top.stdout and "check" in top.stdout
    run_help = amiscript("run", "--help")
    assert run_help.returncode == 0
    expected = ("--var NAME=VALUE", "--target URL", "--simulate", "--timeout SECONDS", "exit status", "3  connection")
    for words in expected:
        assert words in run_help.stdout


def test_main_can_be_called_in_process_without_exiting(sim: tuple[str, int]) -> None:
    host, port = sim
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"tcp://{host}:{port}"], out, err)
    assert (code, out.getvalue(), err.getvalue()) == (0, BOOK_SESSION, "")


def test_simulate_command_listens_prints_its_address_and_stops_on_sigint() -> None:
    process = subprocess.Popen(
        [*AMISCRIPT, "simulate", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        result = amiscript("run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"tcp://127.0.0.1:{port}")
        assert (result.returncode, result.stdout) == (0, BOOK_SESSION)
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_failed_run_shows_the_failing_steps_yaml_with_a_marker_and_the_answer(tmp_path: Path) -> None:
    script = tmp_path / "fail.yaml"
    script.write_text(
        "vars:\n  secret: {default: secret5, secret: true}\nconnect: {}\nsteps:\n"
        '  - login: {username: admin, secret: "${secret}"}\n'
        "  - action:\n      Action: MailboxCount\n      Mailbox: 124@default\n"
        "    expect:\n      NewMessages: '5'\n"
    )
    result = amiscript("run", str(script), "--simulate")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"amiscript: error: {script}:6:5: action MailboxCount failed: NewMessages is '2', expected '5'"
    assert lines[1:7] == [
        "    4 | steps:",
        '    5 |   - login: {username: admin, secret: "${secret}"}',
        "  > 6 |   - action:",
        "      |     ^",
        "    7 |       Action: MailboxCount",
        "    8 |       Mailbox: 124@default",
    ]
    assert lines[7] == "  the answer was:"
    assert "    NewMessages: 2" in lines
    assert "secret5" not in result.stderr


def test_the_excerpt_masks_a_secret_written_in_the_script(tmp_path: Path) -> None:
    script = tmp_path / "fail.yaml"
    script.write_text(
        "vars:\n  pw: {default: hunter2-secret, secret: true}\nconnect: {}\ntimeout: 0.2\nsteps:\n"
        '  - send: "Secret: hunter2-secret\\n"\n  - expect: never\n'
    )
    result = amiscript("run", str(script), "--simulate")
    assert result.returncode == 1
    assert '    6 |   - send: "Secret: ****\\n"' in result.stderr
    assert "hunter2" not in result.stderr


def test_new_writes_a_starter_that_passes_check_and_runs_against_the_simulator(tmp_path: Path) -> None:
    result = subprocess.run([*AMISCRIPT, "new", "mycheck"], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert (result.returncode, result.stdout) == (0, "wrote mycheck.yaml; try: amiscript run mycheck.yaml --simulate\n")
    script = tmp_path / "mycheck.yaml"
    assert amiscript("check", str(script)).stdout == "1 script checked: 0 errors, 0 warnings\n"
    run = amiscript("run", str(script), "--simulate")
    assert (run.returncode, run.stdout) == (0, "OK: 124@default has 2 new and 1 old messages\n")
    again = subprocess.run([*AMISCRIPT, "new", "mycheck"], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert again.returncode == 2 and "exists" in again.stderr


def test_the_starter_says_where_it_really_connected_and_why_that_failed(tmp_path: Path) -> None:
    subprocess.run([*AMISCRIPT, "new", "c"], capture_output=True, cwd=tmp_path, timeout=30, check=True)
    script, port = str(tmp_path / "c.yaml"), free_port()
    down = amiscript("run", script, "--target", f"tcp://127.0.0.1:{port}")
    assert down.returncode == 3, down.stderr
    assert f"cannot connect to tcp://127.0.0.1:{port}: connection refused" in down.stderr
    nagios = amiscript("run", script, "--target", f"tcp://127.0.0.1:{port}", "--format", "nagios")
    assert nagios.returncode == 2
    assert nagios.stdout.startswith("C CRITICAL: ") and nagios.stdout.count("CRITICAL") == 1
    assert f"cannot connect to tcp://127.0.0.1:{port}: connection refused" in nagios.stdout


def test_the_starter_in_nagios_format_says_each_status_word_once(tmp_path: Path) -> None:
    subprocess.run([*AMISCRIPT, "new", "c"], capture_output=True, cwd=tmp_path, timeout=30, check=True)
    script = str(tmp_path / "c.yaml")
    ok = amiscript("run", script, "--simulate", "--format", "nagios")
    assert (ok.returncode, ok.stdout) == (0, "C OK: 124@default has 2 new and 1 old messages\n")
    refused = amiscript("run", script, "--simulate", "--format", "nagios", "--var", "secret=wrong")
    assert (refused.returncode, refused.stdout) == (2, "C CRITICAL: login refused: Authentication failed\n")


def test_dry_run_shows_what_would_be_sent_and_awaited_without_connecting() -> None:
    port = free_port()  # nothing listens: a dry run must not try
    result = amiscript(
        "run", VMCOUNT, "--dry-run", "--var", "mailbox=123@default", "--target", f"tcp://127.0.0.1:{port}"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == f"connect tcp://127.0.0.1:{port} (when the first step sends or expects)"
    assert '38:5 print "Mailbox: 123@default"' in lines
    assert '    44:9 send "Action: Login\\r\\nUsername: admin\\r\\nSecret: ****\\r\\n\\r\\n"' in lines
    assert "  /Response:\\s*Error/" in lines
    assert "  /NewMessages:\\s*(?P<new>\\d*)/ (sets new)" in lines
    assert "secret5" not in result.stdout


def test_dry_run_of_ami_steps_shows_the_packets_and_masks_the_secret() -> None:
    result = amiscript("run", str(ROOT / "docs" / "examples" / "ami-steps.yaml"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert '  send "Action: Login\\r\\nAuthType: md5\\r\\nUsername: admin\\r\\nKey: md5(challenge+secret)\\r\\n' in (
        result.stdout
    )
    assert 'send "Action: MailboxCount\\r\\nMailbox: 124@default\\r\\nActionID: …\\r\\n\\r\\n"' in result.stdout
    assert "secret5" not in result.stdout


def test_dry_run_exits_2_when_the_script_or_its_variables_are_wrong(tmp_path: Path) -> None:
    missing = amiscript("run", VMCOUNT, "--dry-run")
    assert missing.returncode == 2 and "variable 'mailbox' is required" in missing.stderr
    injected = amiscript("run", VMCOUNT, "--dry-run", "--var", "mailbox=1\nAction: Command")
    assert injected.returncode == 2 and "contains a line feed" in injected.stderr


def test_check_hints_for_common_slips_and_a_warning_for_options_among_headers(tmp_path: Path) -> None:
    script = tmp_path / "slips.yaml"
    script.write_text(
        "vars: {n: '1'}\nsteps:\n  - action:\n    Action: Ping\n  - assert: n = 1\n  - assert: ${n} > 0\n"
        "  - expect:\n      - regex: x\n"
    )
    out = amiscript("check", str(script)).stdout
    assert f"{script}:3:12: error: action is empty (its `key: value` lines go under it" in out
    assert "(compare with == (a single = is not an operator))" in out
    assert "(write variable names without ${...} in an expression" in out
    assert "unknown key 'regex' in an expect alternative (did you mean 're'?)" in out
    quoted = tmp_path / "dq.yaml"
    quoted.write_text('steps:\n  - expect: "Response:\\s*"\n')
    assert "write regexes in single quotes" in amiscript("check", str(quoted)).stdout
    option = tmp_path / "opt.yaml"
    option.write_text("steps:\n  - action: {Action: Ping, timeout: '5'}\n")
    result = amiscript("check", str(option))
    assert result.returncode == 0
    assert "'timeout' is inside the action mapping, so it is a header, not the step's option" in result.stdout


def test_a_dry_run_of_many_scripts_takes_a_var_only_some_declare_as_the_run_does() -> None:
    checks = str(ROOT / "scripts" / "checks")
    result = amiscript("run", checks, "--var", "mailbox=1", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "declares no such variable" not in result.stderr


@pytest.mark.parametrize("given", ["S3cretWord", "=S3cretWord"])
def test_a_malformed_var_is_named_by_its_place_and_never_shown(given: str) -> None:
    # a secret typed without its name must not end up in a CI log
    result = amiscript("run", VMCOUNT, "--simulate", "--var", "mailbox=1", "--var", given)
    assert result.returncode == 2
    assert result.stderr.startswith("amiscript: error: --var number 2 has no ")
    assert "S3cretWord" not in result.stdout + result.stderr


def test_check_warns_of_a_file_value_that_cannot_be_read_here(tmp_path: Path) -> None:
    secret = tmp_path / "ami-secret"
    script = tmp_path / "files.yaml"
    script.write_text(
        f"vars:\n  secret: {{default: '${{file:{secret}}}', secret: true}}\nconnect: {{}}\n"
        "steps:\n  - send: '${secret} ${file:relative-file}\\n'\n"
    )
    result = amiscript("check", str(script))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"{script}:2:21: warning: ${{file:{secret}}}: the file does not exist here; a run that needs it will stop "
        "(it is read where the check runs: create it there, chmod 600 for a secret)",
        f"{script}:5:11: warning: ${{file:relative-file}}: the file does not exist here; a run that needs it will "
        "stop (a relative path is read from the directory the run starts in)",
        "1 script checked: 0 errors, 2 warnings",
    ]
    secret.write_text("s3cret\n")
    warned = [line for line in amiscript("check", str(script)).stdout.splitlines() if "warning:" in line]
    assert len(warned) == 1 and "${file:relative-file}" in warned[0]


@pytest.mark.parametrize(
    ("greeting", "then"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "nothing was received"),
        (b"HTTP/1.0 400 Bad Request\r\n", ""),
        (b"caf\xe9 bar\r\n", ""),  # a byte that is not UTF-8 is shown as \xNN, as everywhere
    ],
)
def test_an_ami_step_against_a_port_that_is_not_the_ami_says_what_greeted_it(
    tmp_path: Path, greeting: bytes, then: str
) -> None:
    def not_ami(conn: socket.socket) -> None:
        conn.sendall(greeting)
        time.sleep(3)

    script = tmp_path / "login.yaml"
    script.write_text("connect: {}\nsteps:\n  - login: {username: admin, secret: x5}\n    timeout: 0.5\n")
    with tcp_peer(not_ami) as (host, port):
        result = amiscript("run", str(script), "--target", f"tcp://{host}:{port}")
    assert result.returncode == 1
    shown = greeting.decode("utf-8", "backslashreplace").strip()
    assert f'the peer greeted with "{shown}", not the AMI\'s `Asterisk Call Manager/…` (is this the AMI port?)' in (
        result.stderr
    )
    assert then in result.stderr


def test_the_greeting_hint_never_shows_a_piece_of_a_secret_cut_at_its_edge(tmp_path: Path) -> None:
    secret = "hunter2-9f8e7d6c5b4a3f2e1d0c"

    def echoing(conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            first = conn.recv(4096).split(b"\r\n")[2]  # Secret: … of the Login, as its greeting
            conn.sendall(first + b" and a long tail of text after it, " + b"x" * 40 + b"\r\n")
            time.sleep(2)

    script = tmp_path / "greet.yaml"
    script.write_text(
        "vars:\n  secret: {default: x, secret: true}\nconnect: {}\n"
        "steps:\n  - login: {username: admin, secret: '${secret}'}\n    timeout: 0.5\n"
    )
    with tcp_peer(echoing) as (host, port):
        result = amiscript("run", str(script), "--target", f"tcp://{host}:{port}", "--var", f"secret={secret}")
    assert "the peer greeted with" in result.stderr
    for size in range(4, len(secret) + 1):
        assert secret[-size:] not in result.stderr, secret[-size:]
