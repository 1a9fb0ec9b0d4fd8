"""Building what the server sends: responses, events and Asterisk's time formats.

Header order and wording follow the captures of a real Asterisk 22 exactly; clients match on
them byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from amiscript.protocol import Packet, UnsafeHeader, encode_packet
from amiscript.sim import perms

Headers = list[tuple[str, str]]


def render(headers: Iterable[tuple[str, str]]) -> bytes:
    """Headers to wire bytes, CRLF everywhere.

    Asterisk echoes a client's bytes verbatim (bare CR included, see bare-lf-line-endings), and
    it echoes whole header lines in UserEvent, whose names encode_packet would refuse (a blank
    name, a trailing blank). Those come from our own reader, so they can hold no LF and cannot
    split the packet; only then is the plain join used.
    """
    headers = list(headers)
    try:
        return encode_packet(headers, allow_cr=True)
    except UnsafeHeader:
        if any("\n" in name or "\n" in value for name, value in headers):
            raise
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        return (lines + "\r\n").encode("utf-8", "surrogateescape")


def action_id(packet: Packet) -> str:
    """The ActionID to echo; Asterisk leaves the header out when it is absent or empty."""
    return packet.get("ActionID") or ""


def response(packet: Packet, status: str, message: str | None = None, *more: tuple[str, str]) -> Headers:
    """``Response:``, then ``ActionID:`` when given, then ``Message:`` and any further headers."""
    headers: Headers = [("Response", status)]
    aid = action_id(packet)
    if aid:
        headers.append(("ActionID", aid))
    if message is not None:
        headers.append(("Message", message))
    headers.extend(more)
    return headers


def success(packet: Packet, message: str | None = None, *more: tuple[str, str]) -> bytes:
    return render(response(packet, "Success", message, *more))


def error(packet: Packet, message: str) -> bytes:
    return render(response(packet, "Error", message))


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """An event to fan out: its class decides who may read it; ``data`` is rendered once."""

    category: int
    data: bytes

    @classmethod
    def build(cls, name: str, category: int, headers: Iterable[tuple[str, str]]) -> AmiEvent:
        rows = [("Event", name), ("Privilege", perms.privilege_text(category)), *headers]
        return cls(category, render(rows))


def event_tv(when: float) -> str:
    """Security events' time stamps: local time with milliseconds, ``2026-11-26T06:14:29.611+0000``."""
    moment = datetime.fromtimestamp(when).astimezone()
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}{moment:%z}"


def epoch_usec(when: float) -> str:
    """Ping's ``Timestamp:``: seconds and microseconds since the epoch, ``1795673679.026459``."""
    seconds = int(when)
    micros = min(round((when - seconds) * 1_000_000), 999_999)
    return f"{seconds}.{micros:06d}"


def local_date_time(when: float) -> tuple[str, str]:
    moment = time.localtime(when)
    return time.strftime("%Y-%m-%d", moment), time.strftime("%H:%M:%S", moment)
