"""Text with ``${name}``, ``${item.Header}`` and ``${env:NAME}`` references, parsed once.

``$$`` is a literal dollar; any other ``$`` is kept as written, so regexes such as
``Success$`` need no escaping. A variable holds text, or (from an AMI list or a `foreach`)
a list of items or one item, an item being the headers of one event: ``${item.Header}``
reads one header of an item.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from amiscript.errors import Location, ScriptError
from amiscript.script.paths import is_file, no_nul

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Item = dict[str, str]
Value = str | list[Item] | Item
_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a script variable, or to an environment variable when ``env``."""

    name: str
    env: bool = False  # from outside the script: the environment, or a file when `file`
    key: str | None = None  # ${item.Header}: one header of an item
    file: bool = False  # ${file:PATH}: the contents of a file (a secret kept out of argv and scripts)

    def __str__(self) -> str:
        if self.file:
            return f"${{file:{self.name}}}"
        if self.env:
            return f"${{env:{self.name}}}"
        return f"${{{self.name}.{self.key}}}" if self.key else f"${{{self.name}}}"


@dataclass(frozen=True, slots=True)
class Template:
    raw: str
    parts: tuple[str | Ref, ...]
    location: Location

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(part for part in self.parts if isinstance(part, Ref))

    @property
    def is_literal(self) -> bool:
        return not self.refs

    def render(
        self,
        values: Mapping[str, Value],
        *,
        escape: Callable[[Ref, str], str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> str:
        """Substitute references; ``escape`` sees each substituted value (and whose it is)."""
        env = os.environ if environ is None else environ
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = lookup(part, values, env, self.location)
            out.append(escape(part, value) if escape else value)
        return "".join(out)


def read_file_value(path: str, where: Location) -> str:
    """A ${file:PATH} value: the file's text without its final newline."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1 << 16)
    except OSError as exc:
        raise ScriptError(
            f"cannot read {path!r} for ${{file:{path}}}: {exc.strerror or exc}", where, hint="check the path"
        ) from None
    except UnicodeDecodeError:
        raise ScriptError(f"{path!r} (for ${{file:{path}}}) is not UTF-8 text", where) from None
    return text[:-1] if text.endswith("\n") else text


def connect_file(key: str, value: str, script_file: str, where: Location) -> str:
    """A file `connect:` names (cacert, cert, key): relative to the script's folder, as an include
    is, so a script runs from any directory; one that does not exist is reported where it is written."""
    path = Path(value).expanduser()
    found = path if path.is_absolute() else Path(script_file).parent / path
    no_nul(value, f"the {key} path", where)
    if not is_file(found):
        raise ScriptError(
            f"{key} file {str(found)!r} does not exist",
            where,
            hint="a path in `connect:` is relative to the script's folder",
        )
    return str(found)


def lookup(ref: Ref, values: Mapping[str, Value], env: Mapping[str, str], where: Location) -> str:
    if ref.file:
        return read_file_value(ref.name, where)
    if ref.env:
        if ref.name not in env:
            raise ScriptError(
                f"environment variable {ref.name} is not set (used as {ref})",
                where,
                hint=f"export {ref.name}=... before running",
            )
        return env[ref.name]
    if ref.name not in values:
        raise ScriptError(
            f"variable {ref.name!r} has no value yet (used as {ref})",
            where,
            hint="set it with `set:`, capture it with a named group before this step, or give it a default",
        )
    value = values[ref.name]
    if isinstance(value, list):
        raise ScriptError(
            f"variable {ref.name!r} is a list of {len(value)} items, not text (used as {ref})",
            where,
            hint=f"use `foreach: ${{{ref.name}}}` or len({ref.name}) in an assert",
        )
    if isinstance(value, dict):
        if ref.key is None:
            raise ScriptError(
                f"variable {ref.name!r} is an item with headers, not text (used as {ref})",
                where,
                hint=f"read one header, such as ${{{ref.name}.{next(iter(value), 'Event')}}}",
            )
        for header, text in value.items():
            if header.lower() == ref.key.lower():
                return text
        raise ScriptError(
            f"item {ref.name!r} has no header {ref.key!r} (used as {ref})",
            where,
            hint=f"its headers are: {', '.join(value) or 'none'}",
        )
    if ref.key is not None:
        raise ScriptError(f"variable {ref.name!r} is text, not an item with headers (used as {ref})", where)
    return value


def parse_template(text: str, where: Location) -> Template:
    parts: list[str | Ref] = []
    literal: list[str] = []
    pos = 0
    for token in _TOKEN.finditer(text):
        literal.append(text[pos : token.start()])
        pos = token.end()
        if token.group(0) == "$$":
            literal.append("$")
            continue
        if token.group(1) is None:
            raise ScriptError("`${` without a closing `}`", where, hint="write `$${` for a literal `${`")
        ref = _parse_ref(token.group(1), where)
        text_before = "".join(literal)
        if text_before:
            parts.append(text_before)
        literal = []
        parts.append(ref)
    literal.append(text[pos:])
    tail = "".join(literal)
    if tail:
        parts.append(tail)
    return Template(text, tuple(parts), where)


def _parse_ref(inner: str, where: Location) -> Ref:
    inner = inner.strip()
    if inner.startswith("file:"):
        path = inner[5:].strip()
        if not path:
            raise ScriptError(f"`${{{inner}}}` names no file", where, hint="${file:/etc/amiscript/secret}")
        no_nul(path, "the ${file:} path", where)
        return Ref(path, env=True, file=True)
    if inner.startswith("env:"):
        name = inner[4:].strip()
        if not NAME.fullmatch(name):
            raise ScriptError(f"invalid environment variable name in `${{{inner}}}`", where)
        return Ref(name, env=True)
    name, dot, key = inner.partition(".")
    if not NAME.fullmatch(name) or (dot and not key.strip()):
        raise ScriptError(
            f"invalid variable reference `${{{inner}}}`",
            where,
            hint="names are letters, digits and _; an item's header is ${item.Header}; "
            "environment variables are ${env:NAME}; a file's contents ${file:PATH}",
        )
    return Ref(name, key=key.strip() if dot else None)
