"""Safe YAML loading that keeps positions and never rewrites what the author typed.

PyYAML's ``safe_load`` follows YAML 1.1: ``Events: off`` becomes ``False``, ``0012`` becomes
``10``, ``on:`` as a key becomes ``True``, duplicate keys silently keep the last value. Here
every scalar stays the exact string written; the schema decides later what a number or a
boolean is. Tags are refused (so no Python object can ever be built), duplicate keys are an
error naming both places, and aliases count toward a node budget so an alias bomb is refused.
"""

from __future__ import annotations

import contextlib
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from amiscript.errors import Location, ScriptError

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 20_000  # the shipped scripts have a few hundred; this many parse in well under a second
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")  # only a "\uD800" escape makes one; no byte can be sent for it
_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class YStr(str):
    """A scalar with the place it was written."""

    location: Location
    quoted: bool
    style: str | None  # None (plain), "'", '"', "|" or ">"


class YMap(dict):  # type: ignore[type-arg]
    """A mapping with its own place and the place of each key."""

    location: Location
    key_locations: dict[str, Location]
    flow = False  # written `{a: 1, b: 2}`, where a comma ends a plain value


class YList(list):  # type: ignore[type-arg]
    location: Location


YNode = YStr | YMap | YList


class _Limited:
    """Counts nodes and nesting as they are composed, so a file of many tiny nodes (``[x, x,
    …]``) or of ``[[[[…`` is refused at the limit, before PyYAML spends seconds and hundreds of
    MB on the rest (or runs out of stack). A mixin for both loaders below, ahead of Composer."""

    composed = 0
    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self.composed += 1
        if self.composed > MAX_NODES:
            raise _OverLimit(_TOO_MANY, self.peek_event().start_mark)  # type: ignore[attr-defined]
        if self.depth >= MAX_DEPTH:
            raise _OverLimit(_TOO_DEEP, self.peek_event().start_mark)  # type: ignore[attr-defined]
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[misc,no-any-return]
        finally:
            self.depth -= 1


class _PlainLoader(_Limited, yaml.SafeLoader):
    """PyYAML's own parser with no implicit type resolution: every plain scalar is tagged str."""


class _OverLimit(Exception):
    def __init__(self, message: str, mark: yaml.Mark) -> None:
        self.message = message
        self.mark = mark


_TOO_MANY = f"more than {MAX_NODES} YAML nodes (an alias bomb?); refusing to load"
_TOO_DEEP = f"YAML nested deeper than {MAX_DEPTH} levels; refusing to load"


_PlainLoader.yaml_implicit_resolvers = {}

try:  # libyaml's parser, where PyYAML was built with it: parsing a script is then ~5x faster
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    _FastLoader: type | None = None
else:

    class _FastLoader(_Limited, Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """libyaml's parser under PyYAML's own composer (plain Python recursion, so deep nesting
        still ends in RecursionError rather than in C), with no implicit type resolution."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _FastLoader.yaml_implicit_resolvers = {}


@dataclass
class _Budget:
    nodes: int = 0


# Each kind of YAML file amiscript reads, named in its errors, and what it needs to hold:
# a vars file that is empty or a folder is not a script.
KINDS = {
    "script": ("a script file", "a script needs at least `steps:`"),
    "vars file": ("a vars file", "a vars file is a mapping of names to values, such as `mailbox: 123@default`"),
    "inventory": ("an inventory file", "an inventory needs `targets:`, a list of {name, url, vars}"),
}


def load_yaml_file(path: Path, display: str | None = None, kind: str = "script") -> YNode:
    """Read and parse ``path``, a ``kind`` (a key of KINDS); every problem is a ScriptError with
    file:line:col that names the kind of file it is about."""
    name = display or str(path)
    raw = _read_limited(path, name, kind)
    whole = Location(name, 0)
    if len(raw) > MAX_FILE_BYTES:
        raise ScriptError(
            f"file is larger than {MAX_FILE_BYTES // 1024} KiB; refusing to load it",
            whole,
            hint="is this the right file? keep long lists of data in a --vars-file",
        )
    if b"\0" in raw:
        raise ScriptError(f"binary file (contains NUL bytes), not a YAML {kind}", whole, hint="is this the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(
            f"not UTF-8 text (bad byte at offset {exc.start})", whole, hint="save the file as UTF-8"
        ) from None
    return parse_yaml(text, name, kind)


def _read_limited(path: Path, name: str, kind: str) -> bytes:
    """Read at most one byte past the limit, and only from a regular file.

    A FIFO would block forever and /dev/zero would never end: refuse them before reading.
    """
    whole = Location(name, 0)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            what = "a directory" if path.is_dir() else "not a regular file"
            raise ScriptError(f"{what}, not {KINDS[kind][0]}", whole, hint="check the path")
        with path.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScriptError("no such file", whole, hint="check the path") from None
    except OSError as exc:
        raise ScriptError(f"cannot read: {exc.strerror or exc}", whole, hint="check the path") from None


def parse_yaml(text: str, name: str, kind: str = "script") -> YNode:
    try:
        nodes = None
        if _FastLoader is not None and "\t" not in text:  # libyaml takes tabs PyYAML refuses
            # Anything libyaml refuses is parsed again by PyYAML, whose messages the errors quote.
            with contextlib.suppress(yaml.YAMLError, UnicodeError):
                nodes = list(yaml.compose_all(text, Loader=_FastLoader))
        if nodes is None:
            nodes = list(yaml.compose_all(text, Loader=_PlainLoader))
    except yaml.MarkedYAMLError as exc:
        problem = (exc.problem or "invalid YAML").replace("'<stream end>'", "the end of the file")
        mark = exc.problem_mark
        # Ran off the end of the file: what is unclosed is where its context began.
        if exc.context_mark is not None and (mark is None or "end of the file" in problem):
            mark = exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1)
        context = f" {exc.context}" if exc.context and mark is exc.context_mark else ""
        raise ScriptError(f"YAML syntax error{context}: {problem}", where, hint=_syntax_hint(problem)) from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"YAML error: {exc}", Location(name, 0)) from None
    except _OverLimit as exc:
        raise _over_limit(exc.message, _loc(name, exc.mark)) from None
    except RecursionError:
        raise ScriptError("YAML nested too deeply; refusing to load", Location(name, 0)) from None
    if not nodes or nodes[0] is None:
        raise ScriptError("the file is empty", Location(name, 0), hint=KINDS[kind][1])
    if len(nodes) > 1:
        second = nodes[1]
        raise ScriptError(
            f"more than one YAML document (`---`) in a {kind}",
            _loc(name, second.start_mark) if second is not None else Location(name, 1),
            hint=f"one {kind} per file: remove the `---` and what follows, or split the file",
        )
    return _build(nodes[0], name, _Budget(), 0)


def _over_limit(message: str, where: Location) -> ScriptError:
    hint = "keep long lists of data in a --vars-file" if message is _TOO_MANY else "split it with `include:`"
    return ScriptError(message, where, hint=hint)


def _syntax_hint(problem: str) -> str:
    if "'\\t'" in problem:
        return "indent with spaces, not tabs"
    if "unknown escape character" in problem:
        return "in double quotes a backslash starts an escape; write regexes in single quotes: 'Response:\\s*'"
    if "end of the file" in problem:
        return "a bracket or quote opened here is never closed"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ', e.g. print: \"a: b\""
    return "check the indentation and quoting of this line and the one above"


def _loc(name: str, mark: yaml.Mark) -> Location:
    return Location(name, mark.line + 1, mark.column + 1)


def _build(node: yaml.Node, name: str, budget: _Budget, depth: int) -> YNode:
    budget.nodes += 1
    where = _loc(name, node.start_mark)
    if budget.nodes > MAX_NODES:
        raise _over_limit(_TOO_MANY, where)
    if depth > MAX_DEPTH:
        raise _over_limit(_TOO_DEEP, where)
    if node.tag not in _STANDARD_TAGS:
        raise ScriptError(
            f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r} is not allowed",
            where,
            hint="scripts are plain data; remove the tag",
        )
    if isinstance(node, yaml.ScalarNode):
        if _SURROGATE.search(node.value):
            raise ScriptError(
                "a \\uD800-\\uDFFF escape is half of a UTF-16 pair, not a character",
                where,
                hint="write the character itself, or its \\U0001XXXX escape",
            )
        scalar = YStr(node.value)
        scalar.location = where
        scalar.quoted = node.style in ("'", '"', "|", ">")
        scalar.style = node.style or None  # libyaml says "" for plain
        return scalar
    if isinstance(node, yaml.SequenceNode):
        items = YList(_build(item, name, budget, depth + 1) for item in node.value)
        items.location = where
        return items
    mapping = YMap()
    mapping.location = where
    mapping.key_locations = {}
    mapping.flow = bool(node.flow_style)
    for key_node, value_node in node.value:
        key_where = _loc(name, key_node.start_mark)
        if not isinstance(key_node, yaml.ScalarNode):
            raise ScriptError("a mapping key must be a plain name, not a list or mapping", key_where)
        if key_node.tag == "tag:yaml.org,2002:merge" or key_node.value == "<<":
            raise ScriptError("YAML merge keys (`<<`) are not supported", key_where, hint="write the keys out in full")
        key = str(_build(key_node, name, budget, depth + 1))
        if key in mapping:
            first = mapping.key_locations[key]
            raise ScriptError(
                f"duplicate key {key!r} (first at line {first.line}, column {first.column})",
                key_where,
                hint="remove one of them",
            )
        mapping.key_locations[key] = key_where
        mapping[key] = _build(value_node, name, budget, depth + 1)
    return mapping


def describe(node: object) -> str:
    """How to name a node's type in an error: what the author wrote, in YAML terms."""
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YList):
        return "a list"
    return "text"
