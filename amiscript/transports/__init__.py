"""Transports: bytes in, bytes out. The engine sees them only through ``Transport``."""

from amiscript.transports.base import Target, Transport

__all__ = ["Target", "Transport"]
