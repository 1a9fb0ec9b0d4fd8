"""A script's regexes run against the time their step has left, so none can hang a run.

A pattern such as ``(a|aa)+$`` backtracks exponentially on hostile text: a peer only has to
send a long line that almost matches. The ``regex`` package checks a timeout while it
backtracks; every search of a script's pattern (expect, header checks, wait_event filters,
``=~`` in expressions) goes through ``search`` here with a ``Budget``, and one that runs out
ends the step as a RegexTimeout naming the pattern and where it was written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import regex

from amiscript.errors import Location, RegexTimeout

MIN_SECONDS = 0.05  # even at its deadline, a sane regex gets this long to settle a match


@dataclass(frozen=True, slots=True)
class Budget:
    """Until when regex work may go on; the clock is the engine's (monotonic, injectable)."""

    deadline: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def of(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Budget:
        return cls(clock() + seconds, clock)

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
    """``pattern.search`` bounded by ``budget`` (None: no bound, for callers outside a run)."""
    seconds = budget.left() if budget is not None else None
    try:
        return pattern.search(text, pos, partial=partial, timeout=seconds)
    except TimeoutError:
        raise _timed_out(pattern.pattern, seconds or 0.0, len(text) - pos, where) from None


def _timed_out(source: str, seconds: float, size: int, where: Location | None) -> RegexTimeout:
    shown = source if len(source) <= 80 else source[:77] + "..."
    return RegexTimeout(
        f"regex /{shown}/ gave up after {seconds:.2g} s (the time its step had left) on {size} characters: "
        "it backtracks catastrophically on this text",
        where,
        hint="a repeated group whose alternatives overlap, such as (a|aa)+ or (x+x+)+, tries every way to split "
        "the text; write it so each character can be matched only one way, e.g. a+",
    )
