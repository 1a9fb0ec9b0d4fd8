"""The expect matcher: received text in, the winning pattern out. Pure: no I/O, no clock.

Rules (Expect's, minus its dependence on how bytes happen to be chunked):
- the earliest match in the received text wins; a tie goes to the pattern listed first;
- a match consumes the text up to its end, so the next expect sees what follows;
- while a pattern *could* still match earlier than the current best (a partial match running
  into the end of the text), the matcher waits for more text instead of answering, so the
  answer does not depend on where a chunk boundary fell; at end of file or timeout the best
  complete match is final;
- each pattern resumes its search where it last could have started to match (the ``regex``
  module's partial matching tells us where), so cost grows with what arrives, not with the
  square of the buffer;
- the buffer keeps at most ``max_size`` characters (Expect's ``match_max``): older text is
  dropped, so memory stays flat while a peer streams forever.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass

import regex


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
        if not text:
            return
        self.total += len(text)
        self._text += text
        overflow = len(self._text) - self.max_size
        if overflow > 0:
            self._text = self._text[overflow:]
            self._base += overflow

    @property
    def text(self) -> str:
        return self._text

    @property
    def base(self) -> int:
        return self._base

    @property
    def end(self) -> int:
        return self._base + len(self._text)

    def consume_to(self, absolute_end: int) -> None:
        cut = max(0, absolute_end - self._base)
        self._text = self._text[cut:]
        self._base += cut

    def tail(self, size: int = 200) -> str:
        return self._text[-size:]


class Searcher:
    """One expect's patterns over a StreamBuffer."""

    def __init__(self, patterns: Sequence[regex.Pattern[str]]) -> None:
        self.patterns = list(patterns)
        self._resume = [0] * len(self.patterns)  # absolute positions

    def search(self, buffer: StreamBuffer, *, final: bool = False) -> Found | None:
        """The winning match, or None: no match yet (or, when ``final``, none at all)."""
        text = buffer.text
        base = buffer.base
        best: tuple[int, int, regex.Match[str]] | None = None
        pending: list[tuple[int, int]] = []
        for index, pattern in enumerate(self.patterns):
            pos = max(self._resume[index], base) - base
            match = pattern.search(text, pos, partial=not final)
            if match is None:
                self._resume[index] = base + len(text)
                continue
            if match.partial:
                self._resume[index] = base + match.start()
                pending.append((match.start(), index))
                continue
            self._resume[index] = base + match.start()
            key = (match.start(), index)
            if best is None or key < best[:2]:
                best = (match.start(), index, match)
        if best is None:
            return None
        start, index, match = best
        if any(key < (start, index) for key in pending):
            return None  # an earlier (or tied, earlier-listed) pattern may still complete
        groups = {name: value or "" for name, value in match.groupdict().items()}
        buffer.consume_to(base + match.end())
        return Found(index, base + start, match.group(0), groups)

    def settle(self, buffer: StreamBuffer) -> Found | None:
        """At end of file or timeout: partial matches can no longer complete."""
        return self.search(buffer, final=True)
