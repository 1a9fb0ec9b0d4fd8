"""What a person types at the console prompt, turned into AMI headers. No I/O.

Two forms reach the same packet: the book's raw lines (``Action: Ping``, more ``Name: value``
lines, then a blank line) and a short form on one line, ``MailboxCount Mailbox=123@default``
or ``Command "core show channels"``, quoted the way a shell quotes.
"""

from __future__ import annotations

import re
import shlex

Headers = list[tuple[str, str]]

# An action's main header, so that its value can be given without a name:
# `Command core show channels`, `UserEvent Hello`, `MailboxCount 123@default`.
PRIMARY_HEADERS = {
    "command": "Command",
    "userevent": "UserEvent",
    "mailboxcount": "Mailbox",
    "mailboxstatus": "Mailbox",
    "events": "EventMask",
    "getvar": "Variable",
    "status": "Channel",
    "hangup": "Channel",
    "waitevent": "Timeout",
}

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_HEADER_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*):(?:[ \t]*)(.*)")


class ShortFormError(ValueError):
    """A line that cannot become a packet; the message says how to write it."""


def is_header_line(line: str) -> bool:
    """``Name: value`` starts (or continues) a raw packet, as typed into telnet."""
    return _HEADER_LINE.fullmatch(line.strip()) is not None


def parse_header_line(line: str) -> tuple[str, str]:
    match = _HEADER_LINE.fullmatch(line.strip())
    if match is None:
        raise ShortFormError(f"not a header line: {line.strip()!r} (write Name: value)")
    return match[1], match[2].rstrip()


def parse_short(line: str) -> Headers:
    """``Action Name=Value …``: the first word is the action; bare words after it are the
    value of the action's main header (see PRIMARY_HEADERS), joined by blanks."""
    try:
        words = shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise ShortFormError(f"{exc} in {line.strip()!r}") from None
    if not words:
        raise ShortFormError("empty line")
    action, rest = words[0], words[1:]
    if not _NAME.fullmatch(action):
        raise ShortFormError(f"{action!r} is not an action name (try /help)")
    headers: Headers = [("Action", action)]
    bare: list[str] = []
    for word in rest:
        name, sep, value = word.partition("=")
        if sep and _NAME.fullmatch(name):
            headers.append((name, value))
        else:
            bare.append(word)
    if bare:
        primary = PRIMARY_HEADERS.get(action.lower())
        if primary is None:
            raise ShortFormError(
                f'{bare[0]!r}: give {action}\'s headers as Name=Value (quote values with blanks: Name="a b")'
            )
        headers.insert(1, (primary, " ".join(bare)))
    return headers
