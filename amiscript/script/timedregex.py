"""A script's regexes run against the time their step has left, so none can hang a run.

A pattern such as ``(a|aa)+$`` backtracks exponentially on hostile text: a peer only has to
send a long line that almost matches. Every search of a script's pattern (expect, header
checks, wait_event filters, ``=~`` in expressions) goes through ``search`` here with a
``Budget``, and one that runs out ends the step as a RegexTimeout naming the pattern and where
it was written.

The ``regex`` package's own ``timeout`` counts the *process's CPU time*: on a busy machine it
fires late by the clock (twice as late was measured on a loaded 2-core box), and while other
threads work it fires early. So it only keeps the common case cheap: a search runs inline
with a small CPU allowance, and one that needs more runs again in a thread of its own,
waited for by the clock until the deadline and then left behind.

A search left behind cannot be stopped from outside, so its own CPU allowance must end it:
each attempt gets the time left by the clock. A thread never uses more CPU than clock time, so
an attempt cut short by other threads' CPU use ends before the deadline and is tried again
with what is left, and all attempts together use at most the step's budget of CPU: a step
that fails at 2 s leaves no core busy for long after (a first design let it run 4x as long).
The thread is a daemon, so it never holds up the exit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import regex

from amiscript.errors import Location, RegexTimeout
from amiscript.signals import leave_signals_to_main_thread

BACKTRACKING_HINT = (
    "a repeated group whose alternatives overlap, such as (a|aa)+ or (x+x+)+, tries every way to split "
    "the text; write it so each character can be matched only one way, e.g. a+"
)
MIN_SECONDS = 0.05  # even at its deadline, a sane regex gets this long to settle a match
INLINE_CPU_SECONDS = 0.05  # what a search may take inline; nearly all need a tiny fraction of it


@dataclass(frozen=True, slots=True)
class Budget:
    """Until when regex work may go on; the clock is the engine's (monotonic, injectable)."""

    deadline: float
    clock: Callable[[], float] = time.monotonic
    seconds: float = 0.0  # the whole allowance (the step's timeout), for the message

    @classmethod
    def of(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Budget:
        return cls(clock() + seconds, clock, seconds)

    def left(self) -> float:
        return max(self.deadline - self.clock(), MIN_SECONDS)


def search(
    pattern: regex.Pattern[str],
    text: str,
    budget: Budget | None,
    where: Location | None = None,
    *,
    pos: int = 0,
    partial: bool = False,
) -> regex.Match[str] | None:
    """``pattern.search`` bounded by ``budget`` on the clock (None: no bound, outside a run)."""
    if budget is None:
        return pattern.search(text, pos, partial=partial)
    seconds = budget.left()
    try:
        return pattern.search(text, pos, partial=partial, timeout=min(seconds, INLINE_CPU_SECONDS))
    except TimeoutError:
        pass
    if seconds > INLINE_CPU_SECONDS:
        finished = _search_beside(pattern, text, pos, partial, budget.left())
        if finished is not None:
            return finished[0]
    raise _timed_out(pattern.pattern, budget.seconds, len(text) - pos, where)


def _search_beside(
    pattern: regex.Pattern[str], text: str, pos: int, partial: bool, seconds: float
) -> tuple[regex.Match[str] | None] | None:
    """Search in a thread of its own (the GIL released) and wait ``seconds`` by the clock;
    None if it did not finish by then."""
    outcome: list[regex.Match[str] | None] = []
    deadline = time.monotonic() + seconds

    def run() -> None:
        leave_signals_to_main_thread()
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                outcome.append(pattern.search(text, pos, partial=partial, concurrent=True, timeout=left))
                return

    worker = threading.Thread(target=run, name="amiscript-regex", daemon=True)
    worker.start()
    worker.join(seconds)
    return (outcome[0],) if outcome else None


def _timed_out(source: str, seconds: float, size: int, where: Location | None) -> RegexTimeout:
    shown = source if len(source) <= 80 else source[:77] + "..."
    return RegexTimeout(
        f"regex /{shown}/ did not finish by its step's deadline ({seconds:g} s) on {size} characters: "
        "it backtracks catastrophically on this text",
        where,
        hint=BACKTRACKING_HINT,
    )


PROBE_CHARACTERS = "ax0 .:-_/"
PROBE_LENGTH = 48  # enough for 2**48 ways to split a run: no regex gets through that by luck
PROBE_CPU_SECONDS = 0.02


def hostile_text(pattern: regex.Pattern[str]) -> str | None:
    """A short text ``pattern`` backtracks catastrophically on, if a simple one exists: a run of
    one character (one from the pattern, or a common one), then a NUL it cannot match.

    For `amiscript check`: a real search, not a guess from the pattern's shape, so a warning
    means the regex truly blows up (``(a|aa)+$``), and safe nesting like ``(\\d+\\.)+`` passes.
    """
    literal = (char for char in pattern.pattern if char.isalnum() or char in " :-_/,;=@")
    for char in dict.fromkeys([*literal, *PROBE_CHARACTERS]):
        text = char * PROBE_LENGTH + "\0"
        try:
            pattern.search(text, timeout=PROBE_CPU_SECONDS)
        except TimeoutError:
            return text
    return None
