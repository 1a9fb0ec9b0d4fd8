"""Tab completion: action names from the server's ListCommands answer, header names where
known, and the console's own /commands. Pure: readline's callback is a thin shell over it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from amiscript.protocol import Packet

CONSOLE_COMMANDS = ("/help", "/events", "/filter", "/record", "/quit")

# Headers of common actions (Asterisk's documentation of each action); ActionID goes with all.
KNOWN_HEADERS: dict[str, tuple[str, ...]] = {
    "command": ("Command",),
    "coresettings": (),
    "corestatus": (),
    "dbdel": ("Family", "Key"),
    "dbget": ("Family", "Key"),
    "dbput": ("Family", "Key", "Val"),
    "events": ("EventMask",),
    "getvar": ("Channel", "Variable"),
    "hangup": ("Channel", "Cause"),
    "listcommands": (),
    "mailboxcount": ("Mailbox",),
    "mailboxstatus": ("Mailbox",),
    "originate": (
        "Channel",
        "Exten",
        "Context",
        "Priority",
        "Application",
        "Data",
        "Timeout",
        "CallerID",
        "Variable",
        "Account",
        "Async",
        "Codecs",
    ),
    "ping": (),
    "setvar": ("Channel", "Variable", "Value"),
    "status": ("Channel", "Variables", "AllVariables"),
    "userevent": ("UserEvent",),
    "voicemailuserslist": (),
    "waitevent": ("Timeout",),
}

_NOT_ACTIONS = {"response", "actionid", "message", "eventlist"}


def actions_from_list_commands(answer: Packet) -> list[str]:
    """ListCommands answers ``Name: synopsis (Priv: …)`` for each action the user may send."""
    return sorted({name for name, _ in answer.headers if name.lower() not in _NOT_ACTIONS}, key=str.lower)


class Completer:
    def __init__(self, actions: Iterable[str] = ()) -> None:
        self.actions = sorted(set(actions) | {"Login", "Logoff"}, key=str.lower)

    def candidates(self, line: str, begidx: int, word: str, *, raw_action: str | None = None) -> list[str]:
        """What may replace ``word``, which starts at ``begidx`` of the line typed so far.

        ``raw_action`` is the action of a raw packet being typed line by line (after its
        ``Action:`` line): then each line starts with a header name of that action.
        """
        before = line[:begidx]
        first = before.split()[0] if before.split() else ""
        if first.endswith(":") or (first and ":" in first):
            return _starting(self.actions, word) if first.split(":")[0].lower() == "action" else []
        if not first:
            if word.startswith("/"):
                return _starting(CONSOLE_COMMANDS, word, suffix=" ")
            if raw_action is not None:
                return _starting([*self.headers_of(raw_action), "ActionID"], word, suffix=": ")
            return _starting(self.actions, word, suffix=" ") + _starting(("Action",), word, suffix=": ")
        if first.startswith("/"):
            return _starting(("on", "off"), word) if first == "/events" else []
        if "=" in word:
            return []
        return _starting([*self.headers_of(first), "ActionID"], word, suffix="=")

    def headers_of(self, action: str) -> Sequence[str]:
        return KNOWN_HEADERS.get(action.lower(), ())


def _starting(options: Iterable[str], word: str, *, suffix: str = "") -> list[str]:
    lowered = word.lower()
    return [option + suffix for option in options if option.lower().startswith(lowered)]
