"""AMI permission classes, as bit flags with Asterisk's names and order.

One set of flags serves three purposes, exactly as in Asterisk's manager.c: a user's ``read``
classes (which events reach them), ``write`` classes (which actions they may run) and an
event's category (printed as its ``Privilege:`` header).
"""

from __future__ import annotations

# In the order Asterisk prints them; the order matters for "Privilege: call,reporting,all".
CLASSES: tuple[tuple[str, int], ...] = (
    ("system", 1 << 0),
    ("call", 1 << 1),
    ("log", 1 << 2),
    ("verbose", 1 << 3),
    ("command", 1 << 4),
    ("agent", 1 << 5),
    ("user", 1 << 6),
    ("config", 1 << 7),
    ("dtmf", 1 << 8),
    ("reporting", 1 << 9),
    ("cdr", 1 << 10),
    ("dialplan", 1 << 11),
    ("originate", 1 << 12),
    ("agi", 1 << 13),
    ("cc", 1 << 15),
    ("aoc", 1 << 16),
    ("test", 1 << 17),
    ("security", 1 << 18),
    ("message", 1 << 19),
)
ALL = 0x7FFFFFFF  # Asterisk's "all" is INT_MAX: every class, present and future
NONE = 0

_BY_NAME = dict(CLASSES)
SYSTEM = _BY_NAME["system"]
CALL = _BY_NAME["call"]
COMMAND = _BY_NAME["command"]
USER = _BY_NAME["user"]
CONFIG = _BY_NAME["config"]
REPORTING = _BY_NAME["reporting"]
DIALPLAN = _BY_NAME["dialplan"]
ORIGINATE = _BY_NAME["originate"]
SECURITY = _BY_NAME["security"]

_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})


def parse_classes(text: str) -> int:
    """A comma-separated class list (``read =``/``write =`` in manager.conf) as flags.

    Like Asterisk's get_perm: names are exact and case-sensitive, unknown names are ignored
    (Asterisk does not warn either), ``all`` grants everything and ``none`` adds nothing.
    """
    mask = NONE
    for token in text.split(","):
        if token == "all":
            mask |= ALL
        elif token in _BY_NAME:
            mask |= _BY_NAME[token]
    return mask


def parse_event_mask(text: str) -> int | None:
    """An ``EventMask:`` (or Login ``Events:``) value as flags; None when it is empty.

    Follows strings_to_mask: digits are a raw number, a false word turns events off, a true
    word turns all on, anything else is a class list.
    """
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    lowered = text.lower()
    if lowered in _FALSE:
        return NONE
    if lowered in _TRUE:
        return ALL
    return parse_classes(text)


def privilege_text(category: int) -> str:
    """The ``Privilege:`` value for an event category or action authority (``system,all``)."""
    names = [name for name, bit in CLASSES if category & bit]
    if category & ALL:
        names.append("all")
    return ",".join(names) if names else "<none>"
