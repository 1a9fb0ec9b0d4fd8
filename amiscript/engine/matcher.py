"""The expect matcher: received text in, the winning pattern out. Pure: no I/O, no clock.

Rules (Expect's, made to depend as little as possible on how bytes happen to be chunked):
- the earliest match in the received text wins; a tie goes to the pattern listed first;
- a match consumes the text up to its end, so the next expect sees what follows;
- a match is *deferred* while it might still change with more text: another pattern could
  still complete a match that starts earlier (a partial match running into the end of the
  text), or the match itself reaches the end of the text in the middle of a line (``\\d+``,
  ``\\b`` or ``$`` there could read differently once the rest of the line arrives). The caller
  settles a deferred match when the peer goes quiet, at end of file, or at the deadline;
- each pattern resumes its search where it last could have started to match (the ``regex``
  module's partial matching tells us where), so a pattern is not rescanned over text it has
  already ruled out;
- a partial match can still be long (``Event: [\\s\\S]*Cause: 16`` over a busy stream), and the
  regex engine cannot resume one: it is searched again from its start. So while one is
  pending, the search waits until the text has grown by half the partial's length (or the
  peer goes quiet, as for a deferred match): each character is then scanned a bounded
  number of times, not once per chunk;
- the buffer holds at most about ``max_size`` characters (Expect's ``match_max``): like
  Expect, when it overflows it keeps the newest half, so memory stays flat while a peer
  streams forever and trimming costs amortised constant time per character;
- each search is bounded by the step's ``Budget`` (``amiscript.script.timedregex``): a pattern
  that backtracks catastrophically on what the peer sent ends the step, it cannot hang the run.

Known limit: inside *one* regex, an alternation such as ``abc|b`` can return the later ``b``
while ``abc`` has not fully arrived (the ``regex`` module prefers a complete match to an
earlier partial one). List such alternatives as separate patterns: across patterns the
earliest-match rule holds.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from amiscript.errors import Location
from amiscript.script.timedregex import Budget
from amiscript.script.timedregex import search as timed_search

LONG_PARTIAL = 1 << 16  # characters: a partial match longer than this is not searched per chunk


@dataclass(frozen=True, slots=True)
class Found:
    """Pattern ``index`` matched ``text`` at ``start``; ``groups`` are its named groups."""

    index: int
    start: int
    text: str
    groups: dict[str, str]


class StreamBuffer:
    """Decoded received text, bounded; positions are absolute so searches survive trimming."""

    def __init__(self, max_size: int = 1 << 20) -> None:
        self.max_size = max_size
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._base = 0  # absolute position of _text[0]
        self.eof = False
        self.total = 0  # characters ever received

    def feed(self, data: bytes) -> None:
        self._append(self._decoder.decode(data))

    def feed_eof(self) -> None:
        self._append(self._decoder.decode(b"", final=True))
        self.eof = True

    def _append(self, text: str) -> None:
        if text:
            self.total += len(text)
            # Appending to a string nothing else refers to can grow it in place (CPython);
            # `self._text += text` would copy the whole buffer for every chunk.
            buffered, self._text = self._text, ""
            buffered += text
            self._text = buffered

    def trim(self) -> None:
        """Past ``max_size``, keep the newest half; called after a search, so a chunk larger
        than ``max_size`` is still searched whole before anything is dropped."""
        if len(self._text) > self.max_size:
            drop = len(self._text) - self.max_size // 2
            self._text = self._text[drop:]
            self._base += drop

    @property
    def text(self) -> str:
        return self._text

    @property
    def base(self) -> int:
        return self._base

    @property
    def end(self) -> int:
        return self._base + len(self._text)

    def take_all(self) -> bytes:
        """Hand over all unconsumed input (for AMI steps that read packets next), including
        the first bytes of a character the decoder is still waiting to complete."""
        pending, _ = self._decoder.getstate()
        self._decoder.reset()
        text = self._text
        self.consume_to(self.end)
        return text.encode("utf-8", "surrogateescape") + pending

    def consume_to(self, absolute_end: int) -> None:
        cut = max(0, absolute_end - self._base)
        self._text = self._text[cut:]
        self._base += cut

    def tail(self, size: int = 200) -> str:
        return self._text[-size:]


class Searcher:
    """One expect's patterns over a StreamBuffer."""

    def __init__(self, patterns: Sequence[regex.Pattern[str]], locations: Sequence[Location] = ()) -> None:
        self.patterns = list(patterns)
        self._locations = list(locations)  # where each pattern was written, for a RegexTimeout
        self._resume = [0] * len(self.patterns)  # absolute positions
        self.deferred = False  # a complete match exists but may still change with more text
        self._pending_from: int | None = None  # where the earliest partial match starts (absolute)
        self._searched_to = 0  # the end of the text at the last search (absolute)

    def search(self, buffer: StreamBuffer, *, final: bool = False, budget: Budget | None = None) -> Found | None:
        """The winning match, or None: no match yet, or one that is deferred (see ``deferred``).

        With ``final`` (end of file, timeout, or the peer went quiet) the best complete match
        is taken: partial matches can no longer complete. Raises RegexTimeout when a pattern
        runs past ``budget``.
        """
        if not final and self._pending_from is not None:
            pending = self._searched_to - max(self._pending_from, buffer.base)
            if pending > LONG_PARTIAL and buffer.end - self._searched_to < pending // 2:
                self.deferred = True  # nothing new enough to search yet; settled when quiet
                return None
        text = buffer.text
        base = buffer.base
        self._searched_to = base + len(text)
        best: tuple[int, int, regex.Match[str]] | None = None
        pending: list[tuple[int, int]] = []
        for index, pattern in enumerate(self.patterns):
            pos = max(self._resume[index], base) - base
            where = self._locations[index] if index < len(self._locations) else None
            match = timed_search(pattern, text, budget, where, pos=pos, partial=not final)
            if match is None:
                if not final:  # a final search sees no partial matches: where one starts is kept
                    self._resume[index] = base + len(text)
                continue
            self._resume[index] = base + match.start()
            if match.partial:
                pending.append((match.start(), index))
                continue
            key = (match.start(), index)
            if best is None or key < best[:2]:
                best = (match.start(), index, match)
        self.deferred = False
        self._pending_from = base + min(pending)[0] if pending else None
        if best is None:
            buffer.trim()
            return None
        start, index, match = best
        if not final and (any(key < (start, index) for key in pending) or _may_grow(match, text)):
            self.deferred = True
            buffer.trim()
            return None
        groups = {name: value or "" for name, value in match.groupdict().items()}
        buffer.consume_to(base + match.end())
        return Found(index, base + start, match.group(0), groups)

    def settle(self, buffer: StreamBuffer, budget: Budget | None = None) -> Found | None:
        """At end of file, timeout or quiet: take the best complete match there is."""
        return self.search(buffer, final=True, budget=budget)


def _may_grow(match: regex.Match[str], text: str) -> bool:
    """A match that runs to the end of the text, mid-line, may read differently with more."""
    end = match.end()
    return end == len(text) and not text.endswith("\n") and end > match.start()
