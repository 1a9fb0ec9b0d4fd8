"""Nagios threshold ranges, as scripts write them for metrics (plugin guidelines syntax)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_RANGE = re.compile(r"(?P<inside>@)?(?:(?P<start>~|[-+]?\d+(?:\.\d+)?)?(?P<colon>:))?(?P<end>[-+]?\d+(?:\.\d+)?)?")


@dataclass(frozen=True, slots=True)
class Range:
    """A Nagios threshold range: alert when the value is outside [start, end] (inside with @)."""

    text: str
    start: float
    end: float
    inside: bool

    def alerts(self, value: float) -> bool:
        within = self.start <= value <= self.end
        return within if self.inside else not within


def parse_range(text: str) -> Range:
    """`10` (0..10), `10:` (10..inf), `~:10` (-inf..10), `10:20`, `@10:20` (alert inside)."""
    match = _RANGE.fullmatch(text.strip())
    if match is None or (match["start"] is None and match["end"] is None):
        raise ValueError(f"{text!r} is not a Nagios range (such as 10, 10:, ~:10, 10:20 or @10:20)")
    start_text, end_text = match["start"], match["end"]
    start = -math.inf if start_text == "~" else float(start_text) if start_text else 0.0
    end = float(end_text) if end_text is not None else math.inf
    if start > end:
        raise ValueError(f"{text!r}: the range starts after it ends")
    return Range(text.strip(), start, end, match["inside"] is not None)
