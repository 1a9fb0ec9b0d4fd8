"""The AMI actions the simulator knows: name, the write class needed, synopsis and handler.

Handlers reply through the session (``session.send``) and raise events through the hub, in
that order, because Asterisk delivers a session's own events after the action's response.
Texts follow Asterisk 22 as captured. Originate places calls on a tiny built-in dialplan
(dialplan.py, calls.py); other actions that would need channels answer as an Asterisk with
no channels up does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from amiscript.protocol import Packet
from amiscript.sim import dialplan, perms
from amiscript.sim.calls import Call, Originate, parse_callerid, parse_variables
from amiscript.sim.clicommands import is_blacklisted, run_cli
from amiscript.sim.identity import AMI_VERSION, ASTERISK_VERSION
from amiscript.sim.messages import (
    AmiEvent,
    Headers,
    action_id,
    epoch_usec,
    error,
    local_date_time,
    render,
    response,
    success,
)
from amiscript.sim.state import mailbox_key

if TYPE_CHECKING:
    from amiscript.sim.session import Session

Handler = Callable[["Session", Packet], None]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    authority: int  # write classes of which the user needs one; 0 = anyone logged in
    synopsis: str
    handler: Handler


def find_action(name: str) -> ActionSpec | None:
    """Action names are case-insensitive but otherwise exact: ``Ping   `` is unknown."""
    return _ACTIONS.get(name.lower())


def all_actions() -> list[ActionSpec]:
    return sorted(_ACTIONS.values(), key=lambda spec: spec.name.lower())


# -- session and housekeeping -----------------------------------------------------------------


def _login(session: Session, packet: Packet) -> None:
    session.login(packet)


def _logoff(session: Session, packet: Packet) -> None:
    session.send(render(response(packet, "Goodbye", "Thanks for all the fish.")))
    session.close()


def _challenge(session: Session, packet: Packet) -> None:
    if (packet.get("AuthType") or "").lower() != "md5":
        session.send(error(packet, "Must specify AuthType"))
        return
    session.send(success(packet, None, ("Challenge", session.new_challenge())))


def _ping(session: Session, packet: Packet) -> None:
    session.send(success(packet, None, ("Ping", "Pong"), ("Timestamp", epoch_usec(session.hub.clock()))))


def _events(session: Session, packet: Packet) -> None:
    mask = perms.parse_event_mask(packet.get("EventMask") or "")
    if mask is None:
        session.send(error(packet, "Invalid event mask"))
        return
    session.event_mask = mask
    session.send(success(packet, None, ("Events", "On" if mask else "Off")))


def _list_commands(session: Session, packet: Packet) -> None:
    rows = [
        (spec.name, f"{spec.synopsis}  (Priv: {perms.privilege_text(spec.authority)})")
        for spec in all_actions()
        if spec.authority == 0 or session.write_classes & spec.authority
    ]
    session.send(render(response(packet, "Success", None, *rows)))


_INTEGER = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _c_int(text: str) -> int | None:
    """sscanf("%i"): leading blanks, sign, hex/octal/decimal prefix; trailing text ignored."""
    match = _INTEGER.match(text)
    if not match:
        return None
    sign, digits = match.groups()
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if sign == "-" else value


def _c_decimal(text: str) -> int | None:
    """sscanf("%d"): like _c_int but always base 10 (Originate's Priority and Timeout)."""
    match = re.match(r"\s*([+-]?[0-9]+)", text)
    return int(match[1]) if match else None


def _wait_event(session: Session, packet: Packet) -> None:
    timeout = _c_int(packet.get("Timeout") or "")
    session.begin_wait(packet, -1 if timeout is None or timeout < -1 else timeout)


def _user_event(session: Session, packet: Packet) -> None:
    name = packet.get("UserEvent") or ""
    # Asterisk copies every other header line, ActionID included.
    body = [(key, value) for key, value in packet if key.lower() not in ("userevent", "action")]
    session.send(success(packet, "Event Sent"))
    session.publish(AmiEvent.build("UserEvent", perms.USER, [("UserEvent", name), *body]))


# -- voicemail --------------------------------------------------------------------------------


def _mailbox_count(session: Session, packet: Packet) -> None:
    spec = packet.get("Mailbox") or ""
    if not spec:
        session.send(error(packet, "Mailbox not specified"))
        return
    parts = [part for part in re.split(r"[, ]", spec) if part] if "," in spec else [spec]
    urgent = new = old = 0
    for part in parts:
        box = session.hub.config.mailboxes.get(mailbox_key(part))
        if box is not None:  # an unknown mailbox simply has no messages
            urgent, new, old = urgent + box.urgent, new + box.new, old + box.old
    session.send(
        success(
            packet,
            "Mailbox Message Count",
            ("Mailbox", spec),
            ("UrgMessages", str(urgent)),
            ("NewMessages", str(new)),
            ("OldMessages", str(old)),
        )
    )


def _mailbox_status(session: Session, packet: Packet) -> None:
    spec = packet.get("Mailbox") or ""
    if not spec:
        session.send(error(packet, "Mailbox not specified"))
        return
    waiting = 0
    for part in (part for part in re.split(r"[,&]", spec) if part):
        box = session.hub.config.mailboxes.get(mailbox_key(part))
        if box is not None and (box.new or box.urgent):
            waiting = 1
    session.send(success(packet, "Mailbox Status", ("Mailbox", spec), ("Waiting", str(waiting))))


# app_voicemail's defaults for what the state file does not say (no [general] overrides):
# serveremail "asterisk", mailcmd SENDMAIL, saydurationm 2, envelope and attach on, maxmsg 100.
# The e-mail address is a NULL pointer when voicemail.conf gives none, and glibc prints it
# as "(null)"; the state file has no e-mail addresses, so every mailbox shows that.
_VOICEMAIL_DEFAULTS_BEFORE_COUNTS = (
    ("Email", "(null)"),
    ("Pager", ""),
    ("ServerEmail", "asterisk"),
    ("FromString", ""),
    ("MailCommand", "/usr/sbin/sendmail -t"),
    ("Language", ""),
    ("TimeZone", ""),
    ("Callback", ""),
    ("Dialout", ""),
    ("UniqueID", ""),
    ("ExitContext", ""),
    ("SayDurationMinimum", "2"),
    ("SayEnvelope", "Yes"),
    ("SayCID", "No"),
    ("AttachMessage", "Yes"),
    ("AttachmentFormat", ""),
    ("DeleteMessage", "No"),
    ("VolumeGain", "0.00"),
    ("CanReview", "No"),
    ("CallOperator", "No"),
    ("MaxMessageCount", "100"),
    ("MaxMessageLength", "0"),
)


def _voicemail_users_list(session: Session, packet: Packet) -> None:
    """manager_list_voicemail_users: a list ack, one VoicemailUserEntry per mailbox, a count.

    The entries are part of the answer (astman_append), not events: no Privilege header, and
    the ActionID comes right after the Event line.
    """
    boxes = list(session.hub.config.mailboxes.values())
    if not boxes:
        session.send(success(packet, "There are no voicemail users currently defined."))
        return
    session.send(_list_ack(packet, "Voicemail user list will follow"))
    aid = action_id(packet)
    for box in boxes:
        entry: Headers = [("Event", "VoicemailUserEntry")]
        if aid:
            entry.append(("ActionID", aid))
        entry += [("VMContext", box.context), ("VoiceMailbox", box.box), ("Fullname", box.name)]
        entry += _VOICEMAIL_DEFAULTS_BEFORE_COUNTS
        # inboxcount() counts urgent messages as new ones, as MailboxCount's NewMessages does not.
        entry += [("NewMessageCount", str(box.new + box.urgent)), ("OldMessageCount", str(box.old))]
        session.send(render(entry))
    session.send(_list_complete(packet, "VoicemailUserEntryComplete", len(boxes)))


# -- CLI and system ---------------------------------------------------------------------------


def _command(session: Session, packet: Packet) -> None:
    command = packet.get("Command") or ""
    if not command:
        session.send(error(packet, "No command provided"))
        return
    if is_blacklisted(command):
        session.send(error(packet, "Command blacklisted"))
        return
    result = run_cli(session.hub, command)
    if session.hub.config.command_style == "follows":
        session.send(_follows(packet, result.text))
        return
    text = result.text[:-1] if result.text.endswith("\n") else result.text
    outputs = [("Output", line) for line in text.split("\n")] if text else []
    status = "Success" if result.ok else "Error"
    session.send(render(response(packet, status, "Command output follows", *outputs)))


def _follows(packet: Packet, output: str) -> bytes:
    """Asterisk 13's action_command: the CLI's own bytes (LF line ends) between the headers and
    ``--END COMMAND--``. Even an unknown command is a ``Follows``, its complaint the output."""
    head = "Response: Follows\r\nPrivilege: Command\r\n"
    if action_id(packet):
        head += f"ActionID: {action_id(packet)}\r\n"
    return (head + output + "--END COMMAND--\r\n\r\n").encode("utf-8", "surrogateescape")


def _core_settings(session: Session, packet: Packet) -> None:
    session.send(
        success(
            packet,
            None,
            ("AMIversion", AMI_VERSION),
            ("AsteriskVersion", ASTERISK_VERSION),
            ("SystemName", ""),
            ("CoreMaxCalls", "0"),
            ("CoreMaxLoadAvg", "0.000000"),
            ("CoreRunUser", ""),
            ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"),
            ("CoreRealTimeEnabled", "No"),
            ("CoreCDRenabled", "Yes"),
            ("CoreHTTPenabled", "No"),
            ("SoundsSearchCustomDir", "No"),
        )
    )


def _core_status(session: Session, packet: Packet) -> None:
    date, clock = local_date_time(session.hub.started_at)
    session.send(
        success(
            packet,
            None,
            ("CoreStartupDate", date),
            ("CoreStartupTime", clock),
            ("CoreReloadDate", date),
            ("CoreReloadTime", clock),
            ("CoreCurrentCalls", "0"),
            ("CoreProcessedCalls", "0"),
        )
    )


def _list_ack(packet: Packet, message: str) -> bytes:
    """astman_send_listack: the EventList header comes before the Message."""
    headers = response(packet, "Success")
    headers += [("EventList", "start"), ("Message", message)]
    return render(headers)


def _list_complete(packet: Packet, event: str, count: int, *more: tuple[str, str]) -> bytes:
    headers: Headers = [("Event", event)]
    if action_id(packet):
        headers.append(("ActionID", action_id(packet)))
    headers += [("EventList", "Complete"), ("ListItems", str(count)), *more]
    return render(headers)


def _status(session: Session, packet: Packet) -> None:
    if packet.get("Channel"):
        session.send(error(packet, "No such channel"))  # the simulator has no channels
        return
    session.send(_list_ack(packet, "Channel status will follow"))
    session.send(_list_complete(packet, "StatusComplete", 0, ("Items", "0")))


def _originate(session: Session, packet: Packet) -> None:
    """action_originate: check the arguments, then place the call (calls.py) on the built-in dialplan.

    Async answers "queued" at once and reports the outcome in an OriginateResponse event;
    otherwise the session waits for the outcome, as Asterisk's session thread does.
    """
    channel = packet.get("Channel") or ""
    if not channel:
        session.send(error(packet, "Channel not specified"))
        return
    context = packet.get("Context") or ""
    exten = packet.get("Exten") or ""
    priority_text = packet.get("Priority") or ""
    priority = 0
    if priority_text:
        parsed = _c_decimal(priority_text)
        if parsed is None:  # not a number: a label, and the dialplan has none
            session.send(error(packet, "Invalid priority"))
            return
        priority = parsed
    timeout = packet.get("Timeout") or ""
    if timeout and _c_decimal(timeout) is None:
        session.send(error(packet, "Invalid timeout"))
        return
    if "/" not in channel:
        session.send(error(packet, "Invalid channel"))
        return
    cid_num, cid_name = parse_callerid(packet.get("CallerID") or "")
    # "Check early if the extension exists": only when a priority was given (pi != 0).
    if priority and not dialplan.exists(context, exten, priority):
        session.send(error(packet, "Extension does not exist."))
        return
    app = packet.get("Application") or ""
    sync = not _is_true(packet.get("Async") or "")
    if sync and not app and not priority:
        session.send(error(packet, "Originate with 'Exten' requires 'Context' and 'Priority'"))
        return
    request = Originate(
        channel=channel,
        context=context,
        exten=exten,
        priority=priority,
        app=app,
        app_data=packet.get("Data") or "",
        cid_num=cid_num,
        cid_name=cid_name,
        variables=parse_variables(packet.get_all("Variable")),
        action_id=action_id(packet),
        sync=sync,
    )
    if not sync:
        session.send(success(packet, "Originate successfully queued"))
        Call(session.hub, request).start()
        return
    answer = session.hold()

    def report(answered: bool) -> None:
        answer(success(packet, "Originate successfully queued") if answered else error(packet, "Originate failed"))

    Call(session.hub, request, on_result=report).start()


def _is_true(text: str) -> bool:
    """ast_true: yes, true, y, t, 1 and on, in any case."""
    return text.strip().lower() in ("yes", "true", "y", "t", "1", "on")


# -- variables and AstDB ----------------------------------------------------------------------


def _global_variable(session: Session, packet: Packet) -> str | None:
    """The Variable header of GetVar/SetVar, or None after answering the error Asterisk gives."""
    name = packet.get("Variable") or ""
    if not name:
        session.send(error(packet, "No variable specified"))
        return None
    if packet.get("Channel"):
        session.send(error(packet, "No such channel"))
        return None
    return name


def _get_var(session: Session, packet: Packet) -> None:
    name = _global_variable(session, packet)
    if name is None:
        return
    # Dialplan functions (names ending in ")") are not simulated and read as empty.
    value = "" if name.endswith(")") else session.hub.global_vars.get(name, "")
    session.send(success(packet, None, ("Variable", name), ("Value", value)))


def _set_var(session: Session, packet: Packet) -> None:
    name = _global_variable(session, packet)
    if name is None:
        return
    value = packet.get("Value") or ""
    session.hub.global_vars[name] = value
    session.send(success(packet, "Variable Set"))
    session.publish(
        AmiEvent.build(
            "VarSet",
            perms.DIALPLAN,
            [("Channel", "none"), ("Uniqueid", "none"), ("Variable", name), ("Value", value)],
        )
    )


def _db_key(session: Session, packet: Packet, period: str) -> tuple[str, str] | None:
    family = packet.get("Family") or ""
    key = packet.get("Key") or ""
    if not family:
        session.send(error(packet, f"No family specified{period}"))
        return None
    if not key:
        session.send(error(packet, f"No key specified{period}"))
        return None
    return family, key


def _db_put(session: Session, packet: Packet) -> None:
    where = _db_key(session, packet, "")
    if where is not None:
        session.hub.astdb[where] = packet.get("Val") or ""
        session.send(success(packet, "Updated database successfully"))


def _db_get(session: Session, packet: Packet) -> None:
    where = _db_key(session, packet, ".")
    if where is None:
        return
    value = session.hub.astdb.get(where)
    if value is None:
        session.send(error(packet, "Database entry not found"))
        return
    session.send(_list_ack(packet, "Result will follow"))
    row: Headers = [("Event", "DBGetResponse"), ("Family", where[0]), ("Key", where[1]), ("Val", value)]
    if action_id(packet):
        row.append(("ActionID", action_id(packet)))
    session.send(render(row))
    session.send(_list_complete(packet, "DBGetComplete", 1))


def _db_del(session: Session, packet: Packet) -> None:
    where = _db_key(session, packet, ".")
    if where is None:
        return
    if session.hub.astdb.pop(where, None) is None:
        session.send(error(packet, "Database entry could not be deleted"))
    else:
        session.send(success(packet, "Key deleted successfully"))


_SPECS = (
    ActionSpec("Challenge", 0, "Generate Challenge for MD5 Auth.", _challenge),
    ActionSpec("Command", perms.COMMAND, "Execute Asterisk CLI Command.", _command),
    ActionSpec("CoreSettings", perms.SYSTEM | perms.REPORTING, "Show PBX core settings (version etc).", _core_settings),
    ActionSpec("CoreStatus", perms.SYSTEM | perms.REPORTING, "Show PBX core status variables.", _core_status),
    ActionSpec("DBDel", perms.SYSTEM, "Delete DB entry.", _db_del),
    ActionSpec("DBGet", perms.SYSTEM | perms.REPORTING, "Get DB Entry.", _db_get),
    ActionSpec("DBPut", perms.SYSTEM, "Put DB entry.", _db_put),
    ActionSpec("Events", 0, "Control Event Flow.", _events),
    ActionSpec("Getvar", perms.CALL | perms.REPORTING, "Gets a channel variable or function value.", _get_var),
    ActionSpec("ListCommands", 0, "List available manager commands.", _list_commands),
    ActionSpec("Login", 0, "Login Manager.", _login),
    ActionSpec("Logoff", 0, "Logoff Manager.", _logoff),
    ActionSpec("MailboxCount", perms.CALL | perms.REPORTING, "Check Mailbox Message Count.", _mailbox_count),
    ActionSpec("MailboxStatus", perms.CALL | perms.REPORTING, "Check mailbox.", _mailbox_status),
    ActionSpec("Originate", perms.ORIGINATE, "Originate a call.", _originate),
    ActionSpec("Ping", 0, "Keepalive command.", _ping),
    ActionSpec("Setvar", perms.CALL, "Sets a channel variable or function value.", _set_var),
    ActionSpec("Status", perms.SYSTEM | perms.CALL | perms.REPORTING, "List channel status.", _status),
    ActionSpec("UserEvent", perms.USER, "Send an arbitrary event.", _user_event),
    ActionSpec(
        "VoicemailUsersList",
        perms.CALL | perms.REPORTING,
        "List All Voicemail User Information.",
        _voicemail_users_list,
    ),
    ActionSpec("WaitEvent", 0, "Wait for an event to occur.", _wait_event),
)
_ACTIONS = {spec.name.lower(): spec for spec in _SPECS}
