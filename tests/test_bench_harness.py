"""The benchmark harness (bench/) still runs: its servers, its clients and their JSON line. The
full `python bench/run.py --quick` takes about a minute, so this runs the pieces once each on a
small stream instead. No timing is asserted: only that each measurement completes and is sane."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from servers import event_block  # noqa: E402


@contextmanager
def server(*args: str) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, str(BENCH / "servers.py"), *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline().split()[1])
    finally:
        proc.terminate()
        proc.wait(10)


def client(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(BENCH / "clients.py"), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_stream_is_whole_realistic_events_of_300_to_600_bytes() -> None:
    block = event_block(256 << 10)
    events = block.split(b"\r\n\r\n")[:-1]
    assert len(events) > 400
    assert all(296 <= len(event) + 4 <= 600 and event.startswith(b"Event: ") for event in events)
    assert len({event.split(b"\r\n", 1)[0] for event in events}) >= 5  # several kinds
    assert b"ActionID: bench-1" not in block  # only the answer may match


@pytest.mark.parametrize("kind", ["action", "expect", "pexpect"])
def test_each_client_reads_through_a_stream_to_its_answer(kind: str) -> None:
    with server("stream", "--mb", "0.25") as port:
        result = client(kind, str(port))
    assert result["seconds"] > 0 and result["cpu"] > 0


@pytest.mark.parametrize("kind", ["ping-amiscript", "ping-raw", "ping-pipelined"])
def test_ping_clients_complete_their_round_trips(kind: str) -> None:
    with server("echo") as port:
        result = client(kind, str(port), "5000")  # bench/run.py's count (a script of 5000 steps once broke)
    assert result["seconds"] > 0


def test_the_delayed_ack_count_sees_a_wait_that_every_run_pays() -> None:
    """Counted against the fastest run alone, 40 runs that all waited counted as none."""
    from run import stalls

    every = stalls([0.0513] * 40, [0.097] * 40, 0.097, 0.087)
    assert every.startswith("Expect+telnet: 40 of 40 runs") and "0 of 40 runs 25 ms" in every
    half = stalls([0.0085] * 20 + [0.051] * 20, [0.267, 0.381, 0.241], 0.267, 0.087)
    assert half.startswith("Expect+telnet: 20 of 40 runs") and "3 of 3 runs 25 ms" in half
