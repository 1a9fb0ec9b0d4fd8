"""Minimal AMI servers for the benchmarks, each run as its own process so that it never shares
a core's interpreter lock with the client being measured.

    python bench/servers.py stream --mb 10    # a busy PBX: N MB of events before each answer
    python bench/servers.py echo              # answers every action at once (a ceiling for pings)

Both print ``port N`` once listening and serve until killed. They speak just enough AMI for
the clients under test: the banner, `Response: Success` to Login (then `Event: FullyBooted`,
which panoramisk waits for), `Response: Goodbye` to Logoff, and `Response: Success` with the
action's ActionID to anything else, preceded (stream) by the events.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import sys
import threading

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MB = 1 << 20
BLOCK = 4 * MB  # distinct event bytes generated once, then sent over and over

_CHANNELS = ("PJSIP/alice", "PJSIP/bob", "PJSIP/carol-trunk", "SIP/provider", "IAX2/branch-office", "Local/600@queues")
_EVENTS = {
    "Newchannel": ("Exten", "Context", "Priority", "Language", "AccountCode"),
    "Newstate": ("ConnectedLineNum", "ConnectedLineName", "Language"),
    "VarSet": ("Variable", "Value"),
    "Hangup": ("Cause", "Cause-txt"),
    "DialBegin": ("DestChannel", "DestChannelState", "DestCallerIDNum", "DialString"),
    "RTCPSent": ("SSRC", "PT", "To", "ReportCount", "SentNTP", "SentRTP", "SentPackets", "SentOctets"),
    "QueueMemberStatus": ("Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty", "CallsTaken"),
    "PeerStatus": ("ChannelType", "Peer", "PeerStatus", "Address"),
    "Cdr": ("Source", "Destination", "DestinationContext", "Duration", "BillableSeconds", "Disposition", "AMAFlags"),
}


def event_block(size: int = BLOCK, seed: int = 5038) -> bytes:
    """``size`` bytes (rounded to whole events) of AMI events, 300-600 bytes each, headers varied."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    total = 0
    while total < size:
        name, extra = rng.choice(list(_EVENTS.items()))
        target = rng.randint(300, 600)
        channel = f"{rng.choice(_CHANNELS)}-{rng.randrange(16**8):08x}"
        unique = f"{rng.randint(1700000000, 1800000000)}.{rng.randint(1, 99999)}"
        lines = [
            f"Event: {name}",
            "Privilege: call,all",
            f"Channel: {channel}",
            f"ChannelState: {rng.randint(0, 6)}",
            f"ChannelStateDesc: {rng.choice(('Down', 'Ring', 'Ringing', 'Up', 'Busy'))}",
            f"CallerIDNum: {rng.randint(100, 99999)}",
            f"CallerIDName: {rng.choice(('Alice', 'Bob', 'Front Desk', '<unknown>', 'Sales Queue'))}",
            f"Uniqueid: {unique}",
            f"Linkedid: {unique}",
        ]
        lines += [f"{header}: {rng.choice(('', 'x' * rng.randint(1, 40), str(rng.random())))}" for header in extra]
        text = "\r\n".join(lines) + "\r\n"
        if len(text) + 2 < target:
            text += f"Filler: {'y' * (target - len(text) - 12)}\r\n"
        data = (text + "\r\n").encode()
        parts.append(data)
        total += len(data)
    return b"".join(parts)


def _packets(conn: socket.socket):  # type: ignore[no-untyped-def]
    """Yield each action the client sends as a dict of lower-cased header names."""
    buf = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buf:
            raw, buf = buf.split(b"\n\n", 1)
            headers = {}
            for line in raw.decode("utf-8", "replace").split("\n"):
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if headers:
                yield headers


def _answer(headers: dict[str, str], extra: str = "") -> bytes:
    action_id = f"ActionID: {headers['actionid']}\r\n" if "actionid" in headers else ""
    return f"Response: Success\r\n{action_id}{extra}\r\n".encode()


def serve_connection(conn: socket.socket, stream_bytes: int, block: bytes) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(BANNER)
        for headers in _packets(conn):
            action = headers.get("action", "").lower()
            if action == "login":
                conn.sendall(
                    _answer(headers, "Message: Authentication accepted\r\n")
                    + b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
                )
            elif action == "logoff":
                conn.sendall(b"Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n")
                return
            else:
                left = stream_bytes
                view = memoryview(block)
                while left > 0:
                    piece = view[: min(left, len(block))]
                    conn.sendall(piece)
                    left -= len(piece)
                conn.sendall(_answer(headers, "Ping: Pong\r\nTimestamp: 1764146400.000000\r\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("stream", "echo"))
    parser.add_argument("--mb", type=float, default=0, help="MB of events before each answer (stream)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    block = event_block() if args.kind == "stream" else b""
    # Whole events only, so every client sees the same packets (the answer starts a packet).
    stream_bytes = _whole_events(block, int(args.mb * MB)) if args.kind == "stream" else 0
    listener = socket.create_server(("127.0.0.1", args.port), backlog=512)
    print(f"port {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_guarded, args=(conn, stream_bytes, block), daemon=True).start()


def _whole_events(block: bytes, size: int) -> int:
    """``size`` rounded down to a multiple that ends on an event boundary of the repeated block."""
    full, rest = divmod(size, len(block))
    cut = block.rfind(b"\r\n\r\n", 0, rest)
    return full * len(block) + (cut + 4 if cut >= 0 else 0)


def _guarded(conn: socket.socket, stream_bytes: int, block: bytes) -> None:
    with contextlib.suppress(OSError):
        serve_connection(conn, stream_bytes, block)


if __name__ == "__main__":
    sys.exit(main())
