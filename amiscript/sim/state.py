"""The voicemail state the simulator answers from: a YAML file of mailboxes and counts.

::

    mailboxes:
      "123@default": {new: 2, old: 1, urgent: 0, name: Test User}
      "200@sales": {new: 5}

The file is read node by node (``yaml.compose``) rather than with ``safe_load`` so that every
error has a line and column, duplicate mailboxes are caught, and a key such as ``0123`` stays
the text that was written instead of becoming the number 83.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from amiscript.errors import Location, ScriptError

DEFAULT_CONTEXT = "default"
_COUNT_FIELDS = ("new", "old", "urgent")
_FIELDS = (*_COUNT_FIELDS, "name")


@dataclass(frozen=True, slots=True)
class Mailbox:
    """Message counts of one mailbox; ``name`` is the owner shown by ``voicemail show users``."""

    box: str
    context: str
    new: int = 0
    old: int = 0
    urgent: int = 0
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.box}@{self.context}"


def mailbox_key(spec: str) -> str:
    """``123`` and ``123@default`` name the same mailbox: Asterisk's app_voicemail defaults the context."""
    box, at, context = spec.partition("@")
    return f"{box}@{context if at else DEFAULT_CONTEXT}"


def load_state(path: str | Path) -> dict[str, Mailbox]:
    """Read a state file into mailboxes keyed ``box@context``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ScriptError(f"cannot read state file {str(path)!r}: {reason}", Location(str(path), 1)) from None
    except UnicodeDecodeError:
        raise ScriptError("state file is not valid UTF-8", Location(str(path), 1)) from None
    return parse_state(text, str(path))


def parse_state(text: str, filename: str) -> dict[str, Mailbox]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _location(filename, mark) if mark else Location(filename, 1)
        raise ScriptError(f"state file is not valid YAML: {exc.problem or exc}", where) from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"state file is not valid YAML: {exc}", Location(filename, 1)) from None
    if root is None:
        return {}
    top = _mapping(root, filename, "the state file")
    mailboxes: dict[str, Mailbox] = {}
    for key_node, value_node in top:
        key = _string(key_node, filename, "a top-level key")
        if key != "mailboxes":
            where = _location(filename, key_node.start_mark)
            raise ScriptError(f"unknown top-level key {key!r} (expected 'mailboxes')", where)
        if _is_null(value_node):
            continue
        seen: dict[str, Location] = {}
        for box_node, counts_node in _mapping(value_node, filename, "'mailboxes'"):
            where = _location(filename, box_node.start_mark)
            spec = _string(box_node, filename, "a mailbox name")
            if not spec or spec.startswith("@"):
                raise ScriptError(f"invalid mailbox name {spec!r} (expected 'box' or 'box@context')", where)
            key = mailbox_key(spec)
            if key in seen:
                raise ScriptError(f"mailbox {key} is listed twice (first at {seen[key]})", where)
            seen[key] = where
            mailboxes[key] = _mailbox(key, counts_node, filename)
    return mailboxes


def _mailbox(key: str, node: yaml.Node, filename: str) -> Mailbox:
    box, _, context = key.partition("@")
    values: dict[str, int | str] = {}
    if not _is_null(node):
        for field_node, value_node in _mapping(node, filename, f"mailbox {key}"):
            name = _string(field_node, filename, "a mailbox field")
            where = _location(filename, field_node.start_mark)
            if name not in _FIELDS:
                raise ScriptError(f"unknown field {name!r} for mailbox {key} (expected {', '.join(_FIELDS)})", where)
            if name in values:
                raise ScriptError(f"field {name!r} is given twice for mailbox {key}", where)
            if name == "name":
                values[name] = "" if _is_null(value_node) else _string(value_node, filename, "'name'")
                continue
            text = _string(value_node, filename, f"'{name}'")
            if not (text.isascii() and text.isdigit()):
                raise ScriptError(
                    f"'{name}' of mailbox {key} must be a whole number >= 0, not {text!r}",
                    _location(filename, value_node.start_mark),
                )
            values[name] = int(text)
    return Mailbox(box, context, **values)  # type: ignore[arg-type]


def _mapping(node: yaml.Node, filename: str, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise ScriptError(f"{what} must be a mapping", _location(filename, node.start_mark))
    return node.value


def _string(node: yaml.Node, filename: str, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ScriptError(f"{what} must be a plain value", _location(filename, node.start_mark))
    return node.value


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _location(filename: str, mark: yaml.Mark) -> Location:
    return Location(filename, mark.line + 1, mark.column + 1)
