"""`run --dry-run`: what a run would send and wait for, step by step, without connecting.

Variables are resolved as a run would resolve them (so a missing required one is the same
exit 2); values only a run can know (captures, answers) show as ``${name}``. Every text is
masked like a run's output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from amiscript.engine.output import Masker, one_line
from amiscript.engine.variables import refuse_line_breaks, resolve_variables
from amiscript.errors import ScriptError
from amiscript.protocol import encode_packet
from amiscript.script.model import (
    Action,
    Assert,
    Exit,
    Expect,
    Fail,
    Foreach,
    HeaderMatch,
    Include,
    Login,
    Newline,
    Print,
    Repeat,
    Script,
    Send,
    Set,
    Sleep,
    Step,
    WaitEvent,
)
from amiscript.script.template import Ref, Template, Value


class DryRun:
    def __init__(
        self,
        script: Script,
        write: Callable[[str], None],
        *,
        variables: Mapping[str, str] | None = None,
        timeout: float | None = None,
        target: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.script = script
        self._write = write
        self._environ = os.environ if environ is None else environ
        self._timeout = timeout if timeout is not None else script.timeout
        self._target = target
        values, secrets = resolve_variables(script, variables or {}, self._environ)
        self.values: dict[str, Value] = dict(values)
        self.mask = Masker(secrets)

    def run(self) -> int:
        self._line(0, f"script {self.script.path}" + (f" ({self.script.name})" if self.script.name else ""))
        self._line(0, f"connect {self._describe_target()} (when the first step sends or expects)")
        self._steps(self.script.steps, 0)
        for kind, steps in (("eof", self.script.on_eof), ("timeout", self.script.on_timeout)):
            if steps is not None:
                self._line(0, f"on {kind}:")
                self._steps(steps, 1)
        return 0

    # -- output ----------------------------------------------------------------------------

    def _line(self, depth: int, text: str) -> None:
        self._write("  " * depth + self.mask(text))

    def _quote(self, text: str) -> str:
        """Mask first: quoting escapes characters, and an escaped secret would slip past the mask."""
        return one_line(self.mask(text), 10_000)

    def _at(self, step: Step) -> str:
        return f"{step.location.line}:{step.location.column}"

    def _render(self, template: Template, check: Callable[[Ref, str], str] | None = None) -> str:
        """Known values substituted; what only a run can know stays ``${name}``."""
        out = []
        for part in template.parts:
            if isinstance(part, str):
                out.append(part)
            elif part.file:
                out.append(str(part))  # a file is read when the run needs it
            elif part.env:
                out.append(self._environ.get(part.name, str(part)))
            elif part.name in self.values and isinstance(self.values[part.name], str) and part.key is None:
                value = str(self.values[part.name])
                out.append(check(part, value) if check else value)
            else:
                out.append(str(part))
        return "".join(out)

    def _describe_target(self) -> str:
        if self._target:
            return self._target
        spec = self.script.connect
        if spec is None:
            return "(no `connect:`; give --target or --simulate)"
        transport = self._render(spec.transport)
        if transport == "spawn":
            return "spawn: " + " ".join(self._render(part) for part in spec.command)
        return f"{transport}://{self._render(spec.host)}:{self._render(spec.port)}"

    # -- steps -----------------------------------------------------------------------------

    def _steps(self, steps: Sequence[Step], depth: int) -> None:
        for step in steps:
            self._step(step, depth)

    def _step(self, step: Step, depth: int) -> None:
        at = self._at(step)
        if isinstance(step, Print):
            self._line(depth, f"{at} print {self._quote(self._render(step.text))}")
        elif isinstance(step, Fail):
            self._line(depth, f"{at} fail {self._quote(self._render(step.message))} (exit 1)")
        elif isinstance(step, Send):
            check = None if step.allow_line_breaks else refuse_line_breaks(step.location, "`send`")
            text = self._render(step.text, check)
            if step.newline is Newline.CRLF:
                text = text.replace("\r\n", "\n").replace("\n", "\r\n")
            self._line(depth, f"{at} send {self._quote(text)}")
        elif isinstance(step, Expect):
            timeout = step.timeout if step.timeout is not None else self._timeout
            self._line(depth, f"{at} expect, waiting up to {timeout:g} s for the earliest of:")
            for pattern in step.patterns:
                shown = self._render(pattern.source)
                label = f"/{shown}/" if pattern.kind.value == "re" else repr(shown)
                captures = f" (sets {', '.join(pattern.captures)})" if pattern.captures else ""
                self._line(depth + 1, f"{label}{captures}")
                self._steps(pattern.then, depth + 2)
            for kind, steps in (("end of file", step.on_eof), ("timeout", step.on_timeout)):
                if steps is not None:
                    self._line(depth + 1, f"on {kind}:")
                    self._steps(steps, depth + 2)
        elif isinstance(step, Set):
            for name, template in step.values:
                self.values[name] = self._render(template)
                self._line(depth, f"{at} set {name} = {self._quote(str(self.values[name]))}")
        elif isinstance(step, Sleep):
            self._line(depth, f"{at} sleep {step.seconds:g} s")
        elif isinstance(step, Exit):
            self._line(depth, f"{at} exit {step.code}")
        elif isinstance(step, Login):
            self._login(step, depth)
        elif isinstance(step, Action):
            self._action(step, depth)
        elif isinstance(step, WaitEvent):
            timeout = step.timeout if step.timeout is not None else self._timeout
            kept = f", kept as {step.list_var}" if step.list_var else ""
            self._line(
                depth,
                f"{at} wait_event up to {timeout:g} s for {step.count} event(s){kept}: {self._matches(step.matches)}",
            )
            if step.on_timeout is not None:
                self._line(depth + 1, "on timeout:")
                self._steps(step.on_timeout, depth + 2)
        elif isinstance(step, Assert):
            message = f" (else: {self._render(step.message)})" if step.message else ""
            self._line(depth, f"{at} assert {step.expression.source}{message}")
        elif isinstance(step, Foreach):
            items = (
                ", ".join(self._render(item) for item in step.items)
                if isinstance(step.items, tuple)
                else self._render(step.items)
            )
            self._line(depth, f"{at} foreach {step.name} in {items}:")
            self._steps(step.steps, depth + 1)
        elif isinstance(step, Repeat):
            until = f" until {step.until.source}" if step.until else ""
            self._line(depth, f"{at} repeat at most {step.limit} times{until}, {step.delay:g} s apart:")
            self._steps(step.steps, depth + 1)
        elif isinstance(step, Include):
            self._include(step, depth)

    def _packet(self, headers: list[tuple[str, str]]) -> str:
        try:
            return self._quote(encode_packet(headers).decode("utf-8", "surrogateescape"))
        except ValueError as exc:
            raise ScriptError(str(exc)) from None

    def _login(self, step: Login, depth: int) -> None:
        def header(name: str, template: Template) -> str:
            return self._render(template, refuse_line_breaks(template.location, f"the {name} header"))

        username, secret = header("Username", step.username), header("Secret", step.secret)
        self.mask.add(secret)
        auth = self._render(step.auth).lower()
        extra = [("Events", header("Events", step.events))] if step.events is not None else []
        self._line(depth, f"{self._at(step)} login as {username!r} ({auth})")
        if auth == "md5":
            self._line(
                depth + 1, "send " + self._packet([("Action", "Challenge"), ("AuthType", "md5"), ("ActionID", "…")])
            )
            headers = [
                ("Action", "Login"),
                ("AuthType", "md5"),
                ("Username", username),
                ("Key", "md5(challenge+secret)"),
            ]
        else:
            headers = [("Action", "Login"), ("Username", username), ("Secret", secret)]
        self._line(depth + 1, "send " + self._packet([*headers, *extra, ("ActionID", "…")]))
        timeout = step.timeout if step.timeout is not None else self._timeout
        failing = "runs on error" if step.on_error is not None else "fails the step"
        self._line(depth + 1, f"wait up to {timeout:g} s for the Response with that ActionID; Error {failing}")
        self._on_error(step.on_error, depth)

    def _action(self, step: Action, depth: int) -> None:
        headers = [
            (name, self._render(value, refuse_line_breaks(value.location, f"the {name} header")))
            for name, value in step.headers
        ]
        if not any(name.lower() == "actionid" for name, _ in headers):
            headers.append(("ActionID", "…"))
        timeout = step.timeout if step.timeout is not None else self._timeout
        self._line(depth, f"{self._at(step)} action {step.name}")
        self._line(depth + 1, f"send {self._packet(headers)}")
        wait = "the Response with that ActionID" + (f", then its list into {step.list_var}" if step.list_var else "")
        self._line(depth + 1, f"wait up to {timeout:g} s for {wait}")
        for match in step.expect:
            self._line(
                depth + 1,
                f"expect {match.header} {'~' if match.kind.value == 're' else '='} {self._render(match.source)}",
            )
        for name, header in step.save:
            self._line(depth + 1, f"save {header} as {name}")
        if step.items is not None:
            bounds = ", ".join(
                f"{label} {value}"
                for label, value in (("count", step.items.count), ("min", step.items.min), ("max", step.items.max))
                if value is not None
            )
            for label, matches in (("every", step.items.every), ("any", step.items.any)):
                if matches:
                    bounds += f"{', ' if bounds else ''}{label} item: " + self._matches(matches)
            self._line(depth + 1, f"check the items: {bounds}")
        self._on_error(step.on_error, depth)

    def _on_error(self, steps: tuple[Step, ...] | None, depth: int) -> None:
        if steps is not None:
            self._line(depth + 1, "on error:")
            self._steps(steps, depth + 2)

    def _matches(self, matches: Sequence[HeaderMatch]) -> str:
        return ", ".join(f"{m.header} {'~' if m.kind.value == 're' else '='} {self._render(m.source)}" for m in matches)

    def _include(self, step: Include, depth: int) -> None:
        given = {name: self._render(template) for name, template in step.vars}
        values, secrets = resolve_variables(step.script, given, self._environ)
        for secret in secrets:
            self.mask.add(secret)
        self._line(depth, f"{self._at(step)} include {step.script.path}:")
        caller = self.values
        self.values = dict(values)
        try:
            self._steps(step.script.steps, depth + 1)
        finally:
            self.values = caller
