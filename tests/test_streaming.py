"""A PBX that streams events: memory stays flat and the run still ends on time."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from .helpers import AMISCRIPT
from .peers import read_until, tcp_peer

EVENT = (
    b"Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: Local/100@default-00000001;2\r\n"
    b"ChannelState: 4\r\nChannelStateDesc: Ring\r\nCallerIDNum: 100\r\nContext: default\r\n"
    b"Exten: 100\r\nPriority: 1\r\nApplication: Playback\r\nAppData: hello-world\r\n"
    b"Uniqueid: 1795673800.12\r\nLinkedid: 1795673800.11\r\n\r\n"
)
FLOOD_BYTES = 64 << 20
PEAK_LIMIT_KIB = 48 << 10  # measured ~22 MiB; an unbounded buffer would hold the whole 64 MiB


def test_memory_stays_flat_while_a_peer_streams_64_mib_of_events(tmp_path: Path) -> None:
    def flood(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        block = EVENT * 256
        sent = 0
        while sent < FLOOD_BYTES:
            conn.sendall(block)
            sent += len(block)
        conn.sendall(b"Response: Success\r\nActionID: late\r\n\r\n")
        read_until(conn, b"never", 2.0)

    script = tmp_path / "wait.yaml"
    script.write_text(
        "connect: {}\ntimeout: 60\nsteps:\n"
        "  - expect: 'Response: Success\\r\\nActionID: (?P<id>\\w+)'\n"
        "  - print: got ${id}\n"
    )
    measure = (
        "import resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, result.returncode)\n"
        "print(result.stdout + result.stderr)\n"
    )
    with tcp_peer(flood) as (host, port):
        completed = subprocess.run(
            [sys.executable, "-c", measure, *AMISCRIPT, "run", str(script), "--target", f"tcp://{host}:{port}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    first, *rest = completed.stdout.splitlines()
    peak_kib, code = (int(value) for value in first.split())
    assert (code, rest[0]) == (0, "got late"), completed.stdout
    assert peak_kib < PEAK_LIMIT_KIB, f"peak RSS {peak_kib} KiB"
