"""What every front end shares (the command line, the pytest plugin): opening a transport by
name, reading --target URLs and vars files. Front ends import this; nothing here imports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from amiscript.engine import TargetOverride
from amiscript.errors import ScriptError, TransportError, UsageError
from amiscript.script import Script
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


def read_vars_file(path: str) -> dict[str, str]:
    root = load_yaml_file(Path(path), path)
    if not isinstance(root, YMap):
        raise ScriptError("a vars file must be a mapping of names to values", root.location)
    values: dict[str, str] = {}
    for name, value in root.items():
        if not isinstance(value, YStr):
            raise ScriptError(f"variable {name!r} must be text, not a list or mapping", value.location)
        values[name] = str(value)
    return values


TARGET_SCHEMES = ("tcp", "tls", "telnet")
DEFAULT_PORTS = {"tls": 5039}  # Asterisk's AMI-over-TLS port; plain AMI's 5038 is always written out


def parse_target(url: str, *, scheme_only: bool = False) -> TargetOverride:
    """tcp://HOST:PORT, tls://HOST[:PORT] or telnet://HOST:PORT; with --simulate the scheme alone will do."""
    expected = f"--target {url!r}: expected tcp://HOST:PORT, tls://HOST[:PORT] or telnet://HOST:PORT"
    from urllib.parse import urlsplit  # only --target needs it (and its ipaddress import)

    parts = urlsplit(url)
    if "@" in parts.netloc:
        # a password here would be ignored, then shown in every label and report: refuse, masked
        shown = parts._replace(netloc="****@" + parts.netloc.rpartition("@")[2]).geturl()
        raise UsageError(
            f"--target {shown!r}: a user or password in the URL is not used; give them as variables "
            "(--var username=NAME, the secret from ${env:NAME} or ${file:PATH})"
        )
    if parts.scheme not in TARGET_SCHEMES:
        raise UsageError(expected)
    if scheme_only:
        if parts.netloc:
            raise UsageError(
                f"--target {url!r}: with --simulate the simulator's address is used; give only the scheme, "
                f"such as --target {parts.scheme}://"
            )
        return TargetOverride(parts.scheme, "", 0)
    try:
        port = parts.port if parts.port is not None else DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        raise UsageError(f"--target {url!r}: the port must be a number from 1 to 65535") from None
    if not parts.hostname or port is None or port == 0 or parts.path not in ("", "/"):
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
