"""Warnings for a script that loads but is probably not what its author meant.

The loader refuses what cannot run; this finds what runs but is likely a mistake: steps that
can never run, captures nobody reads, a secret printed, a variable nothing ever sets, a regex
that backtracks catastrophically, a ``${file:…}`` that cannot be read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from typing import TypeVar, get_args

import regex

from amiscript.errors import Diagnostic, Location
from amiscript.script.expr import Compare, Expression, Literal
from amiscript.script.model import (
    Action,
    Exit,
    Expect,
    Fail,
    HeaderMatch,
    Include,
    Pattern,
    PatternKind,
    Print,
    Script,
    Step,
    WaitEvent,
)
from amiscript.script.schema import STEP_OPTIONS
from amiscript.script.template import Template
from amiscript.script.timedregex import BACKTRACKING_HINT, hostile_text

T = TypeVar("T")


def lint(script: Script) -> list[Diagnostic]:
    warnings: list[Diagnostic] = []
    warnings += _unreachable(script)
    used = _used_names(script)
    warnings += _unused_captures(script, used)
    warnings += _secrets_printed(script)
    warnings += _never_set(script, used)
    warnings += _options_among_headers(script)
    warnings += _backtracking(script)
    warnings += _unreadable_files(script)
    return sorted(warnings, key=lambda d: (d.location.line, d.location.column) if d.location else (0, 0))


def _warn(message: str, where: Location, hint: str = "") -> Diagnostic:
    return Diagnostic("warning", message, where, hint)


def _step_lists(script: Script) -> Iterator[tuple[Step, ...]]:
    """Every list of steps in the script: the main one, handlers, then-blocks, loop bodies."""
    stack: list[object] = [script.steps, script.on_eof, script.on_timeout]
    while stack:
        value = stack.pop()
        if value is None:
            continue
        if isinstance(value, tuple) and all(_is_step(item) for item in value):
            yield value  # type: ignore[misc]
            stack.extend(value)
        elif isinstance(value, Include):
            continue  # the included file is checked on its own
        elif isinstance(value, tuple):
            stack.extend(value)
        elif is_dataclass(value) and not isinstance(value, (Template, Expression)):
            stack.extend(getattr(value, field.name) for field in fields(value))


_STEP_TYPES = get_args(Step)


def _is_step(value: object) -> bool:
    return isinstance(value, _STEP_TYPES)


def _unreachable(script: Script) -> list[Diagnostic]:
    found = []
    for steps in _step_lists(script):
        for index, step in enumerate(steps[:-1]):
            if isinstance(step, (Fail, Exit)):
                after = steps[index + 1]
                found.append(
                    _warn(
                        f"this step can never run: the `{type(step).__name__.lower()}` before it always stops the run",
                        after.location,
                        "remove it, or move the fail/exit into a `then:` or handler",
                    )
                )
                break
    return found


def _all_of(kind: type[T], value: object) -> Iterator[T]:
    """Every value of ``kind`` in a script (an include's own file is its business)."""
    if isinstance(value, kind):
        yield value
    if isinstance(value, Include):
        if kind is Template:
            yield from (template for _, template in value.vars)  # type: ignore[misc]
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _all_of(kind, item)
    elif is_dataclass(value) and not isinstance(value, (Template, Expression)):
        for field in fields(value):
            yield from _all_of(kind, getattr(value, field.name))


def _used_names(script: Script) -> set[str]:
    used = {ref.name for template in _all_of(Template, script) for ref in template.refs if not ref.env}
    used |= {name for expression in _all_of(Expression, script) for name in expression.names}
    return used


def _captures(script: Script) -> Iterator[tuple[str, Location]]:
    for steps in _step_lists(script):
        for step in steps:
            if isinstance(step, Expect):
                for pattern in step.patterns:
                    for name in pattern.captures:
                        yield name, pattern.location


def _unused_captures(script: Script, used: set[str]) -> list[Diagnostic]:
    return [
        _warn(f"the capture {name!r} is never used", where, f"use it as ${{{name}}}, or drop the group's name")
        for name, where in _captures(script)
        if name not in used and script.var(name) is None
    ]


def _secrets_printed(script: Script) -> list[Diagnostic]:
    secrets = {spec.name for spec in script.vars if spec.secret}
    found = []
    for steps in _step_lists(script):
        for step in steps:
            if isinstance(step, (Print, Fail)):
                template = step.text if isinstance(step, Print) else step.message
                for ref in template.refs:
                    if ref.name in secrets:
                        found.append(
                            _warn(
                                f"prints the secret variable {ref.name!r} (it will show as ****)",
                                step.location,
                                "print something else; a secret never appears in output",
                            )
                        )
    return found


def _options_among_headers(script: Script) -> list[Diagnostic]:
    """`action: {Action: Ping, timeout: 5}` sends a header called timeout; the author meant the option."""
    found = []
    for steps in _step_lists(script):
        for step in steps:
            if isinstance(step, Action):
                names = [(name, value.location) for name, value in step.headers]
                options = STEP_OPTIONS["action"]
            elif isinstance(step, WaitEvent):
                names = [(match.header, match.location) for match in step.matches]
                options = STEP_OPTIONS["wait_event"]
            else:
                continue
            for name, where in names:
                if name in options:
                    kind = "action" if isinstance(step, Action) else "wait_event"
                    found.append(
                        _warn(
                            f"{name!r} is inside the {kind} mapping, so it is a header, not the step's option",
                            where,
                            f"if you meant the option, write `{name}:` at the level of `{kind}:`",
                        )
                    )
    return found


def _never_set(script: Script, used: set[str]) -> list[Diagnostic]:
    found = []
    for spec in script.vars:
        unset = spec.default is None and not spec.required and spec.name not in script.implicit_vars
        if unset and spec.name in used:
            found.append(
                _warn(
                    f"variable {spec.name!r} has no default, is not required, and no step sets it",
                    spec.location,
                    "give it a default, mark it `required: true`, or set it before use",
                )
            )
    return found


def _unreadable_files(script: Script) -> list[Diagnostic]:
    """A ``${file:PATH}`` read only when the run needs it: say now if it cannot be read here.

    A warning, not an error: the file may exist only where checks run (a monitoring host)."""
    found = []
    for template in _all_of(Template, script):
        for ref in template.refs:
            if ref.file and not os.access(ref.name, os.R_OK):
                why = "does not exist" if not os.path.exists(ref.name) else "cannot be read by this user"
                hint = (
                    "it is read where the check runs: create it there, chmod 600 for a secret"
                    if os.path.isabs(ref.name)
                    else "a relative path is read from the directory the run starts in"
                )
                found.append(
                    _warn(f"{ref}: the file {why} here; a run that needs it will stop", template.location, hint)
                )
    return found


def _regexes(script: Script) -> Iterator[tuple[str, Location]]:
    """Every regex the script writes, variables stubbed as at load time."""
    for pattern in _all_of(Pattern, script):
        if pattern.kind is PatternKind.REGEX:
            yield _stubbed(pattern.source), pattern.location
    for match in _all_of(HeaderMatch, script):
        if match.kind is PatternKind.REGEX:
            yield _stubbed(match.source), match.location
    for expression in _all_of(Expression, script):
        for compare in _all_of(Compare, expression.root):
            if compare.op in ("=~", "!~") and isinstance(compare.right, Literal):
                yield str(compare.right.value), expression.location


def _stubbed(source: Template) -> str:
    return "".join(part if isinstance(part, str) else "x" for part in source.parts)


def _backtracking(script: Script) -> list[Diagnostic]:
    """A regex that a peer could make hang until its step's deadline (where the run then fails)."""
    found = []
    for source, where in _regexes(script):
        try:
            text = hostile_text(regex.compile(source))
        except regex.error:
            continue  # the loader reports it
        if text is not None:
            shown = f"{text[:8]}…" if len(text) > 8 else text
            found.append(
                _warn(f"regex /{source}/ backtracks catastrophically on text like {shown!r}", where, BACKTRACKING_HINT)
            )
    return found
