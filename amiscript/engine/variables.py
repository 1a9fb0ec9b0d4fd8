"""Turn declared variables, --var values and defaults into the values a run starts with."""

from __future__ import annotations

from collections.abc import Mapping

from amiscript.errors import ScriptError, UsageError
from amiscript.script.model import Script


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
            declared = ", ".join(spec.name for spec in script.vars) or "none"
            raise UsageError(
                f"--var {name}: {script.path} declares no variable {name!r} (it declares: {declared})"
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
