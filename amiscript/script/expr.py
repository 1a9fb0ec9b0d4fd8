"""The small, safe expression language of `assert`, `repeat … until` and friends. No eval.

    new <= 10 and old >= 0
    len(channels) > 0 and not (message == 'Permission denied')
    version =~ '^22\\.'           regex search; !~ for "does not match"
    chan.ChannelState == '6'     one header of an item

Names are script variables; literals are numbers and quoted strings ('…' or "…"), plus
true and false. Comparison is numeric when both sides read as numbers, otherwise text
(== and != only; ordering text is an error). Parsed once at load time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import regex

from amiscript.errors import Location, ScriptError
from amiscript.script.template import Value
from amiscript.script.timedregex import Budget, search

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=|<=|>=|=~|!~|<|>|\(|\))
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)?)
    )""",
    re.VERBOSE,
)
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=", "=~", "!~")
KEYWORDS = ("and", "or", "not", "len", "true", "false")


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | float | bool


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.name}.{self.key}" if self.key else self.name


@dataclass(frozen=True, slots=True)
class Length:
    name: str


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # and, or
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


Node = Literal | Name | Length | Compare | Logic | Not


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    root: Node
    location: Location

    @property
    def names(self) -> tuple[str, ...]:
        found: list[str] = []
        _collect(self.root, found)
        return tuple(dict.fromkeys(found))

    def evaluate(self, values: Mapping[str, Value], budget: Budget | None = None) -> bool:
        """True or false; ``=~`` and ``!~`` searches together stay within ``budget``."""
        return _truthy(_eval(self.root, values, self.location, budget))

    def explain(self, values: Mapping[str, Value], mask: Callable[[str], str] = str) -> str:
        """The values the expression saw, for a failure message; ``mask`` runs before quoting
        (quoting escapes characters, and an escaped secret would slip past the masker)."""
        shown = []
        for node in _operands(self.root):
            label = str(node) if isinstance(node, Name) else f"len({node.name})"
            value = values.get(node.name)
            if value is None:
                shown.append(f"{label} unset")
            elif isinstance(node, Length):
                shown.append(f"{label} = {_eval(node, values, self.location):g}")
            elif isinstance(value, dict) and node.key is not None:
                shown.append(f"{label} = {mask(str(_eval(node, values, self.location)))!r}")
            elif isinstance(value, list):
                shown.append(f"{label} = {len(value)} items")
            elif isinstance(value, dict):
                shown.append(f"{label} = item with {len(value)} headers")
            else:
                shown.append(f"{label} = {mask(value)!r}")
        return ", ".join(dict.fromkeys(shown))


MAX_TOKENS = 500  # keeps nesting (and the recursion it needs) small


def parse_expression(text: str, where: Location) -> Expression:
    tokens = _tokenize(text, where)
    if len(tokens) > MAX_TOKENS:
        raise ScriptError(f"expression longer than {MAX_TOKENS} tokens; split it into several asserts", where)
    parser = _Parser(tokens, text, where)
    root = parser.parse_or()
    if parser.pos != len(tokens):
        raise ScriptError(f"unexpected {tokens[parser.pos][1]!r} in expression {text!r}", where)
    return Expression(text, root, where)


def _tokenize(text: str, where: Location) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            rest = text[pos:].strip()
            hint = "use names, numbers, 'quoted text', comparisons, and/or/not, len(name)"
            if rest.startswith("="):
                hint = "compare with == (a single = is not an operator)"
            elif rest.startswith("${"):
                hint = "write variable names without ${...} in an expression: new > 0"
            raise ScriptError(f"cannot read expression {text!r} at {rest[:10]!r}", where, hint=hint)
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    if not tokens:
        raise ScriptError("empty expression", where)
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str, where: Location) -> None:
        self.tokens = tokens
        self.text = text
        self.where = where
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ScriptError(
                f"expression {self.text!r} ends too early", self.where, hint="e.g. new <= 10, or version =~ '^22'"
            )
        self.pos += 1
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token[1] == value and token[0] in ("op", "name"):
            self.pos += 1
            return True
        return False

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.accept("or"):
            node = Logic("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.accept("and"):
            node = Logic("and", node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.accept("not"):
            return Not(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_primary()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in COMPARISONS:
            self.pos += 1
            right = self.parse_primary()
            if token[1] in ("=~", "!~") and isinstance(right, Literal) and isinstance(right.value, str):
                try:
                    regex.compile(right.value)
                except regex.error as exc:
                    raise ScriptError(
                        f"invalid regex {right.value!r} in expression: {exc}",
                        self.where,
                        hint="a ( [ or { that should match itself needs a backslash before it",
                    ) from None
            return Compare(token[1], left, right)
        return left

    def parse_primary(self) -> Node:
        kind, value = self.take()
        if kind == "number":
            return Literal(float(value))
        if kind == "string":
            return Literal(_unquote(value))
        if kind == "op" and value == "(":
            node = self.parse_or()
            if not self.accept(")"):
                raise ScriptError(f"missing ')' in expression {self.text!r}", self.where)
            return node
        if kind == "name":
            if value in ("true", "false"):
                return Literal(value == "true")
            if value == "len":
                if not self.accept("("):
                    raise ScriptError("len needs a name in parentheses: len(channels)", self.where)
                inner_kind, inner = self.take()
                if inner_kind != "name" or "." in inner or not self.accept(")"):
                    raise ScriptError("len takes one variable name: len(channels)", self.where)
                return Length(inner)
            if value in KEYWORDS:
                raise ScriptError(f"{value!r} cannot stand here in expression {self.text!r}", self.where)
            name, _, key = value.partition(".")
            return Name(name, key or None)
        hint = "len(name) is the only function" if value == "(" else ""
        raise ScriptError(f"unexpected {value!r} in expression {self.text!r}", self.where, hint=hint)


def _unquote(token: str) -> str:
    """Only the quote character and the backslash itself are escapes: regexes keep theirs."""
    quote = token[0]
    return re.sub(r"\\([\\" + quote + r"])", r"\1", token[1:-1])


def _operands(node: Node) -> list[Name | Length]:
    if isinstance(node, (Name, Length)):
        return [node]
    if isinstance(node, (Compare, Logic)):
        return _operands(node.left) + _operands(node.right)
    if isinstance(node, Not):
        return _operands(node.operand)
    return []


def _collect(node: Node, found: list[str]) -> None:
    if isinstance(node, (Name, Length)):
        found.append(node.name)
    elif isinstance(node, (Compare, Logic)):
        _collect(node.left, found)
        _collect(node.right, found)
    elif isinstance(node, Not):
        _collect(node.operand, found)


Result = str | float | bool | list[dict[str, str]] | dict[str, str]


def _eval(node: Node, values: Mapping[str, Value], where: Location, budget: Budget | None = None) -> Result:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        if node.name not in values:
            raise ScriptError(f"variable {node.name!r} has no value yet (in an expression)", where)
        value = values[node.name]
        if node.key is None:
            return value
        if not isinstance(value, dict):
            raise ScriptError(f"{node.name!r} is not an item with headers (in {node})", where)
        for header, text in value.items():
            if header.lower() == node.key.lower():
                return text
        return ""  # a header the item does not have reads as empty text
    if isinstance(node, Length):
        value = values.get(node.name)
        if value is None:
            raise ScriptError(f"variable {node.name!r} has no value yet (in len)", where)
        if isinstance(value, str):  # text counts its comma-separated items, as foreach sees them
            return float(len([part for part in value.split(",") if part.strip()]))
        return float(len(value))
    if isinstance(node, Not):
        return not _truthy(_eval(node.operand, values, where, budget))
    if isinstance(node, Logic):
        left = _truthy(_eval(node.left, values, where, budget))
        if node.op == "and":
            return left and _truthy(_eval(node.right, values, where, budget))
        return left or _truthy(_eval(node.right, values, where, budget))
    left_value, right_value = _eval(node.left, values, where, budget), _eval(node.right, values, where, budget)
    return _compare(node, left_value, right_value, where, budget)


def _compare(node: Compare, left: Result, right: Result, where: Location, budget: Budget | None) -> bool:
    if node.op in ("=~", "!~"):
        try:
            found = search(regex.compile(_text(right, where)), _text(left, where), budget, where) is not None
        except regex.error as exc:
            raise ScriptError(f"invalid regex {_text(right, where)!r} in {node.op}: {exc}", where) from None
        return found if node.op == "=~" else not found
    left_number, right_number = _number(left), _number(right)
    if left_number is not None and right_number is not None:
        a, b = left_number, right_number
        return {
            "==": a == b,
            "!=": a != b,
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
        }[node.op]
    if node.op in ("==", "!="):
        equal = _text(left, where) == _text(right, where)
        return equal if node.op == "==" else not equal
    raise ScriptError(f"cannot order {left!r} and {right!r} with {node.op}: they are not both numbers", where)


_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")


def _number(value: Result) -> float | None:
    """Plain decimals only: no `nan`, `inf`, `1_000` or exponents sneaking in as numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return float(value.strip())
    return None


def _text(value: Result, where: Location) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    raise ScriptError("a list or an item cannot be compared as text", where)


def _truthy(value: Result) -> bool:
    if isinstance(value, str):
        return value != "" and value.lower() not in ("0", "false", "no", "off")
    return bool(value)
