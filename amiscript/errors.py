"""The amiscript exception tree; each class carries the process exit code it maps to.

Exit codes are decided here and turned into a process status in exactly one place
(``amiscript.cli.main``)::

    AmiscriptError                 exit 2   anything amiscript reports on purpose
    ├── UsageError                 exit 2   bad command line (unknown option, bad --var)
    ├── ScriptError                exit 2   the script or its variables are wrong; has a location
    │   └── ScriptErrors                    several of them at once (every problem of a file)
    ├── RunFailed                  exit 1   a step failed: `fail`, unhandled timeout or end of file
    │   └── RegexTimeout                    a script's regex ran out of the step's time (backtracking)
    └── TransportError             exit 3   the connection could not be made or broke
        ├── ConnectFailed                   refused, unreachable, name not found, connect timeout
        └── ConnectionLost                  reset or broken while talking

Protocol-level problems found while decoding AMI live in ``amiscript.protocol`` as events,
not exceptions: a peer that breaks the protocol is data to report, not a crash.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a script file something is; lines and columns count from 1."""

    file: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        if not self.line:  # the file as a whole (missing, empty, unreadable)
            return self.file
        if self.column:
            return f"{self.file}:{self.line}:{self.column}"
        return f"{self.file}:{self.line}"


class AmiscriptError(Exception):
    """Base of every error amiscript reports to a user on purpose."""

    exit_code = 2

    def __init__(self, message: str, location: Location | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint
        self.details: list[str] = []  # more lines for a person: the YAML excerpt, the answer received

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class UsageError(AmiscriptError):
    """The command line is wrong; nothing was sent."""

    exit_code = 2


class ScriptError(AmiscriptError):
    """The script, a file it names, or a variable is wrong; nothing was sent (or at runtime, a bug)."""

    exit_code = 2


class ScriptErrors(ScriptError):
    """Every problem found in a script, not just the first; ``str()`` is the first."""

    def __init__(self, problems: list[ScriptError]) -> None:
        first = problems[0]
        super().__init__(first.message, first.location, first.hint)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One line of `amiscript check`: FILE:LINE:COL: error|warning: message (hint)."""

    severity: str
    message: str
    location: Location | None
    hint: str = ""

    @classmethod
    def of(cls, error: AmiscriptError, severity: str = "error") -> Diagnostic:
        return cls(severity, error.message, error.location, error.hint)

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.severity}: {self.message}{hint}"


class RunFailed(AmiscriptError):
    """The conversation did not go as the script demands (a `fail` step, timeout, end of file)."""

    exit_code = 1


class RegexTimeout(RunFailed):
    """A script's regex did not finish in the time its step had left: it backtracks catastrophically."""


class TransportError(AmiscriptError):
    """The transport could not connect or broke; the script did not handle it."""

    exit_code = 3


class ConnectFailed(TransportError):
    """No connection was made: refused, unreachable, unknown host, or connect timeout."""


class ConnectionLost(TransportError):
    """An open connection broke (reset, broken pipe) rather than closing cleanly."""
