"""`--transcript FILE`: every byte sent and received, with its direction and a monotonic time.

JSON Lines, one record per line of the conversation (AMI is line-based, and a secret never
spans two lines, so masking whole lines cannot leak a piece of one):

    {"t": 0.000412, "dir": "received", "text": "Asterisk Call Manager/11.0.0\\r\\n"}
    {"t": 0.000950, "dir": "sent", "text": "Action: Login\\r\\nUsername: admin\\r\\nSecret: ****\\r\\n\\r\\n"}
    {"t": 0.010311, "dir": "eof"}

``t`` is seconds since the conversation started (a monotonic clock). Text is UTF-8 with
undecodable bytes shown as \\xNN, then masked.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Callable
from typing import TextIO


class Transcript:
    def __init__(self, stream: TextIO, mask: Callable[[str], str], clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._mask = mask
        self._clock = clock
        self._start = clock()
        self._pending = {"sent": "", "received": ""}
        self._decoders = {
            direction: codecs.getincrementaldecoder("utf-8")("backslashreplace") for direction in self._pending
        }

    def record(self, direction: str, data: bytes) -> None:
        """Bytes that went one way; complete lines are written now, a partial one when it ends."""
        if direction == "eof":
            self.end("eof")
            return
        text = self._pending[direction] + self._decoders[direction].decode(data)
        cut = text.rfind("\n") + 1
        self._pending[direction] = text[cut:]
        if cut:
            self._write(direction, text[:cut])

    def end(self, what: str = "eof") -> None:
        self.flush()
        self._write_record({"t": self._elapsed(), "dir": what})

    def flush(self) -> None:
        for direction, text in self._pending.items():
            if text:
                self._write(direction, text)
                self._pending[direction] = ""

    def _write(self, direction: str, text: str) -> None:
        self._write_record({"t": self._elapsed(), "dir": direction, "text": self._mask(text)})

    def _write_record(self, record: dict[str, object]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()

    def _elapsed(self) -> float:
        return round(self._clock() - self._start, 6)
