"""Turn declared variables, --var values and defaults into the values a run starts with."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from amiscript.errors import Location, ScriptError, UsageError
from amiscript.script.model import Script
from amiscript.script.template import Ref


def resolve_variables(
    script: Script, given: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The starting values and the secret values to mask; nothing is sent before this passes.

    Defaults are rendered in declaration order, so a default may use variables declared
    above it and ``${env:NAME}``.
    """
    known = {spec.name for spec in script.vars} | set(script.implicit_vars)
    for name in given:
        if name not in known:
            declared = [spec.name for spec in script.vars]
            import difflib  # only a misspelling needs it: kept out of every run's start-up

            close = difflib.get_close_matches(name, declared, n=1)
            raise UsageError(
                f"variable {name!r} was given (--var or --vars-file) but {script.path} declares no such variable"
                f" (it declares: {', '.join(declared) or 'none'})",
                hint=f"did you mean {close[0]!r}?" if close else "",
            )
    values: dict[str, str] = {}
    secrets: list[str] = []
    for spec in script.vars:
        if spec.name in given:
            values[spec.name] = given[spec.name]
        elif spec.default is not None:
            values[spec.name] = spec.default.render(values, environ=environ)
        elif spec.required:
            help_text = f" ({spec.help})" if spec.help else ""
            raise ScriptError(
                f"variable {spec.name!r} is required{help_text}",
                spec.location,
                hint=f"pass --var {spec.name}=VALUE",
            )
        if spec.secret and spec.name in values:
            secrets.append(values[spec.name])
    for name, value in given.items():
        values.setdefault(name, value)
    return values, secrets


def refuse_line_breaks(where: Location, what: str) -> Callable[[Ref, str], str]:
    """A substituted value must not add lines (CR, LF) or end a string (NUL): that would
    inject headers or whole actions (the book warns AMI can run shell commands)."""

    def check(ref: Ref, value: str) -> str:
        bad = line_break_in(value)
        if bad is not None:
            raise ScriptError(
                f"{ref} contains {bad}; refusing to put it into {what}",
                where,
                hint="a value cannot add header lines or actions; check where the value came from",
            )
        return value

    return check


_CONTROL_NAMES = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\0": "a NUL byte"}


def line_break_in(value: str) -> str | None:
    """What in ``value`` would end an AMI header line (CR, LF) or a C string (NUL), named for a message."""
    return next((name for char, name in _CONTROL_NAMES.items() if char in value), None)
