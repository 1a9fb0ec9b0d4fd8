"""What every transport is: bytes out, bytes in with a timeout, close. Nothing about AMI.

OS and library errors become amiscript errors here, at the edge, and nowhere else.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How a tls target is checked; every field left empty means the safe default.

    The server's certificate is verified against the system's trust store (or ``cacert``)
    and must name ``server_name`` (default: the host connected to) unless ``insecure``.
    """

    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None
    insecure: bool = False

    def over(self, base: TlsOptions) -> TlsOptions:
        """These options where given, ``base``'s elsewhere: the command line over the script.
        A certificate comes with its own key (or none: then it is in the certificate's file)."""
        return TlsOptions(
            self.cacert or base.cacert,
            self.cert or base.cert,
            self.key if self.cert else self.key or base.key,
            self.server_name or base.server_name,
            self.insecure or base.insecure,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect, with every variable already resolved.

    ``host``/``port`` serve tcp, tls and telnet; ``tls`` serves tls; ``command``/``env``/``cwd`` serve spawn.
    """

    transport: str
    host: str
    port: int
    connect_timeout: float
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    tls: TlsOptions = TlsOptions()

    def __str__(self) -> str:
        if self.transport == "spawn":
            return f"spawn: {shlex.join(self.command)}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


class Transport(Protocol):
    def send(self, data: bytes, timeout: float) -> None:
        """Send all of ``data``; raises ConnectionLost if the peer is gone, TimeoutError-free."""

    def receive(self, timeout: float) -> bytes | None:
        """Up to one chunk: ``b""`` at end of file, ``None`` if nothing came within ``timeout``."""

    def close(self) -> None:
        """Idempotent; never raises."""
