"""Runs a Script's steps against a transport: variables, captures, handlers and deadlines.

The interpreter never looks at which transport it has: it opens one through ``opener`` and
speaks bytes. Time comes from an injectable monotonic ``clock`` so tests can run timeouts
without waiting.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import regex

from amiscript.engine.ami import AmiSteps, Stop
from amiscript.engine.matcher import Found, Searcher
from amiscript.engine.output import Masker, Output, one_line
from amiscript.engine.results import StepRecord
from amiscript.engine.session import Cancelled, Outcome, Session
from amiscript.engine.variables import refuse_line_breaks, resolve_variables
from amiscript.errors import AmiscriptError, Location, RunFailed, ScriptError, TransportError
from amiscript.script.loader import compile_pattern
from amiscript.script.model import (
    MAX_SECONDS,
    TRANSPORTS,
    Action,
    Assert,
    Exit,
    Expect,
    Fail,
    Foreach,
    Include,
    Login,
    Newline,
    Pattern,
    Print,
    Repeat,
    Script,
    Send,
    Set,
    Sleep,
    Step,
    WaitEvent,
)
from amiscript.script.source import excerpt
from amiscript.script.template import Ref, Template, Value, connect_file, read_file_value
from amiscript.script.timedregex import Budget
from amiscript.transports.base import Target, TlsOptions, Transport

Opener = Callable[[Target], Transport]
_DIGITS = regex.compile(r"[0-9]{1,5}")


@dataclass(slots=True)
class _Frame:
    """One script being run: the top one, or one brought in by `include`."""

    script: Script
    values: dict[str, Value]
    secret_names: set[str]
    timeout: float


@dataclass(frozen=True, slots=True)
class TargetOverride:
    """Where --target or --simulate points the run instead of the script's `connect:`."""

    transport: str
    host: str
    port: int


class Interpreter(AmiSteps):
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
        cancel: threading.Event | None = None,
    ) -> None:
        self.script = script
        self._output = output
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._sleep = sleep if cancel is None else _cancellable_sleep(cancel)
        self._timeout = timeout if timeout is not None else script.timeout
        self._target_override = target
        values, secrets = resolve_variables(script, variables or {}, self._environ)
        self.values: dict[str, Value] = dict(values)
        self._root_values = self.values  # `connect:` reads the top script's variables, even inside an include
        self.mask = Masker(secrets)
        self._secret_names = {spec.name for spec in script.vars if spec.secret}
        self._check_environment()
        self.session = Session(
            opener,
            output,
            self.mask,
            clock=clock,
            match_max=script.match_max,
            backlog_size=script.event_backlog,
            cancel=cancel,
        )
        self._handling: set[str] = set()  # global handlers now running: never re-entered
        self._frames = [_Frame(script, self.values, self._secret_names, self._timeout)]
        self.records: list[StepRecord] = []  # what each step did, for reports
        self._depth = 0
        self._check_values_before_sending()
        self._runners: dict[type, Callable[[Any], None]] = {
            Print: self._print,
            Send: self._send,
            Expect: self._expect,
            Fail: self._fail,
            Set: self._set,
            Sleep: lambda step: self._sleep(step.seconds),
            Exit: self._exit,
            Login: self._login,
            Action: self._action,
            WaitEvent: self._wait_event,
            Assert: self._assert,
            Foreach: self._foreach,
            Repeat: self._repeat,
            Include: self._include,
        }

    # -- public ----------------------------------------------------------------------------

    def run(self) -> int:
        """Run every step; the exit status (0 unless `exit`/`fail`), or raise AmiscriptError."""
        try:
            self._run_steps(self.script.steps)
            return 0
        except Stop as stop:
            return stop.code
        except AmiscriptError as exc:
            exc.message = self.mask(exc.message)
            exc.hint = self.mask(exc.hint)
            if not isinstance(exc, ScriptError):  # a failed run: show the step it failed in
                exc.details = [self.mask(line) for line in [*excerpt(exc.location), *exc.details]]
            raise
        except BaseException as stop:
            if isinstance(stop, Cancelled) or not isinstance(stop, Exception):  # Ctrl-C, SIGTERM, cancel
                self.log_off()
            raise
        finally:
            self.close()

    def close(self) -> None:
        self.session.close()

    # -- setup -----------------------------------------------------------------------------

    def _check_environment(self) -> None:
        """Every ${env:NAME} must be set before anything is sent (exit 2, not a half-run).

        Variable defaults are not walked: those in use were rendered already, and one that
        --var overrode does not need its environment variable.
        """
        for ref, where in _env_refs(self.script):
            if ref.file:
                read_file_value(ref.name, where)
                continue
            name = ref.name
            if name not in self._environ:
                raise ScriptError(
                    f"environment variable {name} is not set",
                    where,
                    hint=f"export {name}=... before running",
                )

    def _check_values_before_sending(self) -> None:
        """Values known before the run starts go through the injection rule now, so a bad one
        stops the run before anything is sent, not half-way through it."""
        for where, what, template in _outgoing_templates(self.script.steps):
            if all(ref.env or (ref.name in self.values and ref.key is None) for ref in template.refs):
                template.render(self.values, escape=refuse_line_breaks(where, what), environ=self._environ)

    def _target(self) -> Target:
        spec = self.script.connect
        override = self._target_override
        if spec is None and override is None:
            raise ScriptError(
                "the script talks to a peer but has no `connect:` section",
                self.script.location,
                hint="add `connect:` or pass --target tcp://HOST:PORT",
            )

        def render(template: Template) -> str:
            return template.render(self._root_values, environ=self._environ)

        timeout_text = render(spec.timeout) if spec else "10"
        where = spec.timeout.location if spec else self.script.location
        connect_timeout = _positive(timeout_text, "connect timeout", where)
        if override is not None:
            tls = self._tls_options(render) if spec is not None and override.transport == "tls" else TlsOptions()
            return Target(override.transport, override.host, override.port, connect_timeout, tls=tls)
        assert spec is not None
        transport = render(spec.transport)
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
                command=tuple(render(part) for part in spec.command),
                env=tuple((name, render(value)) for name, value in spec.env),
                cwd=render(spec.cwd) if spec.cwd is not None else None,
            )
        host = render(spec.host)
        port_text = render(spec.port)
        if not _DIGITS.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise ScriptError(f"port must be a number from 1 to 65535, not {port_text!r}", spec.port.location)
        tls = self._tls_options(render) if transport == "tls" else TlsOptions()
        return Target(transport, host, int(port_text), connect_timeout, tls=tls)

    def _tls_options(self, render: Callable[[Template], str]) -> TlsOptions:
        """`connect:`'s cacert, cert, key and server_name; files are relative to the script, as includes are."""
        assert self.script.connect is not None
        values: dict[str, str] = {}
        for name, template in self.script.connect.tls:
            value = render(template)
            if name != "server_name":
                value = connect_file(name, value, self.script.path, template.location)
            values[name] = value
        return TlsOptions(**values)

    def _open_for_wait(self) -> Transport | None:
        """The transport to wait on; None when the connection could not be made or is gone."""
        try:
            return self.session.connect(self._target)
        except TransportError:
            return None  # the session recorded why; waiting then meets end of file

    def _transmit(self, data: bytes, shown: str, where: Location) -> bool:
        """Send bytes; on a failed or broken connection run the eof handler and return False."""
        try:
            self.session.send(self._target, data, shown, self._timeout)
            return True
        except TransportError as exc:
            self._on_broken(exc, None, where)
            return False

    # -- steps -----------------------------------------------------------------------------

    def _run_steps(self, steps: Sequence[Step]) -> None:
        for step in steps:
            record = StepRecord(str(step.location), type(step).__name__.lower().replace("waitevent", "wait_event"),
                                self._depth)  # fmt: skip
            self.records.append(record)
            started = self._clock()
            self._depth += 1
            try:
                self._runners[type(step)](step)
                record.status = "passed"
            except Stop:
                record.status = "failed" if isinstance(step, Fail) else "stopped"
                raise
            except AmiscriptError:
                record.status = "failed"
                raise
            finally:
                self._depth -= 1
                record.seconds = round(self._clock() - started, 6)

    def _render(self, template: Template) -> str:
        return template.render(self.values, environ=self._environ)

    def _assign(self, name: str, value: Value) -> None:
        """Set a variable; a secret variable's new value is masked from now on too."""
        self.values[name] = value
        if name in self._secret_names and isinstance(value, str):
            self.mask.add(value)
        if self.records and isinstance(value, str):
            self.records[-1].captures[name] = self.mask(value)

    def _note(self, text: str) -> None:
        self.session.note(text)

    def _print(self, step: Print) -> None:
        self._output.print(self.mask(self._render(step.text)))

    def _fail(self, step: Fail) -> None:
        self._output.print(self.mask(self._render(step.message)))
        self._note(f"{step.location}: fail")
        raise Stop(1)

    def _exit(self, step: Exit) -> None:
        raise Stop(step.code)

    def _set(self, step: Set) -> None:
        for name, template in step.values:
            self._assign(name, self._render(template))

    def _send(self, step: Send) -> None:
        check = None if step.allow_line_breaks else refuse_line_breaks(step.location, "`send`")
        text = step.text.render(self.values, escape=check, environ=self._environ)
        if step.newline is Newline.CRLF:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        # surrogateescape: bytes that came in through argv or the environment go out unchanged
        self._transmit(text.encode("utf-8", "surrogateescape"), text, step.location)

    def _expect(self, step: Expect) -> None:
        timeout = step.timeout if step.timeout is not None else self._timeout
        searcher = Searcher(
            [self._compile(pattern) for pattern in step.patterns], [pattern.location for pattern in step.patterns]
        )
        transport = self._open_for_wait()
        buffer = self.session.use_text()
        budget = Budget.of(timeout, self._clock)
        result, waited = self.session.wait(
            transport,
            lambda final: searcher.search(buffer, final=final, budget=budget),
            timeout,
            lambda: searcher.deferred,
        )
        self.session.flush_log()
        if isinstance(result, Found):
            pattern = step.patterns[result.index]
            self._note(f"{pattern.location}: matched {pattern.describe()} after {waited:.3f} s")
            for name, value in result.groups.items():
                self._assign(name, value)
            self._run_steps(pattern.then)
        elif result is Outcome.EOF:
            error: TransportError | RunFailed = self.session.broken or RunFailed(
                f"connection closed by the peer while waiting for {_describe(step.patterns)}"
                f" (after {waited:.1f} s); last received: {self._tail()}",
                step.location,
            )
            self._on_broken(error, step.on_eof, step.location)
        else:
            self._on_timeout(
                step.on_timeout,
                f"timeout after {timeout:g} s waiting for {_describe(step.patterns)}; last received: {self._tail()}",
                step.location,
            )

    def _compile(self, pattern: Pattern) -> regex.Pattern[str]:
        try:
            return compile_pattern(pattern.kind, pattern.source, values=self.values, environ=self._environ)
        except regex.error as exc:
            raise ScriptError(f"invalid regex after substitution: {exc}", pattern.location) from None

    # -- flow ------------------------------------------------------------------------------

    def _assert(self, step: Assert) -> None:
        if not step.expression.evaluate(self.values, Budget.of(self._timeout, self._clock)):
            message = f"{self._render(step.message)}: " if step.message else ""
            seen = step.expression.explain(self.values, self.mask)
            raise RunFailed(f"assert failed: {message}{step.expression.source} ({seen})", step.location)

    def _foreach(self, step: Foreach) -> None:
        for item in self._foreach_items(step):
            self._assign(step.name, item)
            self._run_steps(step.steps)

    def _foreach_items(self, step: Foreach) -> list[Value]:
        if isinstance(step.items, tuple):
            return [self._render(item) for item in step.items]
        refs = step.items.refs
        if len(step.items.parts) == 1 and len(refs) == 1 and refs[0].key is None and not refs[0].env:
            value = self.values.get(refs[0].name)
            if isinstance(value, list):
                return list(value)
        return [part.strip() for part in self._render(step.items).split(",") if part.strip()]

    def _repeat(self, step: Repeat) -> None:
        for round_number in range(1, step.limit + 1):
            self._run_steps(step.steps)
            if step.until is not None and step.until.evaluate(self.values, Budget.of(self._timeout, self._clock)):
                self._note(f"{step.location}: repeat done after {round_number} round(s)")
                return
            if round_number < step.limit:
                self._sleep(step.delay)
        if step.until is None:
            return
        raise RunFailed(
            f"repeat gave up after {step.limit} rounds: `until {step.until.source}` never held"
            f" ({step.until.explain(self.values, self.mask)})",
            step.location,
        )

    def _include(self, step: Include) -> None:
        """Run another script's steps on this connection, in its own variables.

        Its own `on:` handlers and `timeout:` apply to its steps; where it has none, the
        caller's apply (and run in the caller's variables). Its `connect:` is not used.
        """
        given = {name: self._render(template) for name, template in step.vars}
        values, secrets = resolve_variables(step.script, given, self._environ)
        for secret in secrets:
            self.mask.add(secret)
        frame = _Frame(
            step.script,
            dict(values),
            {spec.name for spec in step.script.vars if spec.secret},
            step.script.timeout if step.script.timeout_set else self._frame.timeout,
        )
        self._note(f"{step.location}: include {step.script.path}")
        with self._in_frame(frame):
            self._run_steps(step.script.steps)

    @contextmanager
    def _in_frame(self, frame: _Frame) -> Iterator[None]:
        """Make ``frame``'s variables and settings current for the steps run inside."""
        caller = self._frame
        self._frames.append(frame)
        self.values, self._secret_names, self._timeout = frame.values, frame.secret_names, frame.timeout
        try:
            yield
        finally:
            self._frames.pop()
            self.values, self._secret_names, self._timeout = caller.values, caller.secret_names, caller.timeout

    @property
    def _frame(self) -> _Frame:
        return self._frames[-1]

    def _handler(self, kind: str) -> tuple[tuple[Step, ...], _Frame] | None:
        """The innermost script's handler of this kind, and the frame it runs in."""
        if kind in self._handling:
            return None
        for frame in reversed(self._frames):
            steps = frame.script.on_eof if kind == "eof" else frame.script.on_timeout
            if steps is not None:
                return steps, frame
        return None

    # -- handlers --------------------------------------------------------------------------

    def _on_timeout(self, local: tuple[Step, ...] | None, message: str, where: Location) -> None:
        if local is not None:
            self._note(f"{where}: {message}; running the step's timeout steps")
            self._run_steps(local)
            return
        handler = self._handler("timeout")
        if handler is None:
            raise RunFailed(message, where, hint=self.session.tls_hint())
        self._note(f"{where}: {message}; running the timeout handler")
        self._run_handler("timeout", *handler)

    def _on_broken(self, error: AmiscriptError, local: tuple[Step, ...] | None, where: Location) -> None:
        """End of file, or a connection that failed or broke: the eof handler, else the error."""
        if local is not None:
            self._note(f"{where}: {error.message}; running the step's eof steps")
            self._run_steps(local)
            return
        handler = self._handler("eof")
        if handler is None:
            if isinstance(error, TransportError) and error.location is None:
                error.location = where
            error.hint = error.hint or self.session.tls_hint()
            raise error
        self._note(f"{where}: {error.message}; running the eof handler")
        self._run_handler("eof", *handler)

    def _run_handler(self, kind: str, steps: Sequence[Step], frame: _Frame) -> None:
        """Run a global handler in its own script's variables; inside it, the same handler
        does not fire again (no loops)."""
        self._handling.add(kind)
        try:
            if frame is self._frame:
                self._run_steps(steps)
            else:
                with self._in_frame(frame):
                    self._run_steps(steps)
        finally:
            self._handling.discard(kind)

    def _tail(self) -> str:
        # Mask a window longer by the longest secret, then cut: a secret across the cut is masked whole.
        return one_line(self.mask(self.session.text.tail(200 + self.mask.longest)), 200)


def _cancellable_sleep(cancel: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if cancel.wait(seconds):
            raise Cancelled

    return sleep


def _outgoing_templates(steps: Sequence[Step]) -> Iterator[tuple[Location, str, Template]]:
    """Every template whose value goes on the wire under the injection rule, in every nested step."""
    for step in steps:
        if isinstance(step, Send) and not step.allow_line_breaks:
            yield step.location, "`send`", step.text
        elif isinstance(step, Action):
            for name, value in step.headers:
                yield value.location, f"the {name} header (nothing was sent)", value
        elif isinstance(step, Login):
            for name, value in (("Username", step.username), ("Secret", step.secret), ("Events", step.events)):
                if value is not None:
                    yield value.location, f"the {name} header (nothing was sent)", value
        for nested in _nested_steps(step):
            yield from _outgoing_templates(nested)


def _nested_steps(step: Step) -> list[Sequence[Step]]:
    if isinstance(step, Expect):
        return [pattern.then for pattern in step.patterns] + [s for s in (step.on_eof, step.on_timeout) if s]
    if isinstance(step, (Foreach, Repeat)):
        return [step.steps]
    if isinstance(step, (Action, Login)):
        return [step.on_error] if step.on_error else []
    if isinstance(step, WaitEvent):
        return [step.on_timeout] if step.on_timeout else []
    return []


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


def _env_refs(root: object) -> list[tuple[Ref, Location]]:
    """Every ${env:NAME} and ${file:PATH} under ``root``, walked through the typed script values."""
    found: list[tuple[Ref, Location]] = []

    def visit(value: object) -> None:
        if isinstance(value, Template):
            found.extend((ref, value.location) for ref in value.refs if ref.env)
        elif isinstance(value, (tuple, list)):
            for item in value:
                visit(item)
        elif isinstance(value, Script):  # its variables' defaults are resolved (or not) on use
            visit((value.connect, value.on_eof, value.on_timeout, value.steps))
        elif isinstance(value, Include):  # an included script's defaults that the include leaves to it
            given = {name for name, _ in value.vars}
            visit(tuple(spec.default for spec in value.script.vars if spec.name not in given))
            visit((value.vars, value.script))
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:  # type: ignore[attr-defined]
                visit(getattr(value, name))

    visit(root)
    return found
