"""Runs a Script's steps against a transport: variables, captures, handlers and deadlines.

The interpreter never looks at which transport it has: it opens one through ``opener`` and
speaks bytes. Time comes from an injectable monotonic ``clock`` so tests can run timeouts
without waiting.
"""

from __future__ import annotations

import codecs
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import regex

from amiscript.engine.matcher import Found, Searcher, StreamBuffer
from amiscript.engine.output import Masker, Output, one_line
from amiscript.engine.variables import resolve_variables
from amiscript.errors import (
    AmiscriptError,
    ConnectionLost,
    Location,
    RunFailed,
    ScriptError,
    TransportError,
)
from amiscript.script.loader import compile_pattern
from amiscript.script.model import (
    MAX_SECONDS,
    TRANSPORTS,
    Exit,
    Expect,
    Fail,
    Newline,
    Pattern,
    Print,
    Script,
    Send,
    Set,
    Sleep,
    Step,
)
from amiscript.script.template import Ref, Template
from amiscript.transports.base import Target, Transport

Opener = Callable[[Target], Transport]
_DIGITS = regex.compile(r"[0-9]{1,5}")
SETTLE_SECONDS = 0.05  # quiet time after which a match that might still grow is taken


@dataclass(frozen=True, slots=True)
class TargetOverride:
    """Where --target or --simulate points the run instead of the script's `connect:`."""

    transport: str
    host: str
    port: int


class _Stop(Exception):
    """Unwinds nested steps for `exit` and `fail`."""

    def __init__(self, code: int) -> None:
        self.code = code


class Interpreter:
    def __init__(
        self,
        script: Script,
        opener: Opener,
        output: Output,
        *,
        variables: Mapping[str, str] | None = None,
        timeout: float | None = None,
        target: TargetOverride | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.script = script
        self._opener = opener
        self._output = output
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout if timeout is not None else script.timeout
        self._target_override = target
        self.values, secrets = resolve_variables(script, variables or {}, self._environ)
        self.mask = Masker(secrets)
        self._secret_names = {spec.name for spec in script.vars if spec.secret}
        self._check_environment()
        self._transport: Transport | None = None
        self._broken: TransportError | None = None  # the connection is gone; the reason
        self._buffer = StreamBuffer(script.match_max)
        self._partial_line = ""
        self._log_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._handling: set[str] = set()  # global handlers now running: never re-entered

    # -- public ----------------------------------------------------------------------------

    def run(self) -> int:
        """Run every step; the exit status (0 unless `exit`/`fail`), or raise AmiscriptError."""
        try:
            self._run_steps(self.script.steps)
            return 0
        except _Stop as stop:
            return stop.code
        except AmiscriptError as exc:
            exc.message = self.mask(exc.message)
            exc.hint = self.mask(exc.hint)
            raise
        finally:
            self.close()

    def close(self) -> None:
        self._flush_received()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- setup -----------------------------------------------------------------------------

    def _check_environment(self) -> None:
        """Every ${env:NAME} must be set before anything is sent (exit 2, not a half-run).

        Variable defaults are not walked: those in use were rendered already, and one that
        --var overrode does not need its environment variable.
        """
        parts = (self.script.connect, self.script.on_eof, self.script.on_timeout, self.script.steps)
        for name, where in _env_refs(parts):
            if name not in self._environ:
                raise ScriptError(
                    f"environment variable {name} is not set",
                    where,
                    hint=f"export {name}=... before running",
                )

    def _target(self) -> Target:
        spec = self.script.connect
        override = self._target_override
        if spec is None and override is None:
            raise ScriptError(
                "the script talks to a peer but has no `connect:` section",
                self.script.location,
                hint="add `connect:` or pass --target tcp://HOST:PORT",
            )
        timeout_text = spec.timeout.render(self.values, environ=self._environ) if spec else "10"
        where = spec.timeout.location if spec else self.script.location
        connect_timeout = _positive(timeout_text, "connect timeout", where)
        if override is not None:
            return Target(override.transport, override.host, override.port, connect_timeout)
        assert spec is not None
        transport = self._render(spec.transport)
        if transport not in TRANSPORTS:
            raise ScriptError(
                f"unknown transport {transport!r}",
                spec.transport.location,
                hint=f"choose one of: {', '.join(TRANSPORTS)}",
            )
        if transport == "spawn":
            if not spec.command:
                raise ScriptError("`transport: spawn` needs `command:`", spec.transport.location)
            return Target(
                transport,
                "",
                0,
                connect_timeout,
                command=tuple(self._render(part) for part in spec.command),
                env=tuple((name, self._render(value)) for name, value in spec.env),
                cwd=self._render(spec.cwd) if spec.cwd is not None else None,
            )
        host = self._render(spec.host)
        port_text = self._render(spec.port)
        if not _DIGITS.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise ScriptError(f"port must be a number from 1 to 65535, not {port_text!r}", spec.port.location)
        return Target(transport, host, int(port_text), connect_timeout)

    def _connection(self) -> Transport:
        """The open transport, connecting on first use (as Expect's spawn sits among the steps)."""
        if self._broken is not None:
            raise self._broken
        if self._transport is None:
            target = self._target()
            self._note(f"connecting to {target}")
            self._transport = self._opener(target)
            self._note(f"connected to {target}")
        return self._transport

    # -- steps -----------------------------------------------------------------------------

    def _run_steps(self, steps: Sequence[Step]) -> None:
        for step in steps:
            self._run_step(step)

    def _run_step(self, step: Step) -> None:
        if isinstance(step, Print):
            self._output.print(self.mask(self._render(step.text)))
        elif isinstance(step, Send):
            self._send(step)
        elif isinstance(step, Expect):
            self._expect(step)
        elif isinstance(step, Fail):
            self._output.print(self.mask(self._render(step.message)))
            self._note(f"{step.location}: fail")
            raise _Stop(1)
        elif isinstance(step, Set):
            for name, template in step.values:
                self._assign(name, self._render(template))
        elif isinstance(step, Sleep):
            self._sleep(step.seconds)
        elif isinstance(step, Exit):
            raise _Stop(step.code)
        else:  # pragma: no cover - the loader builds only the kinds above
            raise AssertionError(step)

    def _note(self, text: str) -> None:
        self._output.note(self.mask(text))

    def _assign(self, name: str, value: str) -> None:
        """Set a variable; a secret variable's new value is masked from now on too."""
        self.values[name] = value
        if name in self._secret_names:
            self.mask.add(value)

    def _render(self, template: Template) -> str:
        return template.render(self.values, environ=self._environ)

    def _send(self, step: Send) -> None:
        check = None if step.allow_line_breaks else refuse_line_breaks(step.location, "`send`")
        text = step.text.render(self.values, escape=check, environ=self._environ)
        if step.newline is Newline.CRLF:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        # surrogateescape: bytes that came in through argv or the environment go out unchanged
        data = text.encode("utf-8", "surrogateescape")
        try:
            transport = self._connection()
            self._output.sent(self.mask(text))
            transport.send(data, self._timeout)
        except TransportError as exc:
            self._lose_connection(exc)
            self._on_broken(exc, None, step.location)

    def _expect(self, step: Expect) -> None:
        timeout = step.timeout if step.timeout is not None else self._timeout
        searcher = Searcher([self._compile(pattern) for pattern in step.patterns])
        transport = None
        if not self._buffer.eof:
            try:
                transport = self._connection()
            except TransportError as exc:
                self._lose_connection(exc)
        started = self._clock()  # after connecting: the connection has its own timeout
        deadline = started + timeout
        while True:
            found = searcher.search(self._buffer, final=self._buffer.eof)
            if found is not None:
                self._matched(step, found, started)
                return
            if self._buffer.eof or transport is None:
                self._flush_received()
                waited = self._clock() - started
                error: TransportError | RunFailed = self._broken or RunFailed(
                    f"connection closed by the peer while waiting for {_describe(step.patterns)}"
                    f" (after {waited:.1f} s); last received: {self._tail()}",
                    step.location,
                )
                self._on_broken(error, step.on_eof, step.location)
                return
            remaining = deadline - self._clock()
            if remaining <= 0:
                found = searcher.settle(self._buffer)
                if found is not None:
                    self._matched(step, found, started)
                    return
                self._on_timeout(step, timeout)
                return
            # A deferred match is taken once the peer has been quiet for a moment.
            wait = min(remaining, SETTLE_SECONDS) if searcher.deferred else remaining
            try:
                data = transport.receive(wait)
            except ConnectionLost as exc:
                self._lose_connection(exc)
                continue
            if data is None:
                if searcher.deferred:
                    found = searcher.settle(self._buffer)
                    if found is not None:
                        self._matched(step, found, started)
                        return
                continue
            if data == b"":
                self._buffer.feed_eof()
                self._note("end of file from the peer")
                continue
            self._buffer.feed(data)
            self._log_received(data)

    def _lose_connection(self, error: TransportError) -> None:
        """The connection failed or broke: what was received still matches, then it is end of file."""
        self._broken = error
        if not self._buffer.eof:
            self._buffer.feed_eof()

    def _compile(self, pattern: Pattern) -> regex.Pattern[str]:
        try:
            return compile_pattern(pattern.kind, pattern.source, values=self.values, environ=self._environ)
        except regex.error as exc:
            raise ScriptError(f"invalid regex after substitution: {exc}", pattern.location) from None

    def _matched(self, step: Expect, found: Found, started: float) -> None:
        self._flush_received()
        pattern = step.patterns[found.index]
        self._note(f"{pattern.location}: matched {pattern.describe()} after {self._clock() - started:.3f} s")
        for name, value in found.groups.items():
            self._assign(name, value)
        self._run_steps(pattern.then)

    def _on_timeout(self, step: Expect, timeout: float) -> None:
        handlers = step.on_timeout
        if handlers is None and "timeout" not in self._handling:
            handlers = self.script.on_timeout
        self._flush_received()
        if handlers is None:
            raise RunFailed(
                f"timeout after {timeout:g} s waiting for {_describe(step.patterns)}; last received: {self._tail()}",
                step.location,
            )
        self._note(f"{step.location}: timeout after {timeout:g} s; running the timeout handler")
        self._run_handler("timeout", handlers)

    def _on_broken(self, error: AmiscriptError, local: tuple[Step, ...] | None, where: Location) -> None:
        """End of file, or a connection that failed or broke: the eof handler, else the error."""
        if isinstance(error, TransportError):
            self._broken = error
        handlers = local
        if handlers is None and "eof" not in self._handling:
            handlers = self.script.on_eof
        if handlers is None:
            if isinstance(error, TransportError) and error.location is None:
                error.location = where
            raise error
        self._note(f"{where}: {error.message}; running the eof handler")
        self._run_handler("eof", handlers)

    def _run_handler(self, kind: str, steps: Sequence[Step]) -> None:
        """Run handler steps; inside them the same global handler does not fire again (no loops)."""
        nested = kind in self._handling
        self._handling.add(kind)
        try:
            self._run_steps(steps)
        finally:
            if not nested:
                self._handling.discard(kind)

    # -- received text for -v --------------------------------------------------------------

    def _log_received(self, data: bytes) -> None:
        text = self._partial_line + self._log_decoder.decode(data)
        lines = text.split("\n")
        self._partial_line = lines.pop()
        for line in lines:
            self._output.received(self.mask(line.removesuffix("\r")))

    def _flush_received(self) -> None:
        if self._partial_line:
            self._output.received(self.mask(self._partial_line))
            self._partial_line = ""

    def _tail(self) -> str:
        return one_line(self.mask(self._buffer.tail(400)), 200)


def refuse_line_breaks(where: Location, what: str) -> Callable[[Ref, str], str]:
    """A substituted value must not add lines (CR, LF) or end a string (NUL): that would
    inject headers or whole actions (the book warns AMI can run shell commands)."""

    def check(ref: Ref, value: str) -> str:
        bad = next((char for char in ("\r", "\n", "\0") if char in value), None)
        if bad is not None:
            raise ScriptError(
                f"{ref} contains {_CONTROL_NAMES[bad]}; refusing to put it into {what}",
                where,
                hint="a value cannot add header lines or actions; check where the value came from",
            )
        return value

    return check


_CONTROL_NAMES = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\0": "a NUL byte"}


def _describe(patterns: Sequence[Pattern]) -> str:
    if not patterns:
        return "end of file"
    return " or ".join(pattern.describe() for pattern in patterns)


def _positive(text: str, what: str, where: Location) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScriptError(f"{what} must be a number of seconds, not {text!r}", where) from None
    if not 0 < value <= MAX_SECONDS:
        raise ScriptError(f"{what} must be greater than 0 and at most {MAX_SECONDS}, not {text!r}", where)
    return value


def _env_refs(root: object) -> list[tuple[str, Location]]:
    """Every ${env:NAME} under ``root``, walked through the typed script values."""
    found: list[tuple[str, Location]] = []

    def visit(value: object) -> None:
        if isinstance(value, Template):
            found.extend((ref.name, value.location) for ref in value.refs if ref.env)
        elif isinstance(value, (tuple, list)):
            for item in value:
                visit(item)
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:  # type: ignore[attr-defined]
                visit(getattr(value, name))

    visit(root)
    return found
