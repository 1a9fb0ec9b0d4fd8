"""VoicemailUsersList (an AMI list action) and the Asterisk 13 ``Response: Follows`` Command form.

No capture covers these; the expected bytes follow app_voicemail.c (append_vmu_info_astman,
manager_list_voicemail_users) and Asterisk 13's action_command, written out in full here so
that client-side parsers can be tested against the same bytes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from amiscript.sim import Mailbox, SimConfig, Simulator, parse_manager_conf
from amiscript.sim.identity import VERSION_LINE

from .test_sim_captures import Inbox, fixture_config

ADMIN = b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\nEvents: off\r\n\r\n"
ACCEPTED = b"Message: Authentication accepted\r\n\r\n"


def entry(box: str, name: str, new: int, old: int, action_id: str | None) -> bytes:
    aid = f"ActionID: {action_id}\r\n" if action_id else ""
    return (
        f"Event: VoicemailUserEntry\r\n{aid}VMContext: default\r\nVoiceMailbox: {box}\r\nFullname: {name}\r\n"
        "Email: (null)\r\nPager: \r\nServerEmail: asterisk\r\nFromString: \r\n"
        "MailCommand: /usr/sbin/sendmail -t\r\nLanguage: \r\nTimeZone: \r\nCallback: \r\nDialout: \r\n"
        "UniqueID: \r\nExitContext: \r\nSayDurationMinimum: 2\r\nSayEnvelope: Yes\r\nSayCID: No\r\n"
        "AttachMessage: Yes\r\nAttachmentFormat: \r\nDeleteMessage: No\r\nVolumeGain: 0.00\r\nCanReview: No\r\n"
        f"CallOperator: No\r\nMaxMessageCount: 100\r\nMaxMessageLength: 0\r\nNewMessageCount: {new}\r\n"
        f"OldMessageCount: {old}\r\n\r\n"
    ).encode()


class Conversation:
    """One logged-in connection: send an action, get exactly the bytes of its answer."""

    def __init__(self, sim: Simulator, login: bytes = ADMIN) -> None:
        self.sock = socket.create_connection(sim.address, 5)
        self.inbox = Inbox(self.sock)
        self.sock.sendall(login)
        assert self.inbox.read_until(lambda got: ACCEPTED in got)

    def ask(self, action: bytes, ends_with: bytes) -> bytes:
        self.inbox.data = b""
        self.sock.sendall(action)
        assert self.inbox.read_until(lambda got: got.endswith(ends_with)), self.inbox.data
        assert not self.inbox.read_more(0.05)
        return self.inbox.data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def talk() -> Iterator[Conversation]:
    with Simulator(fixture_config(), port=0) as sim:
        conversation = Conversation(sim)
        yield conversation
        conversation.close()


@pytest.fixture
def legacy() -> Iterator[Conversation]:
    config = SimConfig(**{**_fields(fixture_config()), "command_style": "follows"})
    with Simulator(config, port=0) as sim:
        conversation = Conversation(sim)
        yield conversation
        conversation.close()


def _fields(config: SimConfig) -> dict[str, object]:
    return {name: getattr(config, name) for name in SimConfig.__dataclass_fields__}


# -- VoicemailUsersList ---------------------------------------------------------------------------


def test_voicemail_users_list_is_a_list_with_one_entry_per_mailbox(talk: Conversation) -> None:
    complete = b"Event: VoicemailUserEntryComplete\r\nActionID: vm-1\r\nEventList: Complete\r\nListItems: 2\r\n\r\n"
    got = talk.ask(b"Action: VoicemailUsersList\r\nActionID: vm-1\r\n\r\n", complete)
    assert got == (
        b"Response: Success\r\nActionID: vm-1\r\nEventList: start\r\nMessage: Voicemail user list will follow\r\n\r\n"
        + entry("123", "Test User", 2, 1, "vm-1")
        + entry("124", "Other User", 0, 0, "vm-1")
        + complete
    )


def test_voicemail_users_list_without_actionid_has_no_actionid_lines(talk: Conversation) -> None:
    complete = b"Event: VoicemailUserEntryComplete\r\nEventList: Complete\r\nListItems: 2\r\n\r\n"
    got = talk.ask(b"Action: VoicemailUsersList\r\n\r\n", complete)
    assert got.startswith(b"Response: Success\r\nEventList: start\r\nMessage: Voicemail user list will follow\r\n\r\n")
    assert entry("123", "Test User", 2, 1, None) in got
    assert b"ActionID" not in got
    # The entries belong to the answer, not to the event stream: Events: off does not hide them,
    # and they carry no Privilege header.
    assert b"Privilege" not in got


def test_voicemail_users_list_counts_urgent_messages_as_new() -> None:
    boxes = {"7@default": Mailbox("7", "default", new=1, old=4, urgent=2, name="Urgent Owner")}
    config = SimConfig(users=fixture_config().users, mailboxes=boxes, login_fail_delay=0.0)
    with Simulator(config, port=0) as sim:
        talk = Conversation(sim)
        got = talk.ask(b"Action: VoicemailUsersList\r\n\r\n", b"ListItems: 1\r\n\r\n")
        talk.close()
    assert entry("7", "Urgent Owner", 3, 4, None) in got


def test_voicemail_users_list_with_no_mailboxes_is_a_plain_success() -> None:
    config = SimConfig(users=fixture_config().users, mailboxes={}, login_fail_delay=0.0)
    with Simulator(config, port=0) as sim:
        talk = Conversation(sim)
        answer = b"Response: Success\r\nActionID: e\r\nMessage: There are no voicemail users currently defined.\r\n\r\n"
        assert talk.ask(b"Action: VoicemailUsersList\r\nActionID: e\r\n\r\n", answer) == answer
        talk.close()


def test_voicemail_users_list_needs_call_or_reporting_write_access() -> None:
    conf = "[ops]\nsecret = ops\npermit = 127.0.0.1/32\nread = all\nwrite = system\n\n[rep]\nsecret = rep\n"
    conf += "permit = 127.0.0.1/32\nread = all\nwrite = reporting\n"
    config = SimConfig(users=parse_manager_conf(conf, "test"), mailboxes=fixture_config().mailboxes)
    with Simulator(config, port=0) as sim:
        ops = Conversation(sim, b"Action: Login\r\nUsername: ops\r\nSecret: ops\r\nEvents: off\r\n\r\n")
        denied = b"Response: Error\r\nMessage: Permission denied\r\n\r\n"
        assert ops.ask(b"Action: VoicemailUsersList\r\n\r\n", denied) == denied
        rep = Conversation(sim, b"Action: Login\r\nUsername: rep\r\nSecret: rep\r\nEvents: off\r\n\r\n")
        assert rep.ask(b"Action: VoicemailUsersList\r\n\r\n", b"ListItems: 2\r\n\r\n").startswith(b"Response: Success")
        ops.close()
        rep.close()


def test_voicemail_users_list_is_listed_as_asterisk_lists_it(talk: Conversation) -> None:
    got = talk.ask(b"Action: ListCommands\r\n\r\n", b"\r\n\r\n")
    assert b"VoicemailUsersList: List All Voicemail User Information.  (Priv: call,reporting,all)\r\n" in got


def test_cli_voicemail_show_users_uses_asterisks_texts(talk: Conversation) -> None:
    ask = b"Action: Command\r\nCommand: voicemail show users for nowhere\r\n\r\n"
    got = talk.ask(ask, b"\r\n\r\n")
    assert (
        got
        == b'Response: Error\r\nMessage: Command output follows\r\nOutput: No such voicemail context "nowhere"\r\n\r\n'
    )
    got = talk.ask(b"Action: Command\r\nCommand: voicemail show users for default\r\n\r\n", b"\r\n\r\n")
    assert got.endswith(b"Output: 2 voicemail users configured.\r\n\r\n")


# -- Command, Asterisk 13 style -------------------------------------------------------------------


def test_follows_command_output_is_raw_lf_lines_then_end_command(legacy: Conversation) -> None:
    got = legacy.ask(b"Action: Command\r\nCommand: core show version\r\nActionID: c-1\r\n\r\n", b"\r\n\r\n")
    assert got == (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: c-1\r\n"
        + VERSION_LINE.encode()
        + b"\n--END COMMAND--\r\n\r\n"
    )


def test_follows_command_without_actionid_and_with_several_lines(legacy: Conversation) -> None:
    got = legacy.ask(b"Action: Command\r\nCommand: voicemail show users\r\n\r\n", b"--END COMMAND--\r\n\r\n")
    assert got == (
        b"Response: Follows\r\nPrivilege: Command\r\n"
        b"Context    Mbox  User                      Zone       NewMsg\n"
        b"default    123   Test User                                 2\n"
        b"default    124   Other User                                0\n"
        b"2 voicemail users configured.\n"
        b"--END COMMAND--\r\n\r\n"
    )


def test_follows_command_with_no_output_has_the_marker_right_after_the_headers(legacy: Conversation) -> None:
    got = legacy.ask(b"Action: Command\r\nCommand: core show channels concise\r\nActionID: q\r\n\r\n", b"\r\n\r\n")
    assert got == b"Response: Follows\r\nPrivilege: Command\r\nActionID: q\r\n--END COMMAND--\r\n\r\n"


def test_follows_unknown_command_is_a_follows_with_the_cli_complaint(legacy: Conversation) -> None:
    got = legacy.ask(b"Action: Command\r\nCommand: frobnicate widgets\r\nActionID: u\r\n\r\n", b"\r\n\r\n")
    assert got == (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: u\r\n"
        b"No such command 'frobnicate widgets' (type 'core show help frobnicate widgets' for other possible commands)\n"
        b"--END COMMAND--\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [(b"", b"No command provided"), (b"Command: module load foo.so\r\n", b"Command blacklisted")],
)
def test_follows_style_refusals_are_ordinary_errors(legacy: Conversation, command: bytes, message: bytes) -> None:
    answer = b"Response: Error\r\nActionID: r\r\nMessage: " + message + b"\r\n\r\n"
    assert legacy.ask(b"Action: Command\r\n" + command + b"ActionID: r\r\n\r\n", answer) == answer


def test_follows_style_changes_nothing_but_command(legacy: Conversation) -> None:
    answer = b"Response: Success\r\nActionID: p\r\nPing: Pong\r\nTimestamp: "
    assert legacy.ask(b"Action: Ping\r\nActionID: p\r\n\r\n", b"\r\n\r\n").startswith(answer)


def test_command_style_is_checked() -> None:
    assert SimConfig().command_style == "modern"
    with pytest.raises(ValueError, match="command_style"):
        SimConfig(command_style="classic")  # type: ignore[arg-type]
