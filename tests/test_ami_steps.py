"""AMI steps without sockets: answers found by ActionID, lists, Command output, events."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from amiscript.engine import Interpreter
from amiscript.errors import RunFailed, ScriptError
from amiscript.protocol import Packet, encode_packet
from amiscript.script import load_script_text
from amiscript.transports.memory import MemoryTransport

from .helpers import FakeClock, Recorder, ami_peer

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def pkt(*headers: tuple[str, str]) -> bytes:
    return encode_packet(headers)


def run(text: str, answer, *, variables: dict[str, str] | None = None, clock: FakeClock | None = None):  # type: ignore[no-untyped-def]
    clock = clock or FakeClock()
    transport = MemoryTransport(BANNER, ami_peer(answer), on_idle=clock.advance)
    output = Recorder()
    interpreter = Interpreter(
        load_script_text("connect: {}\n" + text, "t.yaml"),
        lambda target: transport,
        output,
        variables=variables,
        clock=clock,
        sleep=clock.sleep,
        environ={},
    )
    return interpreter.run(), output, transport


def success(packet: Packet, *more: tuple[str, str]) -> bytes:
    return pkt(("Response", "Success"), ("ActionID", packet.get("ActionID") or ""), *more)


def test_action_waits_for_its_own_actionid_past_events_and_other_responses() -> None:
    def answer(packet: Packet) -> bytes:
        if packet.get("Action") == "MailboxCount":
            return (
                # an event that contains the very text a raw expect would look for
                pkt(("Event", "UserEvent"), ("UserEvent", "Response: Success"), ("NewMessages", "99"))
                + pkt(("Response", "Success"), ("ActionID", "somebody-else"), ("NewMessages", "98"))
                + success(packet, ("Message", "Mailbox Message Count"), ("NewMessages", "2"), ("OldMessages", "1"))
            )
        return b""

    code, output, transport = run(
        "steps:\n  - action: {Action: MailboxCount, Mailbox: 123@default}\n"
        "    save: {new: NewMessages, old: OldMessages}\n"
        "  - print: '${new}/${old} ${message}'\n",
        answer,
    )
    assert (code, output.printed) == (0, ["2/1 Mailbox Message Count"])
    (sent,) = transport.sent
    assert sent.startswith(b"Action: MailboxCount\r\nMailbox: 123@default\r\nActionID: amiscript-")
    assert sent.endswith(b"\r\n\r\n")


def test_a_given_actionid_is_used_as_is() -> None:
    def answer(packet: Packet) -> bytes:
        return success(packet, ("Ping", "Pong"))

    code, _, transport = run("steps:\n  - action: {Action: Ping, ActionID: '0012'}\n", answer)
    assert code == 0 and transport.sent == [b"Action: Ping\r\nActionID: 0012\r\n\r\n"]


def test_response_error_fails_the_step_with_the_servers_message() -> None:
    def answer(packet: Packet) -> bytes:
        return pkt(("Response", "Error"), ("ActionID", packet.get("ActionID") or ""), ("Message", "Permission denied"))

    with pytest.raises(RunFailed) as failure:
        run("steps:\n  - action: {Action: Originate, Channel: Local/1@default}\n", answer)
    assert str(failure.value) == "t.yaml:3:5: action Originate failed: Permission denied"


def test_on_error_runs_instead_of_failing_and_sees_the_reason() -> None:
    def answer(packet: Packet) -> bytes:
        return pkt(("Response", "Error"), ("ActionID", packet.get("ActionID") or ""), ("Message", "No such channel"))

    code, output, _ = run(
        "steps:\n  - action: {Action: Hangup, Channel: x}\n    on_error:\n      - print: 'gone: ${error}'\n"
        "  - print: after\n",
        answer,
    )
    assert (code, output.printed) == (0, ["gone: No such channel", "after"])


def test_expect_checks_headers_exactly_or_by_regex_with_captures() -> None:
    def answer(packet: Packet) -> bytes:
        return success(packet, ("Message", "Mailbox Message Count"), ("NewMessages", "12"))

    code, output, _ = run(
        "steps:\n  - action: {Action: MailboxCount, Mailbox: '1'}\n"
        "    expect:\n      Message: Mailbox Message Count\n      NewMessages: {re: '^(?P<n>\\d+)$'}\n"
        "  - print: ${n}\n",
        answer,
    )
    assert (code, output.printed) == (0, ["12"])
    with pytest.raises(RunFailed, match=r"NewMessages is '12', expected '1'"):
        run("steps:\n  - action: {Action: MailboxCount}\n    expect: {NewMessages: '1'}\n", answer)
    with pytest.raises(RunFailed, match="Waiting is missing"):
        run("steps:\n  - action: {Action: MailboxCount}\n    expect: {Waiting: '1'}\n", answer)


def test_modern_command_output_headers_become_output_text() -> None:
    def answer(packet: Packet) -> bytes:
        return success(
            packet,
            ("Message", "Command output follows"),
            ("Output", "Asterisk 22.10.1 built by root @ vm"),
            ("Output", "Second line  "),
        )

    code, output, _ = run(
        "steps:\n  - action: {Action: Command, Command: core show version}\n"
        "    expect: {Output: {re: 'Asterisk (?P<version>[\\d.]+)'}}\n"
        "  - print: ${version}\n  - print: ${output}\n",
        answer,
    )
    assert (code, output.printed) == (0, ["22.10.1", "Asterisk 22.10.1 built by root @ vm\nSecond line  "])


def test_legacy_follows_body_gives_the_same_output_text() -> None:
    def answer(packet: Packet) -> bytes:
        return (
            b"Response: Follows\r\nPrivilege: Command\r\nActionID: " + (packet.get("ActionID") or "").encode()
            + b"\r\nAsterisk 13.38.3 built by root\nUptime: 5 minutes\n\n--END COMMAND--\r\n\r\n"
        )  # fmt: skip

    code, output, _ = run(
        "steps:\n  - action: {Action: Command, Command: core show version}\n"
        "    expect: {Output: {re: 'Asterisk (?P<version>[\\d.]+)'}}\n"
        "  - print: ${version}\n  - print: ${output}\n  - print: ${response}\n",
        answer,
    )
    assert (code, output.printed) == (0, ["13.38.3", "Asterisk 13.38.3 built by root\nUptime: 5 minutes\n", "Follows"])


def list_answer(items: int, *, complete: bool = True, reported: int | None = None):  # type: ignore[no-untyped-def]
    def answer(packet: Packet) -> bytes:
        action_id = packet.get("ActionID") or ""
        out = pkt(("Response", "Success"), ("ActionID", action_id), ("EventList", "start"), ("Message", "follows"))
        out += pkt(("Event", "Newexten"), ("Channel", "unrelated"))
        for number in range(items):
            out += pkt(("Event", "Status"), ("ActionID", action_id), ("Channel", f"PJSIP/10{number}"), ("State", "Up"))
        if complete:
            count = str(items if reported is None else reported)
            out += pkt(("Event", "StatusComplete"), ("ActionID", action_id), ("EventList", "Complete"),
                       ("ListItems", count))  # fmt: skip
        return out

    return answer


def test_list_is_collected_until_its_complete_event_and_checked() -> None:
    code, output, _ = run(
        "steps:\n  - action: {Action: Status}\n    list: channels\n"
        "    items: {count: 3, every: {State: Up}, any: {Channel: {re: '/101$'}}}\n"
        "  - assert: len(channels) == 3\n"
        "  - foreach: ${channels}\n    as: chan\n    steps:\n      - print: ${chan.Channel}\n"
        "  - wait_event: {Event: Newexten}\n    timeout: 1\n  - print: backlog kept the event\n",
        list_answer(3),
    )
    assert (code, output.printed) == (0, ["PJSIP/100", "PJSIP/101", "PJSIP/102", "backlog kept the event"])


def test_a_missing_complete_event_is_a_timeout_not_a_guess() -> None:
    with pytest.raises(
        RunFailed, match=r"timeout after 2 s waiting for the end of the list of action Status \(2 items"
    ):
        run("steps:\n  - action: {Action: Status}\n    list: c\n    timeout: 2\n", list_answer(2, complete=False))


def test_a_list_shorter_than_the_server_reports_fails() -> None:
    with pytest.raises(RunFailed, match="reported ListItems: 5 but sent 2 items"):
        run("steps:\n  - action: {Action: Status}\n    list: c\n", list_answer(2, reported=5))


def test_item_checks_fail_with_what_was_found() -> None:
    with pytest.raises(RunFailed, match="the list has 2 items, expected at least 3"):
        run("steps:\n  - action: {Action: Status}\n    list: c\n    items: {min: 3}\n", list_answer(2))
    with pytest.raises(RunFailed, match="none of the 2 items matches `any`"):
        run("steps:\n  - action: {Action: Status}\n    list: c\n    items: {any: {State: Down}}\n", list_answer(2))


@pytest.mark.parametrize("bad", ["123\r\nAction: Originate", "123\nAction: Command", "123\x00"])
def test_a_value_that_would_inject_headers_is_refused_and_nothing_is_sent(bad: str) -> None:
    def answer(packet: Packet) -> bytes:  # pragma: no cover - must never be reached
        raise AssertionError("nothing may be sent")

    with pytest.raises(ScriptError, match=r"\$\{mailbox\} contains .*refusing to put it into the Mailbox header"):
        run(
            "vars: {mailbox: x}\nsteps:\n  - action: {Action: MailboxCount, Mailbox: '${mailbox}'}\n",
            answer,
            variables={"mailbox": bad},
        )


def login_answer(secret: str = "secret5"):  # type: ignore[no-untyped-def]
    def answer(packet: Packet) -> bytes:
        action_id = ("ActionID", packet.get("ActionID") or "")
        if packet.get("Action") == "Challenge":
            return pkt(("Response", "Success"), action_id, ("Challenge", "115991323"))
        if packet.get("Action") == "Login":
            expected_key = hashlib.md5(f"115991323{secret}".encode()).hexdigest()
            good = packet.get("Secret") == secret or packet.get("Key") == expected_key
            message = "Authentication accepted" if good else "Authentication failed"
            return pkt(("Response", "Success" if good else "Error"), action_id, ("Message", message)) + (
                pkt(("Event", "FullyBooted"), ("Status", "Fully Booted")) if good else b""
            )
        return b""

    return answer


def test_md5_login_never_sends_the_secret_and_is_accepted() -> None:
    code, output, transport = run(
        "vars: {pw: {default: secret5, secret: true}}\n"
        "steps:\n  - login: {username: admin, secret: '${pw}', auth: md5, events: 'off'}\n  - print: ${message}\n",
        login_answer(),
    )
    assert (code, output.printed) == (0, ["Authentication accepted"])
    wire = b"".join(transport.sent)
    assert b"secret5" not in wire
    assert b"AuthType: md5\r\nUsername: admin\r\nKey: " in wire and b"Events: off\r\n" in wire
    key = hashlib.md5(b"115991323secret5").hexdigest()
    assert key not in output.everything()


def test_a_failed_login_fails_the_step_with_the_servers_message_never_a_false_success() -> None:
    with pytest.raises(RunFailed, match="login as 'admin' failed: Authentication failed"):
        run("steps:\n  - login: {username: admin, secret: wrong}\n  - print: never\n", login_answer())
    code, output, _ = run(
        "steps:\n  - login: {username: admin, secret: wrong}\n    on_error:\n      - fail: Login failed.\n",
        login_answer(),
    )
    assert (code, output.printed) == (1, ["Login failed."])


def test_wait_event_counts_events_from_the_backlog_and_new_ones() -> None:
    def answer(packet: Packet) -> bytes:
        return success(packet) + pkt(("Event", "Hangup"), ("Cause", "16"), ("Channel", "A"))

    code, output, _ = run(
        "steps:\n  - action: {Action: Ping}\n  - action: {Action: Ping}\n"
        "  - wait_event: {Event: Hangup, Channel: {re: '(?P<last>\\w+)'}}\n    count: 2\n    list: hangups\n"
        "  - assert: len(hangups) == 2\n  - print: ${last}\n",
        answer,
    )
    assert (code, output.printed) == (0, ["A"])


def test_wait_event_timeout_says_how_many_arrived() -> None:
    def answer(packet: Packet) -> bytes:
        return success(packet) + pkt(("Event", "Hangup"))

    with pytest.raises(
        RunFailed,
        match=r"timeout after 1 s waiting for 3 event\(s\) Event=Hangup \(got 1 of 3; last received: "
        r"Response: Success \(ActionID amiscript-[\w-]+\); Event: Hangup\)",
    ):
        run(
            "steps:\n  - action: {Action: Ping}\n  - wait_event: {Event: Hangup}\n    count: 3\n    timeout: 1\n",
            answer,
        )


def test_events_that_fell_out_of_the_backlog_are_reported_not_assumed_absent() -> None:
    def answer(packet: Packet) -> bytes:
        return b"".join(pkt(("Event", "VarSet"), ("Value", str(n))) for n in range(5)) + success(packet)

    clock = FakeClock()
    transport = MemoryTransport(BANNER, ami_peer(answer), on_idle=clock.advance)
    output = Recorder()
    script = load_script_text(
        "connect: {}\nevent_backlog: 2\nsteps:\n  - action: {Action: Ping}\n"
        "  - wait_event: {Event: VarSet, Value: '0'}\n    timeout: 1\n    on_timeout:\n      - print: not seen\n",
        "t.yaml",
    )
    assert Interpreter(script, lambda t: transport, output, clock=clock, sleep=clock.sleep).run() == 0
    assert output.printed == ["not seen"]
    assert any("3 events fell out of the backlog (size 2)" in note for note in output.notes)


def test_raw_expect_then_ami_steps_then_raw_expect_share_the_stream() -> None:
    def answer(packet: Packet) -> bytes:
        return success(packet, ("Ping", "Pong")) + b"Trailing: text\r\n"

    code, output, _ = run(
        "steps:\n  - expect: 'Call Manager/(?P<v>[\\d.]+)'\n  - action: {Action: Ping}\n"
        "  - expect: 'Trailing: (?P<t>\\w+)'\n  - print: '${v} ${t} ${response}'\n",
        answer,
    )
    assert (code, output.printed) == (0, ["11.0.0 text Success"])


def test_assert_reports_the_expression_and_the_values_it_saw() -> None:
    with pytest.raises(RunFailed) as failure:
        run("vars: {new: '12'}\nsteps:\n  - assert: new <= 10\n    message: too many\n", lambda p: b"")
    assert str(failure.value) == "t.yaml:4:5: assert failed: too many: new <= 10 (new = '12')"


def test_foreach_over_a_comma_list_and_a_yaml_list() -> None:
    code, output, _ = run(
        "vars: {friends: '100, 101,102'}\nsteps:\n"
        "  - foreach: ${friends}\n    as: n\n    steps:\n      - print: call ${n}\n"
        "  - foreach: [a, '${friends}']\n    as: x\n    steps:\n      - print: ${x}\n",
        lambda p: b"",
    )
    assert (code, output.printed) == (0, ["call 100", "call 101", "call 102", "a", "100, 101,102"])


def test_repeat_until_with_a_limit_and_delay() -> None:
    clock = FakeClock()
    state = {"n": 0}

    def answer(packet: Packet) -> bytes:
        state["n"] += 1
        return success(packet, ("Count", str(state["n"])))

    code, output, _ = run(
        "steps:\n  - repeat:\n      - action: {Action: Ping}\n        save: {n: Count}\n"
        "    until: n >= 3\n    limit: 5\n    delay: 0.5\n  - print: ${n}\n",
        answer,
        clock=clock,
    )
    assert (code, output.printed, clock.slept) == (0, ["3"], 1.0)
    with pytest.raises(RunFailed, match=r"repeat gave up after 2 rounds: `until n >= 9` never held \(n = '5'\)"):
        run(
            "steps:\n  - repeat:\n      - action: {Action: Ping}\n        save: {n: Count}\n"
            "    until: n >= 9\n    limit: 2\n    delay: 0\n",
            answer,
        )


def test_include_runs_a_shared_block_with_its_own_vars(tmp_path: Path) -> None:
    (tmp_path / "login.yaml").write_text(
        "vars:\n  user: {required: true}\n  pw: {default: secret5, secret: true}\n"
        "steps:\n  - login: {username: '${user}', secret: '${pw}'}\n  - print: 'in: ${user}'\n"
    )
    main = tmp_path / "main.yaml"
    main.write_text("connect: {}\nsteps:\n  - include: login.yaml\n    vars: {user: admin}\n  - print: done\n")
    from amiscript.script import load_script

    transport = MemoryTransport(BANNER, ami_peer(login_answer()))
    output = Recorder()
    assert Interpreter(load_script(main), lambda t: transport, output).run() == 0
    assert output.printed == ["in: admin", "done"]


def test_include_cycles_and_missing_files_are_load_errors(tmp_path: Path) -> None:
    from amiscript.script import load_script

    (tmp_path / "a.yaml").write_text("steps:\n  - include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("steps:\n  - include: a.yaml\n")
    with pytest.raises(ScriptError, match="include cycle"):
        load_script(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("steps:\n  - include: nowhere.yaml\n")
    with pytest.raises(ScriptError, match="does not exist"):
        load_script(tmp_path / "c.yaml")


def test_an_event_with_response_and_our_actionid_is_not_taken_for_the_answer() -> None:
    def answer(packet: Packet) -> bytes:
        action_id = ("ActionID", packet.get("ActionID") or "")
        return pkt(("Event", "OriginateResponse"), action_id, ("Response", "Failure")) + success(
            packet, ("Ping", "Pong")
        )

    code, output, _ = run(
        "steps:\n  - action: {Action: Ping}\n    save: {p: Ping}\n  - print: '${response} ${p}'\n", answer
    )
    assert (code, output.printed) == (0, ["Success Pong"])


@pytest.mark.parametrize("field", ["username", "secret", "events"])
def test_login_fields_are_checked_for_injection_before_anything_is_sent(field: str) -> None:
    clock = FakeClock()
    transport = MemoryTransport(BANNER, ami_peer(login_answer()), on_idle=clock.advance)
    script = load_script_text(
        "vars: {u: admin, s: secret5, e: 'on'}\nconnect: {}\n"
        "steps:\n  - login: {username: '${u}', secret: '${s}', events: '${e}', auth: md5}\n",
        "t.yaml",
    )
    values = {"u": "admin", "s": "secret5", "e": "on", {"username": "u", "secret": "s", "events": "e"}[field]: "x\x00y"}
    with pytest.raises(ScriptError, match="contains a NUL byte"):
        Interpreter(script, lambda t: transport, Recorder(), variables=values, clock=clock, environ={}).run()
    assert transport.sent == []


def test_a_wait_event_that_times_out_leaves_its_events_for_the_next_wait() -> None:
    def answer(packet: Packet) -> bytes:
        return success(packet) + pkt(("Event", "Hangup")) + pkt(("Event", "Hangup"))

    code, output, _ = run(
        "steps:\n  - action: {Action: Ping}\n"
        "  - wait_event: {Event: Hangup}\n    count: 3\n    timeout: 1\n    on_timeout:\n      - print: only two\n"
        "  - wait_event: {Event: Hangup}\n    count: 2\n    timeout: 1\n  - print: both still there\n",
        answer,
    )
    assert (code, output.printed) == (0, ["only two", "both still there"])


def test_switching_between_raw_and_ami_steps_loses_no_bytes_even_mid_packet_or_mid_character() -> None:
    clock = FakeClock()
    transport = MemoryTransport(BANNER + pkt(("Event", "A")) + b"Event: Foo\r\nBar: caf\xc3", on_idle=clock.advance)
    transport.push(b"\xa9\r\n")
    output = Recorder()
    script = load_script_text(
        "connect: {}\nsteps:\n  - expect: Manager\n"
        "  - wait_event: {Event: A}\n"
        "  - wait_event: {Event: Zed}\n    timeout: 1\n    on_timeout:\n      - print: no Zed\n"
        "  - expect: 'Bar: (?P<bar>\\S+)\\r\\n'\n  - print: ${bar}\n",
        "t.yaml",
    )
    assert Interpreter(script, lambda t: transport, output, clock=clock, sleep=clock.sleep).run() == 0
    assert output.printed == ["no Zed", "café"]


def test_switching_back_and_forth_after_end_of_file_still_reads_what_is_left() -> None:
    transport = MemoryTransport(BANNER + pkt(("Event", "A")) + pkt(("Event", "B")) + pkt(("Event", "C")))
    transport.push(b"")
    output = Recorder()
    script = load_script_text(
        "connect: {}\nsteps:\n  - expect:\n      - re: never\n      - eof: []\n"
        "  - wait_event: {Event: A}\n  - expect: 'Event: B'\n  - wait_event: {Event: C}\n  - print: all read\n",
        "t.yaml",
    )
    assert Interpreter(script, lambda t: transport, output).run() == 0
    assert output.printed == ["all read"]


def test_assert_explanations_mask_secrets_even_when_quoting_would_escape_them() -> None:
    secret = "pa\\ss\"wo'rd"
    with pytest.raises(RunFailed) as failure:
        run(
            "vars: {pw: {default: x, secret: true}}\nsteps:\n  - assert: pw == 'other'\n",
            lambda p: b"",
            variables={"pw": secret},
        )
    assert "pw = '****'" in str(failure.value)
    assert "wo" not in str(failure.value)


def test_expression_regexes_keep_their_backslashes_and_bad_ones_are_script_errors() -> None:
    code, output, _ = run(
        "vars: {x: '123', v: '22.10.1'}\nsteps:\n  - assert: x =~ '^\\d+$' and v =~ '^22\\.' and not (v =~ '^22x')\n"
        "  - print: ok\n",
        lambda p: b"",
    )
    assert (code, output.printed) == (0, ["ok"])
    with pytest.raises(ScriptError, match="invalid regex"):
        run("vars: {x: a, p: '(['}\nsteps:\n  - assert: x =~ p\n", lambda p: b"")


def test_included_scripts_use_their_own_handlers_and_timeout(tmp_path: Path) -> None:
    from amiscript.script import load_script

    (tmp_path / "inner.yaml").write_text(
        "timeout: 0.5\non:\n  timeout:\n    - print: 'inner handler, inner=${inner}'\n"
        "vars: {inner: yes}\nsteps:\n  - expect: never\n"
    )
    (tmp_path / "outer.yaml").write_text(
        "connect: {}\ntimeout: 60\nvars: {host: pbx}\non:\n  timeout:\n    - print: 'outer handler, host=${host}'\n"
        "steps:\n  - include: inner.yaml\n  - expect: never either\n"
    )
    clock = FakeClock()
    transport = MemoryTransport(b"", on_idle=clock.advance)
    output = Recorder()
    code = Interpreter(load_script(tmp_path / "outer.yaml"), lambda t: transport, output, clock=clock).run()
    assert (code, output.printed) == (0, ["inner handler, inner=yes", "outer handler, host=pbx"])
    assert clock.now == pytest.approx(60.5)


def test_a_bad_value_known_at_the_start_stops_the_run_before_the_login_is_sent() -> None:
    def answer(packet: Packet) -> bytes:  # pragma: no cover - nothing may be sent
        raise AssertionError("nothing may be sent")

    with pytest.raises(ScriptError, match=r"\$\{cmd\} contains a carriage return"):
        run(
            "vars: {cmd: x}\nsteps:\n  - login: {username: admin, secret: s}\n"
            "  - action: {Action: Command, Command: '${cmd}'}\n",
            answer,
            variables={"cmd": "x\r\nAction: Originate"},
        )


class TickingClock(FakeClock):
    """A clock that moves a little on every reading, as a real one does between two steps."""

    def __call__(self) -> float:
        self.now += 1e-5
        return self.now


def test_a_login_timeout_names_the_steps_timeout_though_time_passed_before_it_waited() -> None:
    with pytest.raises(RunFailed, match=r"timeout after 2 s waiting for the answer to login as 'admin'; nothing"):
        script = "steps:\n  - login: {username: admin, secret: pw-1}\n    timeout: 2\n"
        run(script, lambda packet: b"", clock=TickingClock())
