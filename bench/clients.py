"""The measured side of each benchmark, one process per measurement so that its peak RSS is its
own (the parent reads it from ``os.wait4``).

    python bench/clients.py KIND PORT [COUNT]

Prints one JSON line: ``seconds`` is the wall time of the measured part only (after connecting
and logging in), so start-up does not blur a rate; ``cpu`` is the process's CPU time over the
same part (for amiscript: over the whole run, connecting and logging in included), which a
machine busy with other work disturbs less. Kinds:

- ``action``: amiscript, an `action` step (Ping) waiting for its ActionID through the events;
- ``expect``: amiscript, a raw regex `expect` for the answer's first two lines;
- ``pexpect``: pexpect's socket spawn, ``expect()`` with its default settings;
- ``panoramisk``: panoramisk's ``Manager.send_action`` (asyncio);
- ``ping-amiscript`` / ``ping-panoramisk``: COUNT sequential Pings on one connection.
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import time

ACTION_ID = "bench-1"
ANSWER = rb"Response: Success\r\nActionID: bench-1\r\n"
TIMEOUT = 3600


CPU = {"seconds": 0.0}  # the CPU time of the measured part, set by each kind
RECEIVED = {"bytes": 0}  # bytes received in the measured part, where a kind counts them


def _amiscript(steps: str, port: int) -> float:
    """Run a script over TCP; the wall time of all but its first step (which connects and logs in
    or reads the banner), overhead between steps included."""
    from amiscript.engine import Interpreter
    from amiscript.frontend import open_transport
    from amiscript.report import HumanReport
    from amiscript.script import load_script_text

    text = f"""name: bench
timeout: {TIMEOUT}
connect: {{transport: tcp, host: 127.0.0.1, port: "{port}"}}
steps:
{steps}"""
    script = load_script_text(text, "bench.yaml")
    out = io.StringIO()
    interpreter = Interpreter(script, open_transport, HumanReport(out, out))
    started, cpu = time.perf_counter(), time.process_time()
    code = interpreter.run()
    seconds, CPU["seconds"] = time.perf_counter() - started, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"amiscript run failed ({code}): {out.getvalue()}")
    return seconds - interpreter.records[0].seconds


LOGIN = "  - login: {username: admin, secret: secret5}\n"


def action(port: int, count: int) -> float:
    return _amiscript(LOGIN + "  - action: {Action: Ping}\n", port)


def expect(port: int, count: int) -> float:
    steps = (
        '  - send: "Action: Ping\\r\\nActionID: bench-1\\r\\n\\r\\n"\n'
        "  - expect: 'Response: Success\\r\\nActionID: bench-1\\r\\n'\n"
    )
    # the send step takes no time worth counting; the expect step is the stream
    return _amiscript("  - expect: Manager\n" + steps, port)


def ping_amiscript(port: int, count: int) -> float:
    # one foreach over a comma-separated text: COUNT literal steps would pass the loader's node limit
    rounds = ",".join(["x"] * count)
    loop = f"  - foreach: '{rounds}'\n    as: round\n    steps:\n      - action: {{Action: Ping}}\n"
    return _amiscript(LOGIN + loop, port)


def pexpect_socket(port: int, count: int) -> float:
    from pexpect.socket_pexpect import SocketSpawn

    sock = socket.create_connection(("127.0.0.1", port))
    child = SocketSpawn(sock, timeout=TIMEOUT)
    child.expect("Manager")
    started, cpu = time.perf_counter(), time.process_time()
    child.send(f"Action: Ping\r\nActionID: {ACTION_ID}\r\n\r\n")
    child.expect(ANSWER)
    seconds, CPU["seconds"] = time.perf_counter() - started, time.process_time() - cpu
    sock.close()
    return seconds


def _panoramisk(port: int, count: int) -> float:
    import asyncio
    import logging

    from panoramisk import Manager

    logging.disable(logging.CRITICAL)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        manager = Manager(
            loop=loop, host="127.0.0.1", port=port, username="admin", secret="secret5", ping_delay=TIMEOUT
        )
        await manager.connect()
        while not manager.authenticated:
            await asyncio.sleep(0.001)
        started, cpu = time.perf_counter(), time.process_time()
        for number in range(count):
            answer = await manager.send_action({"Action": "Ping", "ActionID": f"{ACTION_ID}-{number}"})
            if not answer.success:
                raise SystemExit(f"panoramisk: {answer}")
        seconds, CPU["seconds"] = time.perf_counter() - started, time.process_time() - cpu
        manager.close()
        return seconds

    return asyncio.run(main())


def panoramisk(port: int, count: int) -> float:
    return _panoramisk(port, 1)


def ping_panoramisk(port: int, count: int) -> float:
    return _panoramisk(port, count)


def ping_raw(port: int, count: int) -> float:
    """The floor: a bare socket sending one Ping and reading until its answer, COUNT times."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    sock.sendall(b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\n\r\n")
    end = re.compile(rb"Response: \w+\r\n(?:[^\r\n]*\r\n)*?\r\n")
    buf = b""
    while not end.search(buf):
        buf += sock.recv(65536)
    started, cpu = time.perf_counter(), time.process_time()
    for number in range(count):
        sock.sendall(f"Action: Ping\r\nActionID: {number}\r\n\r\n".encode())
        marker = f"ActionID: {number}\r\n".encode()
        buf = b""
        while marker not in buf:
            buf += sock.recv(65536)
    seconds, CPU["seconds"] = time.perf_counter() - started, time.process_time() - cpu
    sock.close()
    return seconds


def ping_pipelined(port: int, count: int) -> float:
    """A server's own ceiling: COUNT Pings written at once, then all their answers read."""
    sock = socket.create_connection(("127.0.0.1", port))
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    sock.sendall(b"Action: Login\r\nUsername: admin\r\nSecret: secret5\r\n\r\n")
    burst = b"".join(f"Action: Ping\r\nActionID: {number}\r\n\r\n".encode() for number in range(count))
    last = f"ActionID: {count - 1}\r\n".encode()
    started, cpu = time.perf_counter(), time.process_time()
    sock.sendall(burst)
    buf = b""
    while last not in buf[-200:]:
        buf += sock.recv(1 << 20)
    RECEIVED["bytes"] = len(buf)
    seconds, CPU["seconds"] = time.perf_counter() - started, time.process_time() - cpu
    sock.close()
    return seconds


KINDS = {
    "action": action,
    "expect": expect,
    "pexpect": pexpect_socket,
    "panoramisk": panoramisk,
    "ping-amiscript": ping_amiscript,
    "ping-panoramisk": ping_panoramisk,
    "ping-raw": ping_raw,
    "ping-pipelined": ping_pipelined,
}


def main(argv: list[str]) -> int:
    kind, port = argv[0], int(argv[1])
    count = int(argv[2]) if len(argv) > 2 else 1
    seconds = KINDS[kind](port, count)
    print(json.dumps({"seconds": seconds, "cpu": CPU["seconds"], "bytes": RECEIVED["bytes"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
