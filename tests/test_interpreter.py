"""The interpreter without sockets: steps, variables, captures, handlers, masking, deadlines."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiscript.engine import Interpreter
from amiscript.errors import ConnectFailed, RunFailed, ScriptError, UsageError
from amiscript.script import load_script, load_script_text
from amiscript.transports.base import Target
from amiscript.transports.memory import MemoryTransport

from .helpers import FakeClock, Recorder

ROOT = Path(__file__).resolve().parents[1]
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN_OK = b"Response: Success\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\n\r\n"
LOGIN_BAD = b"Response: Error\r\nMessage: Authentication failed\r\n\r\n"
COUNTS = (
    b"Response: Success\r\nMessage: Mailbox Message Count\r\nMailbox: 123@default\r\n"
    b"UrgMessages: 0\r\nNewMessages: 2\r\nOldMessages: 1\r\n\r\n"
)


def asterisk_like(secret: str = "secret5"):  # type: ignore[no-untyped-def]
    """A peer answering the book's conversation, packet by packet."""

    def answer(data: bytes) -> bytes | None:
        if b"Action: Login" in data:
            return LOGIN_OK if f"Secret: {secret}\r\n".encode() in data else LOGIN_BAD
        if b"Action: MailboxCount" in data:
            return COUNTS
        return None

    return answer


def run(
    script_text: str,
    transport: MemoryTransport | None = None,
    variables: dict[str, str] | None = None,
    clock: FakeClock | None = None,
    **options: object,
) -> tuple[int, Recorder, list[Target]]:
    clock = clock or FakeClock()
    transport = transport if transport is not None else MemoryTransport(on_idle=clock.advance)
    targets: list[Target] = []

    def opener(target: Target) -> MemoryTransport:
        targets.append(target)
        return transport

    output = Recorder()
    script = load_script_text(script_text, "t.yaml")
    interpreter = Interpreter(
        script, opener, output, variables=variables, clock=clock, sleep=clock.sleep, environ={}, **options
    )  # type: ignore[arg-type]
    return interpreter.run(), output, targets


def run_vmcount(transport: MemoryTransport, **variables: str) -> tuple[int, Recorder]:
    clock = FakeClock()
    output = Recorder()
    script = load_script(ROOT / "scripts" / "vmcount.yaml")
    interpreter = Interpreter(
        script, lambda target: transport, output, variables=variables, clock=clock, sleep=clock.sleep
    )
    return interpreter.run(), output


def test_vmcount_prints_the_books_session_and_sends_crlf_packets() -> None:
    transport = MemoryTransport(BANNER, asterisk_like())
    code, output = run_vmcount(transport, mailbox="123@default")
    assert code == 0
    assert output.printed == ["Mailbox: 123@default", "Connected.", "Logged in.", "New messages: 2", "Old messages: 1"]
    assert transport.sent == [
        b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\n\r\n",
        b"Action: MailboxCount\r\nMailbox: 123@default\r\n\r\n",
        b"Action: Logoff\r\n\r\n",
    ]
    assert transport.closed


def test_vmcount_with_a_wrong_secret_prints_login_failed_and_exits_1() -> None:
    transport = MemoryTransport(BANNER, asterisk_like())
    code, output = run_vmcount(transport, mailbox="123@default", secret="wrong")
    assert code == 1
    assert output.printed == ["Mailbox: 123@default", "Connected.", "Login failed."]


def test_vmcount_without_a_server_runs_the_eof_handler() -> None:
    def refuse(target: Target) -> MemoryTransport:
        raise ConnectFailed(f"cannot connect to {target}: connection refused")

    output = Recorder()
    script = load_script(ROOT / "scripts" / "vmcount.yaml")
    code = Interpreter(script, refuse, output, variables={"mailbox": "1"}).run()
    assert code == 1
    assert output.printed == ["Mailbox: 1", "Failed to connect."]


def test_secret_values_are_masked_in_everything_the_run_shows() -> None:
    clock = FakeClock()
    transport = MemoryTransport(BANNER, lambda data: b"Echo: " + data.split(b"Secret: ")[-1], clock.advance)
    script = load_script_text(
        "vars:\n  pw: {default: hunter2, secret: true}\n"
        "connect: {host: h}\n"
        "steps:\n"
        "  - print: 'using ${pw}'\n"
        '  - send: "Secret: ${pw}\\n"\n'
        "  - expect: 'never'\n"
        "    timeout: 1\n",
        "t.yaml",
    )
    output = Recorder()
    interpreter = Interpreter(script, lambda t: transport, output, clock=clock, sleep=clock.sleep)
    with pytest.raises(RunFailed) as failure:
        interpreter.run()
    assert transport.sent == [b"Secret: hunter2\r\n"]
    shown = output.everything() + str(failure.value)
    assert "hunter2" not in shown
    assert "using ****" in output.printed
    assert "Echo: ****" in str(failure.value)


def test_timeout_without_handler_fails_with_location_pattern_wait_and_tail() -> None:
    clock = FakeClock()
    transport = MemoryTransport(BANNER + b"Response: Pending\r\n", on_idle=clock.advance)
    with pytest.raises(RunFailed) as failure:
        run("connect: {}\nsteps:\n  - expect: 'Response: Success'\n    timeout: 3\n", transport, clock=clock)
    error = failure.value
    assert error.exit_code == 1
    assert str(error.location) == "t.yaml:3:5"
    assert "timeout after 3 s waiting for /Response: Success/" in error.message
    assert 'last received: "Asterisk Call Manager/11.0.0\\r\\nResponse: Pending\\r\\n"' in error.message
    assert clock.now == pytest.approx(3)


def test_global_timeout_handler_runs_and_the_script_continues() -> None:
    code, output, _ = run(
        "connect: {}\ntimeout: 2\non:\n  timeout:\n    - print: slow PBX\nsteps:\n  - expect: x\n  - print: after\n"
    )
    assert code == 0
    assert output.printed == ["slow PBX", "after"]


def test_step_timeout_alternative_overrides_the_global_handler() -> None:
    code, output, _ = run(
        "connect: {}\non:\n  timeout:\n    - print: global\n"
        "steps:\n  - expect:\n      - re: x\n      - timeout:\n          - print: local\n          - exit: 4\n"
    )
    assert (code, output.printed) == (4, ["local"])


def test_eof_without_handler_fails_with_exit_1_and_what_was_awaited() -> None:
    transport = MemoryTransport(BANNER)
    transport.push(b"Response: Error\r\n")
    transport.push(b"")
    with pytest.raises(RunFailed) as failure:
        run("connect: {}\nsteps:\n  - expect: 'Response: Success'\n", transport)
    assert failure.value.exit_code == 1
    assert "connection closed by the peer while waiting for /Response: Success/" in failure.value.message


def test_text_before_eof_still_matches() -> None:
    transport = MemoryTransport(b"Bye now")
    transport.push(b"")
    code, output, _ = run("connect: {}\nsteps:\n  - expect: 'Bye'\n  - print: ok\n", transport)
    assert (code, output.printed) == (0, ["ok"])


def test_expecting_eof_itself_succeeds() -> None:
    transport = MemoryTransport(b"Response: Goodbye\r\n\r\n")
    transport.push(b"")
    code, output, _ = run("connect: {}\nsteps:\n  - expect:\n      - eof:\n          - print: closed\n", transport)
    assert (code, output.printed) == (0, ["closed"])


def test_connect_failure_without_eof_handler_is_a_transport_error_with_exit_3() -> None:
    def refuse(target: Target) -> MemoryTransport:
        raise ConnectFailed(f"cannot connect to {target}: connection refused")

    script = load_script_text("connect: {port: '1'}\nsteps:\n  - send: x\n", "t.yaml")
    with pytest.raises(ConnectFailed) as failure:
        Interpreter(script, refuse, Recorder()).run()
    assert failure.value.exit_code == 3
    assert "tcp://127.0.0.1:1" in str(failure.value)


def test_captures_become_variables_and_match_consumes_the_text() -> None:
    transport = MemoryTransport(b"NewMessages: 7\r\nOldMessages: 3\r\nNewMessages: 9\r\n")
    code, output, _ = run(
        "connect: {}\nsteps:\n"
        "  - expect: 'NewMessages: (?P<new>\\d+)'\n"
        "  - expect: 'OldMessages: (?P<old>\\d+)'\n"
        "  - expect: 'NewMessages: (?P<again>\\d+)'\n"
        "  - print: '${new} ${old} ${again}'\n",
        transport,
    )
    assert (code, output.printed) == (0, ["7 3 9"])


def test_variables_in_patterns_match_literally() -> None:
    transport = MemoryTransport(b"Mailbox: 1+1@default\r\nMailbox: 11@default\r\n")
    code, output, _ = run(
        "vars: {mb: 1+1@default}\nconnect: {}\nsteps:\n"
        "  - expect: 'Mailbox: ${mb}\\r'\n  - expect: 'Mailbox: (?P<next>\\S+)'\n  - print: ${next}\n",
        transport,
    )
    assert (code, output.printed) == (0, ["11@default"])


def test_a_value_with_a_line_break_cannot_inject_headers_into_send() -> None:
    transport = MemoryTransport()
    with pytest.raises(ScriptError, match=r"\$\{mailbox\} contains a carriage return"):
        run(
            "vars: {mailbox: x}\nconnect: {}\nsteps:\n  - send: 'Action: MailboxCount\\nMailbox: ${mailbox}\\n\\n'\n",
            transport,
            variables={"mailbox": "123\r\nAction: Originate"},
        )
    assert transport.sent == []


def test_crlf_mode_sends_each_newline_as_crlf_exactly_once_and_lf_mode_as_written() -> None:
    transport = MemoryTransport()
    run(
        'connect: {}\nsteps:\n  - send: "a\\nb\\r\\nc\\n"\n  - send: "d\\n"\n    newline: lf\n',
        transport,
    )
    assert transport.sent == [b"a\r\nb\r\nc\r\n", b"d\n"]


def test_set_sleep_and_exit() -> None:
    clock = FakeClock()
    code, output, targets = run(
        "vars: {a: '1'}\nsteps:\n  - set: {b: '${a}2'}\n  - sleep: 1.5\n  - print: ${b}\n"
        "  - exit: 7\n  - print: never\n",
        clock=clock,
    )
    assert (code, output.printed, targets) == (7, ["12"], [])
    assert clock.slept == 1.5


def test_fail_prints_its_message_and_exits_1_from_nested_steps() -> None:
    transport = MemoryTransport(b"Response: Error\r\n")
    code, output, _ = run(
        "connect: {}\nsteps:\n  - expect:\n      - re: Error\n        then:\n          - fail: Login failed.\n"
        "  - print: never\n",
        transport,
    )
    assert (code, output.printed) == (1, ["Login failed."])


def test_required_variable_missing_is_an_error_before_anything_is_sent() -> None:
    opened: list[Target] = []
    script = load_script_text("vars:\n  mailbox: {required: true, help: which box}\nsteps:\n  - send: x\n", "t.yaml")
    with pytest.raises(ScriptError) as failure:
        Interpreter(script, lambda t: opened.append(t), Recorder())  # type: ignore[arg-type,func-returns-value]
    assert str(failure.value.location) == "t.yaml:2:3"
    assert "which box" in str(failure.value) and "--var mailbox=VALUE" in str(failure.value)
    assert opened == []


def test_unknown_var_on_the_command_line_is_a_usage_error() -> None:
    script = load_script_text("vars: {a: x}\nsteps: []\n", "t.yaml")
    with pytest.raises(UsageError, match="'b' was given"):
        Interpreter(script, lambda t: None, Recorder(), variables={"b": "1"})  # type: ignore[arg-type,return-value]


def test_env_references_are_resolved_and_missing_ones_fail_before_connecting() -> None:
    script = load_script_text("vars:\n  pw: ${env:AMI_PW}\nsteps:\n  - print: '${pw} ${env:AMI_PW}'\n", "t.yaml")
    output = Recorder()
    assert Interpreter(script, lambda t: None, output, environ={"AMI_PW": "x"}).run() == 0  # type: ignore[arg-type]
    assert output.printed == ["x x"]
    with pytest.raises(ScriptError, match="AMI_PW is not set"):
        Interpreter(script, lambda t: None, Recorder(), environ={})  # type: ignore[arg-type]


def test_target_override_replaces_the_scripts_connection_and_defaults_apply() -> None:
    from amiscript.engine import TargetOverride

    _, _, targets = run(
        "connect: {host: pbx, port: '99', timeout: '4'}\nsteps:\n  - send: x\n",
        target=TargetOverride("tcp", "127.0.0.2", 6000),
    )
    assert targets == [Target("tcp", "127.0.0.2", 6000, 4.0)]
    _, _, targets = run("vars: {h: pbx}\nconnect: {host: '${h}'}\nsteps:\n  - send: x\n")
    assert targets == [Target("tcp", "pbx", 5038, 10.0)]


def test_bad_port_value_is_a_script_error_at_the_ports_location() -> None:
    with pytest.raises(ScriptError) as failure:
        run("vars: {p: abc}\nconnect: {port: '${p}'}\nsteps:\n  - send: x\n")
    assert str(failure.value.location) == "t.yaml:2:17"


def test_no_connect_section_and_no_target_is_a_clear_script_error() -> None:
    with pytest.raises(ScriptError, match="no `connect:` section"):
        run("steps:\n  - send: x\n")


def test_command_line_timeout_overrides_the_default_but_not_a_steps_own() -> None:
    clock = FakeClock()
    with pytest.raises(RunFailed, match=r"timeout after 0\.5 s"):
        run("connect: {}\ntimeout: 60\nsteps:\n  - expect: x\n", clock=clock, timeout=0.5)
    with pytest.raises(RunFailed, match="timeout after 2 s"):
        run("connect: {}\nsteps:\n  - expect: x\n    timeout: 2\n", timeout=0.5)


def test_an_eof_handler_that_sends_again_does_not_loop_forever() -> None:
    def refuse(target: Target) -> MemoryTransport:
        raise ConnectFailed("cannot connect: connection refused")

    script = load_script_text(
        "connect: {}\non:\n  eof:\n    - print: gone\n    - send: x\nsteps:\n  - send: y\n", "t.yaml"
    )
    output = Recorder()
    with pytest.raises(ConnectFailed):
        Interpreter(script, refuse, output).run()
    assert output.printed == ["gone"]


def test_a_timeout_handler_whose_expect_times_out_fails_instead_of_recursing() -> None:
    with pytest.raises(RunFailed, match="timeout after 1 s"):
        run("connect: {}\ntimeout: 1\non:\n  timeout:\n    - expect: again\nsteps:\n  - expect: x\n")


def test_allow_line_breaks_is_the_explicit_opt_out_for_send() -> None:
    transport = MemoryTransport()
    code, _, _ = run(
        "vars: {extra: x}\nconnect: {}\nsteps:\n"
        '  - send: "Action: Ping\\n${extra}\\n\\n"\n    allow_line_breaks: true\n',
        transport,
        variables={"extra": "ActionID: 1\nX-Two: 2"},
    )
    assert code == 0
    assert transport.sent == [b"Action: Ping\r\nActionID: 1\r\nX-Two: 2\r\n\r\n"]
