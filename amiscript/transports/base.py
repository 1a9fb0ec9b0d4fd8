"""What every transport is: bytes out, bytes in with a timeout, close. Nothing about AMI.

OS and library errors become amiscript errors here, at the edge, and nowhere else.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect, with every variable already resolved.

    ``host``/``port`` serve tcp and telnet; ``command``/``env``/``cwd`` serve spawn.
    """

    transport: str
    host: str
    port: int
    connect_timeout: float
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None

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
