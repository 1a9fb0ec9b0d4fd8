"""A regex that backtracks catastrophically ends its step at the step's deadline; it never hangs a run.

The patterns here are ones the ``regex`` package really does backtrack on exponentially
(its own safeguards defuse the textbook ``(a+)+$``): a repeated group whose alternatives
overlap, against a long line that almost matches.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import regex

from amiscript.engine.matcher import Searcher, StreamBuffer
from amiscript.errors import Location, RegexTimeout
from amiscript.protocol import Packet
from amiscript.script.expr import parse_expression
from amiscript.script.timedregex import Budget

from .helpers import AMISCRIPT
from .peers import tcp_peer
from .test_ami_steps import pkt, run, success

CATASTROPHIC = r"(a|aa)+$"
HOSTILE = "a" * 80 + "!"  # almost matches: every way to split the a's is tried
SLACK = 0.5  # seconds past the deadline a run may take to end (written bound of issue 7)


def test_a_catastrophic_pattern_in_the_matcher_stops_at_its_budget_naming_where_it_was_written() -> None:
    buffer = StreamBuffer()
    buffer.feed(HOSTILE.encode())
    where = Location("t.yaml", 7, 11)
    search = Searcher([regex.compile("never"), regex.compile(CATASTROPHIC)], [Location("t.yaml", 6, 11), where])
    started = time.monotonic()
    with pytest.raises(RegexTimeout) as raised:
        search.search(buffer, budget=Budget.of(0.3))
    assert time.monotonic() - started < 0.3 + SLACK
    assert raised.value.location == where
    assert f"regex /{CATASTROPHIC}/ did not finish by its step's deadline (0.3 s)" in raised.value.message
    assert "(a|aa)+" in raised.value.hint and raised.value.exit_code == 1


def test_the_deadline_holds_by_the_clock_while_other_processes_take_the_cpu() -> None:
    """The regex package's own timeout counts this process's CPU time, which runs slow when the
    CPUs are shared: the bound must still hold by the clock."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        time.sleep(0.2)  # let them take the CPUs
        buffer = StreamBuffer()
        buffer.feed(HOSTILE.encode())
        started = time.monotonic()
        with pytest.raises(RegexTimeout):
            Searcher([regex.compile(CATASTROPHIC)]).search(buffer, budget=Budget.of(0.5))
        assert time.monotonic() - started < 0.5 + SLACK
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def test_a_sane_pattern_still_matches_at_the_deadline_with_no_time_left() -> None:
    buffer = StreamBuffer()
    buffer.feed(b"Response: Success")  # mid-line: only a final search takes it
    found = Searcher([regex.compile(r"Response: \w+")]).search(buffer, final=True, budget=Budget(deadline=-1.0))
    assert found is not None and found.text == "Response: Success"


def test_a_catastrophic_regex_in_an_expression_stops_at_its_budget() -> None:
    expression = parse_expression(f"line =~ '{CATASTROPHIC}'", Location("t.yaml", 3, 13))
    started = time.monotonic()
    with pytest.raises(RegexTimeout) as raised:
        expression.evaluate({"line": HOSTILE}, Budget.of(0.3))
    assert time.monotonic() - started < 0.3 + SLACK
    assert str(raised.value).startswith(
        f"t.yaml:3:13: regex /{CATASTROPHIC}/ did not finish by its step's deadline (0.3 s)"
    )


def echo_answer(packet: Packet) -> bytes:
    """Answers every action with Success; a UserEvent also comes back as the event it sends."""
    reply = success(packet, ("Line", HOSTILE))
    if packet.get("Action") == "UserEvent":
        reply += pkt(("Event", "UserEvent"), ("UserEvent", packet.get("UserEvent") or ""), ("Line", HOSTILE))
    return reply


@pytest.mark.parametrize(
    ("steps", "line"),
    [
        (f"  - action: {{Action: Ping}}\n    timeout: 0.3\n    expect: {{Line: {{re: '{CATASTROPHIC}'}}}}\n", 6),
        (
            "  - action: {Action: UserEvent, UserEvent: x}\n    timeout: 2\n"
            f"  - wait_event: {{Event: UserEvent, Line: {{re: '{CATASTROPHIC}'}}}}\n    timeout: 0.3\n",
            6,
        ),
        (f"  - set: {{line: '{HOSTILE}'}}\n  - assert: line =~ '{CATASTROPHIC}'\n", 5),
        (f"  - set: {{line: '{HOSTILE}'}}\n  - repeat:\n      - print: x\n    until: line =~ '{CATASTROPHIC}'\n", 7),
    ],
    ids=["action-expect", "wait_event-filter", "assert", "repeat-until"],
)
def test_every_step_that_runs_a_script_regex_ends_when_it_backtracks(steps: str, line: int) -> None:
    """``line``: where the regex is written (after `connect:`, `timeout:` and `steps:`)."""
    started = time.monotonic()
    with pytest.raises(RegexTimeout) as raised:
        run(f"timeout: 0.3\nsteps:\n{steps}", echo_answer)
    assert time.monotonic() - started < 0.3 + SLACK
    assert raised.value.location is not None and raised.value.location.line == line
    assert f"regex /{CATASTROPHIC}/ did not finish" in raised.value.message


def test_a_hostile_peer_cannot_hang_a_run_through_a_catastrophic_expect(tmp_path: Path) -> None:
    accepted: list[float] = []

    def hostile(conn: socket.socket) -> None:
        accepted.append(time.monotonic())
        conn.sendall(HOSTILE.encode())  # no newline: the line stays open and the regex keeps trying
        time.sleep(10)

    script = tmp_path / "hostile.yaml"
    script.write_text(f"connect: {{}}\nsteps:\n  - expect: '{CATASTROPHIC}'\n    timeout: 1\n")
    with tcp_peer(hostile) as (host, port):
        process = subprocess.Popen(
            [*AMISCRIPT, "run", str(script), "--target", f"tcp://{host}:{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stderr is not None
            first = process.stderr.readline()  # the run has ended when it says why
            reported = time.monotonic()
            rest = process.stderr.read()
            code = process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert accepted and reported - accepted[0] < 1 + SLACK  # the step's timeout is 1 s, counted from its start
    assert code == 1
    assert first.startswith(
        f"amiscript: error: {script}:3:13: regex /{CATASTROPHIC}/ did not finish by its step's deadline (1 s)"
    )
    assert "Traceback" not in first + rest


def test_check_warns_of_a_regex_that_backtracks_catastrophically_wherever_it_is_written(tmp_path: Path) -> None:
    script = tmp_path / "warn.yaml"
    script.write_text(
        "vars: {line: x}\nsteps:\n"
        f"  - expect: '{CATASTROPHIC}'\n"
        "  - expect:\n      - re: '(x|x)+y'\n"
        f"  - action: {{Action: Ping}}\n    expect: {{Line: {{re: '{CATASTROPHIC}'}}}}\n"
        f"  - wait_event: {{Event: X, Line: {{re: '(x|x)+y'}}}}\n"
        f"  - assert: line =~ '{CATASTROPHIC}'\n"
        "  - expect: '(\\d+\\.)+\\d+ and (a+)+$'\n"  # nested, but the regex package does not blow up on these
    )
    result = subprocess.run([*AMISCRIPT, "check", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    warned = [line.split(": warning: ")[0] for line in result.stdout.splitlines() if ": warning: regex /" in line]
    assert warned == [f"{script}:{where}" for where in ("3:13", "5:13", "7:14", "8:28", "9:13")], result.stdout
    assert f"regex /{CATASTROPHIC}/ backtracks catastrophically on text like 'aaaaaaaa…'" in result.stdout
    assert "write it so each character can be matched only one way" in result.stdout


LEFT_BEHIND = """\
import sys, threading, time
import regex
from amiscript.errors import RegexTimeout
from amiscript.script.timedregex import Budget, search

budget = float(sys.argv[1])
cpu = time.process_time()
try:
    search(regex.compile(sys.argv[2]), sys.argv[3], Budget.of(budget))
except RegexTimeout:
    pass
failed, ended = time.process_time(), time.monotonic() + 30
while any(t.name == "amiscript-regex" for t in threading.enumerate()) and time.monotonic() < ended:
    time.sleep(0.05)
print(failed - cpu, time.process_time() - cpu)
"""


def test_a_search_left_behind_at_the_deadline_uses_no_more_cpu_than_the_steps_budget() -> None:
    """The step fails by the clock, and the search it leaves behind ends soon after on its own:
    it used to keep a core busy for 4x the budget plus a second, slowing every other --jobs run."""
    budget = 1.0
    result = subprocess.run(
        [sys.executable, "-c", LEFT_BEHIND, str(budget), CATASTROPHIC, HOSTILE],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    at_failure, in_all = map(float, result.stdout.split())
    assert at_failure <= budget + SLACK
    assert in_all <= budget + SLACK, f"the search went on for {in_all - at_failure:.2f} s of CPU after the step failed"
