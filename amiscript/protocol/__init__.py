"""The AMI protocol core: packets, an incremental reader and the encoder; no I/O, no clock."""

from amiscript.protocol.codec import (
    CLIENT_MAX_HEADERS,
    CLIENT_MAX_LINE,
    SERVER_MAX_HEADERS,
    SERVER_MAX_LINE,
    Event,
    PacketReader,
    Signal,
)
from amiscript.protocol.packet import (
    Banner,
    Malformed,
    Packet,
    Problem,
    UnsafeHeader,
    encode_banner,
    encode_packet,
)

__all__ = [
    "CLIENT_MAX_HEADERS",
    "CLIENT_MAX_LINE",
    "SERVER_MAX_HEADERS",
    "SERVER_MAX_LINE",
    "Banner",
    "Event",
    "Malformed",
    "Packet",
    "PacketReader",
    "Problem",
    "Signal",
    "UnsafeHeader",
    "encode_banner",
    "encode_packet",
]
