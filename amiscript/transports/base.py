"""What every transport is: bytes out, bytes in with a timeout, close. Nothing about AMI.

OS and library errors become amiscript errors here, at the edge, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect, with every variable already resolved."""

    transport: str
    host: str
    port: int
    connect_timeout: float

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


class Transport(Protocol):
    def send(self, data: bytes, timeout: float) -> None:
        """Send all of ``data``; raises ConnectionLost if the peer is gone, TimeoutError-free."""

    def receive(self, timeout: float) -> bytes | None:
        """Up to one chunk: ``b""`` at end of file, ``None`` if nothing came within ``timeout``."""

    def close(self) -> None:
        """Idempotent; never raises."""
