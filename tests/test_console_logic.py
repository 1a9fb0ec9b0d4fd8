"""The console's pure parts: typed lines to headers, packets to text, completion, the event
filter, and a session turned into a script (which must load as a valid script)."""

from __future__ import annotations

from pathlib import Path

import pytest
import regex

from amiscript.console.completion import Completer, actions_from_list_commands
from amiscript.console.eventfilter import EventFilter, parse_filter
from amiscript.console.recorder import Check, Connection, Exchange, ListResult, Recording, classify, output_pattern
from amiscript.console.render import render_packet, use_colour
from amiscript.console.shortform import ShortFormError, is_header_line, parse_header_line, parse_short
from amiscript.protocol import Packet
from amiscript.script import load_script
from amiscript.script.lint import lint
from amiscript.script.model import Action, Login

# -- short form --------------------------------------------------------------------------------


def test_short_form_is_the_action_then_name_value_headers() -> None:
    assert parse_short("Ping") == [("Action", "Ping")]
    assert parse_short("MailboxCount Mailbox=123@default") == [("Action", "MailboxCount"), ("Mailbox", "123@default")]


def test_short_form_quotes_like_a_shell() -> None:
    assert parse_short('Command "core show channels"') == [("Action", "Command"), ("Command", "core show channels")]
    assert parse_short("UserEvent Hi Note='a b=c'") == [("Action", "UserEvent"), ("UserEvent", "Hi"), ("Note", "a b=c")]


def test_bare_words_become_the_main_header_joined_by_blanks() -> None:
    assert parse_short("Command core show version") == [("Action", "Command"), ("Command", "core show version")]


def test_bare_words_without_a_main_header_are_refused_with_a_hint() -> None:
    with pytest.raises(ShortFormError, match="Name=Value"):
        parse_short("Originate Local/100@default")


def test_unbalanced_quotes_are_an_error_not_a_crash() -> None:
    with pytest.raises(ShortFormError, match="quotation"):
        parse_short('Command "core show')


def test_raw_header_lines_as_typed_into_telnet() -> None:
    assert is_header_line("Action: Ping")
    assert is_header_line("Mailbox:123@default")
    assert not is_header_line("Ping")
    assert not is_header_line("UserEvent Foo:bar")
    assert parse_header_line("  Mailbox:   123@default  ") == ("Mailbox", "123@default")


# -- rendering ---------------------------------------------------------------------------------


def test_headers_are_aligned_and_plain_without_colour() -> None:
    packet = Packet.of(("Response", "Success"), ("ActionID", "1"), ("Ping", "Pong"))
    assert render_packet(packet, colour=False) == "Response: Success\nActionID: 1\nPing:     Pong"


def test_events_get_a_marker_line() -> None:
    text = render_packet(Packet.of(("Event", "Hangup"), ("Cause", "16")), colour=False)
    assert text.splitlines() == ["-- event Hangup", "Event: Hangup", "Cause: 16"]


def test_colour_marks_errors_red_and_values_are_masked() -> None:
    packet = Packet.of(("Response", "Error"), ("Message", "bad secret5"))
    text = render_packet(packet, colour=True, mask=lambda value: value.replace("secret5", "****"))
    assert "\x1b[31mError" in text
    assert "secret5" not in text and "****" in text


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert use_colour(_Stream(True), {})  # type: ignore[arg-type]
    assert not use_colour(_Stream(False), {})  # type: ignore[arg-type]
    assert not use_colour(_Stream(True), {"NO_COLOR": "1"})  # type: ignore[arg-type]
    assert use_colour(_Stream(True), {"NO_COLOR": ""})  # type: ignore[arg-type]  # no-color.org: empty is unset


# -- completion --------------------------------------------------------------------------------

LIST_COMMANDS = Packet.of(
    ("Response", "Success"),
    ("ActionID", "x"),
    ("MailboxCount", "Check Mailbox Message Count.  (Priv: call,reporting,all)"),
    ("MailboxStatus", "Check mailbox.  (Priv: call,reporting,all)"),
    ("Ping", "Keepalive command.  (Priv: <none>)"),
)


def test_action_names_come_from_list_commands() -> None:
    assert actions_from_list_commands(LIST_COMMANDS) == ["MailboxCount", "MailboxStatus", "Ping"]


def test_completion_of_actions_headers_and_console_commands() -> None:
    completer = Completer(actions_from_list_commands(LIST_COMMANDS))
    assert completer.candidates("Mailbox", 0, "Mailbox") == ["MailboxCount ", "MailboxStatus "]
    assert completer.candidates("MailboxCount Ma", 13, "Ma") == ["Mailbox="]
    assert completer.candidates("MailboxCount Act", 13, "Act") == ["ActionID="]
    assert completer.candidates("/fi", 0, "/fi") == ["/filter "]
    assert completer.candidates("/events o", 8, "o") == ["on", "off"]


def test_completion_inside_a_raw_packet() -> None:
    completer = Completer(actions_from_list_commands(LIST_COMMANDS))
    assert completer.candidates("Act", 0, "Act") == ["Action: "]
    assert completer.candidates("Action: Pi", 8, "Pi") == ["Ping"]
    assert completer.candidates("Mail", 0, "Mail", raw_action="MailboxCount") == ["Mailbox: "]


# -- event filter ------------------------------------------------------------------------------


def test_event_filter_matches_every_pair_ignoring_case_with_prefixes() -> None:
    hangup = Packet.of(("Event", "Hangup"), ("Channel", "PJSIP/100-0001"))
    assert EventFilter().shows(hangup)
    assert not EventFilter(enabled=False).shows(hangup)
    assert EventFilter(True, parse_filter(["event=hangup", "Channel=PJSIP/*"])).shows(hangup)
    assert not EventFilter(True, parse_filter(["Event=Newchannel"])).shows(hangup)
    with pytest.raises(ShortFormError, match="Header=Value"):
        parse_filter(["Hangup"])


# -- recording ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "check"),
    [
        ("Response", "Success", Check.EXACT),
        ("Message", "Mailbox Message Count", Check.EXACT),
        ("Mailbox", "123@default", Check.EXACT),
        ("NewMessages", "2", Check.NUMBER),
        ("ActionID", "console-1", Check.SKIP),
        ("Uniqueid", "1700000000.12", Check.SKIP),
        ("Timestamp", "1795683287.462507", Check.SKIP),
        ("Challenge", "123456789", Check.SKIP),
        ("SessionID", "0x7fd29c373790", Check.SKIP),
        ("Address", "0xab", Check.SKIP),
        ("CoreStartupTime", "06:07:29", Check.SKIP),
        ("EventTV", "2026-11-26T08:54:47.410+0000", Check.SKIP),
        ("Seconds", "1795683287", Check.SKIP),
    ],
)
def test_the_stability_rule(name: str, value: str, check: Check) -> None:
    assert classify(name, value) is check


def test_output_pattern_loosens_digits_and_columns_and_still_matches() -> None:
    lines = ["Channel              Location   State", "0 active channels", "  indented  ", ""]
    pattern = output_pattern(lines)
    assert "\\d+ active channels" in pattern
    assert regex.search(pattern, "\n".join(lines))
    assert regex.search(pattern, "Channel  Location    State\n12 active channels\n indented\n")


def _recording(secret_env: str | None = "PBX_SECRET") -> Recording:
    recording = Recording(Connection("tcp", "127.0.0.1", 5038, "admin", secret_env, "md5"), {"box": "123@default"})
    ping = Packet.of(
        ("Response", "Success"), ("ActionID", "console-1"), ("Ping", "Pong"), ("Timestamp", "1795683287.4")
    )
    recording.add(Exchange((("Action", "Ping"),), ping))
    count = Packet.of(
        ("Response", "Success"),
        ("Message", "Mailbox Message Count"),
        ("Mailbox", "123@default"),
        ("NewMessages", "2"),
    )
    recording.add(Exchange((("Action", "MailboxCount"), ("Mailbox", "${box}")), count))
    version = Packet.of(
        ("Response", "Success"), ("Message", "Command output follows"), ("Output", "Asterisk 22.1 costs $5 ${x}")
    )
    recording.add(Exchange((("Action", "Command"), ("Command", "core show version")), version))
    refused = Packet.of(("Response", "Error"), ("Message", "It's \\ refused"))
    recording.add(Exchange((("Action", "Foo"),), refused))
    return recording


def test_a_recording_is_a_valid_script_with_the_secret_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "session.yaml"
    path.write_text(_recording().to_yaml("session"), encoding="utf-8")
    script = load_script(str(path))
    assert [d for d in lint(script) if d.severity == "error"] == []
    secret = script.var("secret")
    assert secret is not None and secret.secret
    assert "${env:PBX_SECRET}" in path.read_text()
    login, ping, count, version, refused = script.steps
    assert isinstance(login, Login) and login.auth.raw == "md5"
    assert isinstance(ping, Action) and {m.header: m.source.raw for m in ping.expect} == {
        "Response": "Success",
        "Ping": "Pong",
    }
    assert isinstance(count, Action) and dict(count.headers)["Mailbox"].raw == "${box}"
    assert {m.header for m in count.expect} == {"Response", "Message", "Mailbox", "NewMessages"}
    assert isinstance(version, Action)
    output = next(m for m in version.expect if m.header == "Output")
    rendered = output.source.render({}, environ={})
    assert regex.search(rendered, "Asterisk 22.1 costs $5 ${x}")
    assert isinstance(refused, Action) and refused.on_error is not None and not refused.expect


def test_a_prompted_secret_is_recorded_as_an_environment_variable_with_a_note() -> None:
    text = _recording(secret_env=None).to_yaml("s")
    assert 'default: "${env:AMI_SECRET}"' in text and "export AMI_SECRET" in text


def test_the_secret_typed_or_echoed_back_is_written_as_a_reference_never_as_its_value(tmp_path: Path) -> None:
    recording = Recording(Connection("tcp", "h", 1, "admin", "S"), {"box": "123@default"}, secret="hunter2")
    got = Packet.of(("Response", "Success"), ("Val", "hunter2"), ("Mailbox", "123@default"))
    recording.add(Exchange((("Action", "DBGet"), ("Key", "hunter2")), got))
    shown = Packet.of(("Response", "Success"), ("Output", "the secret is hunter2 (7 letters)"))
    recording.add(Exchange((("Action", "Command"), ("Command", "show")), shown))
    refused = Packet.of(("Response", "Error"), ("Message", "bad key hunter2"))
    recording.add(Exchange((("Action", "Foo"),), refused))
    text = recording.to_yaml("s", mask=lambda value: value.replace("hunter2", "****"))
    assert "hunter2" not in text
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    _, get, command, _ = load_script(str(path)).steps
    assert isinstance(get, Action) and isinstance(command, Action)
    assert dict(get.headers)["Key"].raw == "${secret}"
    assert {m.header: m.source.raw for m in get.expect}["Val"] == "${secret}"
    assert {m.header: m.source.raw for m in get.expect}["Mailbox"] == "${box}"
    output = next(m for m in command.expect if m.header == "Output")
    pattern = output.source.render({"secret": "hunter2"}, environ={})
    assert pattern == ".*"  # the line that holds it is not checked
    assert regex.search(pattern, "the secret is hunter2 (7 letters)")


def test_a_short_secret_is_never_written_and_where_it_hid_in_other_text_a_comment_says_so(tmp_path: Path) -> None:
    """A lab secret such as 1234 turns up inside mailboxes and counts: what was typed becomes
    ${secret} all the same (the file never holds the secret), with a comment; answers that hold
    it inside other text are not checked."""
    recording = Recording(Connection("tcp", "h", 1, "admin", "S"), secret="1234")
    count = Packet.of(("Response", "Success"), ("Mailbox", "1234@default"), ("NewMessages", "1234"), ("Val", "1234"))
    recording.add(Exchange((("Action", "MailboxCount"), ("Mailbox", "1234@default"), ("Val", "1234")), count))
    path = tmp_path / "short.yaml"
    path.write_text(recording.to_yaml("short", mask=lambda value: value.replace("1234", "****")), encoding="utf-8")
    text = path.read_text()
    assert "1234" not in text
    assert "# Mailbox held the secret's text: written as ${secret}" in text
    _, step = load_script(str(path)).steps
    assert isinstance(step, Action)
    assert dict(step.headers)["Mailbox"].raw == "${secret}@default" and dict(step.headers)["Val"].raw == "${secret}"
    checks = {m.header: m.source.raw for m in step.expect}
    assert "Mailbox" not in checks  # it holds the secret: not checked
    assert all("1234" not in value for value in checks.values())  # Val, a number, is checked as one
    assert "# observed: Mailbox: ****@default   (not checked: it holds the secret)" in text


def test_the_recording_shown_in_docs_console_md_is_what_the_recorder_writes() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "console.md").read_text(encoding="utf-8")
    shown = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    recording = Recording(Connection("tcp", "127.0.0.1", 5038, "admin", "AMI_SECRET"))
    answer = Packet.of(
        ("Response", "Success"),
        ("ActionID", "console-1"),
        ("Message", "Mailbox Message Count"),
        ("Mailbox", "123@default"),
        ("NewMessages", "0"),
    )
    recording.add(Exchange((("Action", "MailboxCount"), ("Mailbox", "123@default")), answer))
    assert recording.to_yaml("check") == shown


def test_a_telnet_session_is_replayed_through_telnet(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(Recording(Connection("telnet", "pbx", 5038, "admin", "S")).to_yaml("t"), encoding="utf-8")
    connect = load_script(str(path)).connect
    assert connect is not None and connect.transport.raw == "telnet"


def test_odd_characters_in_answers_keep_the_file_valid_and_the_values_exact(tmp_path: Path) -> None:
    odd = "a\x85b\u2028c\x1bd: #e 'f\" \\g"
    recording = Recording(Connection("tcp", "h", 1, "admin", "S"))
    recording.add(Exchange((("Action", "UserEvent"), ("Note", odd)), Packet.of(("Response", "Success"), ("Note", odd))))
    path = tmp_path / "odd.yaml"
    path.write_text(recording.to_yaml("odd"), encoding="utf-8")
    _, step = load_script(str(path)).steps
    assert isinstance(step, Action)
    assert dict(step.headers)["Note"].raw == odd
    assert {m.header: m.source.raw for m in step.expect}["Note"] == odd


def test_an_action_whose_wait_was_stopped_is_recorded_with_a_note(tmp_path: Path) -> None:
    recording = Recording(Connection("tcp", "h", 1, "admin", "S"))
    recording.add(Exchange((("Action", "WaitEvent"),), None, interrupted=True))
    path = tmp_path / "stopped.yaml"
    path.write_text(recording.to_yaml("stopped"), encoding="utf-8")
    assert "  # sent, but Ctrl-C stopped the wait during the session: no answer was seen\n  - action:" in (
        path.read_text()
    )
    _, step = load_script(str(path)).steps
    assert isinstance(step, Action) and dict(step.headers)["Action"].raw == "WaitEvent" and not step.expect


def test_a_tls_session_is_replayed_over_tls_with_its_settings(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not read by load_script")
    tls = (("cacert", "ca.pem"), ("server_name", "pbx.example.net"))
    recording = Recording(Connection("tls", "127.0.0.1", 5039, "admin", "S", tls=tls, insecure=True))
    path = tmp_path / "t.yaml"
    path.write_text(recording.to_yaml("t"), encoding="utf-8")
    text = path.read_text()
    assert "amiscript run t.yaml --insecure" in text and "--target tls://HOST:PORT" in text
    connect = load_script(str(path)).connect
    assert connect is not None and connect.transport.raw == "tls"
    assert {name: value.raw for name, value in connect.tls} == {"cacert": "ca.pem", "server_name": "pbx.example.net"}


def test_a_list_action_is_recorded_with_its_list_and_stable_item_checks(tmp_path: Path) -> None:
    recording = Recording(Connection("tcp", "127.0.0.1", 5038, "admin", "PBX_SECRET"))
    started = Packet.of(("Response", "Success"), ("EventList", "start"), ("Message", "Peers will follow"))
    peers = tuple(Packet.of(("Event", "PeerEntry"), ("ObjectName", name)) for name in ("100", "101"))
    done = Packet.of(("Event", "PeerlistComplete"), ("EventList", "Complete"), ("ListItems", "2"))
    recording.add(Exchange((("Action", "SIPpeers"),), started, listed=ListResult(peers, done)))
    recording.add(Exchange((("Action", "Status"),), started, listed=ListResult((), done)))
    recording.add(Exchange((("Action", "CoreShowChannels"),), started, listed=ListResult(peers, None)))
    path = tmp_path / "lists.yaml"
    path.write_text(recording.to_yaml("lists"), encoding="utf-8")
    _, sip, status, channels = load_script(str(path)).steps
    assert isinstance(sip, Action) and sip.list_var == "sippeers_items" and sip.items is not None
    assert (sip.items.min, [(m.header, m.source.raw) for m in sip.items.every]) == (1, [("Event", "PeerEntry")])
    assert isinstance(status, Action) and status.list_var == "status_items" and status.items is None
    assert isinstance(channels, Action) and channels.list_var is None  # it never ended: a replay would wait
    text = path.read_text()
    assert "# observed: 2 items (PeerEntry), ended by PeerlistComplete" in text
    assert "# observed: 2 items (PeerEntry), but the list did not end within 10 s: not collected" in text
