"""The script language as typed, frozen values; every piece knows where it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from amiscript.errors import Location
from amiscript.script.ranges import Range
from amiscript.script.template import Template

if TYPE_CHECKING:  # the expression language loads only for scripts that use it (assert, until)
    from amiscript.script.expr import Expression

DEFAULT_TIMEOUT = 10.0  # Expect's default
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MATCH_MAX = 1 << 20
DEFAULT_EVENT_BACKLOG = 1000
MIN_MATCH_MAX = 64
MAX_SECONDS = 86400.0  # one day: longer waits are mistakes, and the OS rejects huge ones
TRANSPORTS = ("tcp", "tls", "telnet", "spawn")


class Newline(Enum):
    """How a newline written in `send` text goes on the wire."""

    CRLF = "crlf"  # what telnet does, and what AMI wants
    LF = "lf"  # exactly as written


class PatternKind(Enum):
    REGEX = "re"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class VarSpec:
    name: str
    default: Template | None
    required: bool
    secret: bool
    help: str
    location: Location


@dataclass(frozen=True, slots=True)
class Metric:
    """A variable reported as Nagios perfdata, with optional warning and critical ranges."""

    name: str
    label: str
    warning: Range | None
    critical: Range | None
    uom: str
    location: Location


@dataclass(frozen=True, slots=True)
class Connect:
    transport: Template
    host: Template
    port: Template
    timeout: Template
    location: Location
    command: tuple[Template, ...] = ()  # spawn: the program and its arguments, no shell
    env: tuple[tuple[str, Template], ...] = ()  # spawn: added to the environment
    cwd: Template | None = None  # spawn: working directory
    tls: tuple[tuple[str, Template], ...] = ()  # tls: cacert, cert, key, server_name as written


@dataclass(frozen=True, slots=True)
class Send:
    text: Template
    newline: Newline
    location: Location
    allow_line_breaks: bool = False  # the author's explicit opt-out of the injection rule


@dataclass(frozen=True, slots=True)
class Pattern:
    kind: PatternKind
    source: Template
    then: tuple[Step, ...]
    location: Location
    captures: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"/{self.source.raw}/" if self.kind is PatternKind.REGEX else repr(self.source.raw)


@dataclass(frozen=True, slots=True)
class Expect:
    patterns: tuple[Pattern, ...]
    on_eof: tuple[Step, ...] | None
    on_timeout: tuple[Step, ...] | None
    timeout: float | None
    location: Location


@dataclass(frozen=True, slots=True)
class Print:
    text: Template
    location: Location


@dataclass(frozen=True, slots=True)
class Fail:
    message: Template
    location: Location


@dataclass(frozen=True, slots=True)
class Set:
    values: tuple[tuple[str, Template], ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float
    location: Location


@dataclass(frozen=True, slots=True)
class Exit:
    code: int
    location: Location


@dataclass(frozen=True, slots=True)
class Script:
    path: str
    name: str
    description: str
    vars: tuple[VarSpec, ...]
    connect: Connect | None
    timeout: float
    newline: Newline
    match_max: int
    event_backlog: int
    on_eof: tuple[Step, ...] | None
    on_timeout: tuple[Step, ...] | None
    steps: tuple[Step, ...]
    location: Location
    implicit_vars: frozenset[str] = field(default_factory=frozenset)
    metrics: tuple[Metric, ...] = ()
    timeout_set: bool = False  # `timeout:` was written (an included script's then applies to its steps)

    def var(self, name: str) -> VarSpec | None:
        return next((spec for spec in self.vars if spec.name == name), None)


# -- AMI steps and flow ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """A header that must be present and match: exact text, or a regex searched (captures)."""

    header: str
    kind: PatternKind
    source: Template
    location: Location


@dataclass(frozen=True, slots=True)
class ItemsCheck:
    count: int | None
    min: int | None
    max: int | None
    every: tuple[HeaderMatch, ...]
    any: tuple[HeaderMatch, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Action:
    headers: tuple[tuple[str, Template], ...]
    save: tuple[tuple[str, str], ...]  # variable, header
    expect: tuple[HeaderMatch, ...]
    list_var: str | None
    items: ItemsCheck | None
    timeout: float | None
    on_error: tuple[Step, ...] | None
    location: Location

    @property
    def name(self) -> str:
        return next((value.raw for key, value in self.headers if key.lower() == "action"), "?")


@dataclass(frozen=True, slots=True)
class Login:
    username: Template
    secret: Template
    events: Template | None
    auth: Template  # plain or md5
    timeout: float | None
    on_error: tuple[Step, ...] | None
    location: Location


@dataclass(frozen=True, slots=True)
class WaitEvent:
    matches: tuple[HeaderMatch, ...]
    count: int
    list_var: str | None
    timeout: float | None
    on_timeout: tuple[Step, ...] | None
    location: Location


@dataclass(frozen=True, slots=True)
class Assert:
    expression: Expression
    message: Template | None
    location: Location


@dataclass(frozen=True, slots=True)
class Foreach:
    items: Template | tuple[Template, ...]
    name: str
    steps: tuple[Step, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Repeat:
    steps: tuple[Step, ...]
    until: Expression | None  # without it, the steps run exactly `limit` times
    limit: int
    delay: float
    location: Location


@dataclass(frozen=True, slots=True)
class Include:
    script: Script
    vars: tuple[tuple[str, Template], ...]
    location: Location


Step = (
    Send | Expect | Print | Fail | Set | Sleep | Exit | Action | Login | WaitEvent | Assert | Foreach | Repeat | Include
)
