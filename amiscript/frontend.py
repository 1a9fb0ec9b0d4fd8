"""What every front end shares (the command line, the pytest plugin): opening a transport by
name, reading --target URLs and vars files. Front ends import this; nothing here imports them."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from amiscript.engine import TargetOverride
from amiscript.errors import ScriptError, TransportError, UsageError
from amiscript.script import Script
from amiscript.script.template import parse_template
from amiscript.script.yamlnodes import YMap, YStr, load_yaml_file
from amiscript.transports.base import Target, TlsOptions, Transport
from amiscript.transports.tcp import TcpTransport


def open_transport(target: Target) -> Transport:
    if target.transport == "tcp":
        return TcpTransport.open(target)
    if target.transport == "tls":
        from amiscript.transports.tls import TlsTransport

        return TlsTransport.open(target)
    # pexpect is imported only by scripts that spawn: a TCP run does not pay for it
    from amiscript.transports.spawn import SpawnTransport, TelnetTransport

    if target.transport == "telnet":
        return TelnetTransport.open(target)
    if target.transport == "spawn":
        return SpawnTransport.open(target)
    raise TransportError(f"transport {target.transport!r} is not available")


def opener(tls: TlsOptions) -> Callable[[Target], Transport]:
    """open_transport with the command line's TLS options over those of the script's `connect:`."""
    if tls == TlsOptions():
        return open_transport
    return lambda target: open_transport(replace(target, tls=tls.over(target.tls)))


def parse_var_options(items: Sequence[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` options. A malformed one is named by its place, never shown: a secret
    typed without its name (``--var s3cret``) must not reach a CI log."""
    values: dict[str, str] = {}
    for number, item in enumerate(items, 1):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            what = "has no '='" if not sep else "has no name before '='"
            raise UsageError(
                f"{option} number {number} {what}: write {option} NAME=VALUE, such as {option} mailbox=123@default"
                " (what was given is not shown: it may be a secret)"
            )
        values[name.strip()] = value
    return values


def read_vars_file(path: str) -> dict[str, str]:
    root = load_yaml_file(Path(path), path, "vars file")
    if not isinstance(root, YMap):
        raise ScriptError("a vars file must be a mapping of names to values", root.location)
    return given_values(root)


def given_values(mapping: YMap) -> dict[str, str]:
    """Values given from outside a script (a vars file, an inventory target's `vars:`): text,
    with ${env:NAME} and ${file:PATH} read now, so credentials need not be written in the file.
    A mistake is reported at its file:line."""
    values: dict[str, str] = {}
    for name, value in mapping.items():
        if not isinstance(value, YStr):
            raise ScriptError(f"variable {name!r} must be text, not a list or mapping", value.location)
        values[name] = parse_template(str(value), value.location).render({}, environ=os.environ)
    return values


TARGET_SCHEMES = ("tcp", "tls", "telnet")
DEFAULT_PORTS = {"tls": 5039}  # Asterisk's AMI-over-TLS port; plain AMI's 5038 is always written out


def parse_target(url: str, *, scheme_only: bool = False, given_as: str = "--target") -> TargetOverride:
    """tcp://HOST:PORT, tls://HOST[:PORT] or telnet://HOST:PORT; with --simulate the scheme alone will do.
    Any other text is a UsageError naming ``given_as`` (the option, or an inventory's `url:`)."""
    shown = f"{given_as} {url!r}"
    expected = f"{shown}: expected tcp://HOST:PORT, tls://HOST[:PORT] or telnet://HOST:PORT"
    if any(char.isspace() or not char.isprintable() for char in url):
        raise UsageError(f"{shown}: a URL has no spaces or control characters")
    from urllib.parse import urlsplit  # only --target needs it (and its ipaddress import)

    try:
        parts = urlsplit(url)
    except ValueError:
        raise UsageError(f"{shown}: not a valid URL (an IPv6 address goes in brackets: tcp://[::1]:5038)") from None
    if "@" in parts.netloc:
        # a password here would be ignored, then shown in every label and report: refuse, masked
        masked = parts._replace(netloc="****@" + parts.netloc.rpartition("@")[2]).geturl()
        raise UsageError(
            f"{given_as} {masked!r}: a user or password in the URL is not used; give them as variables "
            "(--var username=NAME, the secret from ${env:NAME} or ${file:PATH})"
        )
    if parts.scheme not in TARGET_SCHEMES:
        raise UsageError(expected)
    if scheme_only:
        if parts.netloc:
            raise UsageError(
                f"{shown}: with --simulate the simulator's address is used; give only the scheme, "
                f"such as {parts.scheme}://"
            )
        return TargetOverride(parts.scheme, "", 0)
    try:
        port = parts.port if parts.port is not None else DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        raise UsageError(f"{shown}: the port must be a number from 1 to 65535") from None
    if not parts.hostname or port is None or port == 0 or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(expected)
    return TargetOverride(parts.scheme, parts.hostname, port)


def simulated_target(script: Script, override: TargetOverride | None, address: tuple[str, int]) -> TargetOverride:
    """Point a run at the simulator: the simulator speaks TCP, but a script (or a --target
    scheme) that goes through telnet keeps going through telnet. TLS becomes plain TCP: the
    built-in simulator has no certificate (`amiscript simulate --tls-cert` serves TLS)."""
    if override is not None:
        return TargetOverride("tcp" if override.transport == "tls" else override.transport, *address)
    spec = script.connect
    return TargetOverride("telnet" if spec is not None and spec.transport.raw == "telnet" else "tcp", *address)
