"""The plain-text reporter: `print` lines on stdout, the conversation on stderr with -v."""

from __future__ import annotations

import re
from typing import TextIO

# Bytes that were not UTF-8 arrive as lone surrogates (surrogateescape): show each as the byte, \xe9.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# In the conversation shown with -v, control characters from the peer are shown, not obeyed by
# the terminal (a NUL, or an escape sequence that would recolour or clear it). Tab stays.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class HumanReport:
    """Implements ``amiscript.engine.output.Output`` for a terminal or a log."""

    def __init__(self, stdout: TextIO, stderr: TextIO, *, verbose: bool = False) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self.verbose = verbose

    @property
    def shows_received(self) -> bool:
        return self.verbose

    def print(self, text: str) -> None:
        self._write(self._stdout, text)

    def sent(self, text: str) -> None:
        if self.verbose:
            lines = text.replace("\r\n", "\n").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            for line in lines:
                self._write(self._stderr, f">> {line}")

    def received(self, text: str) -> None:
        if self.verbose:
            self._write(self._stderr, "<< " + _CONTROL.sub(_hex, text))

    def note(self, text: str) -> None:
        if self.verbose:
            self._write(self._stderr, f"amiscript: {text}")

    @staticmethod
    def _write(stream: TextIO, line: str) -> None:
        # Text from a peer or argv may hold characters the terminal cannot encode; show them escaped.
        encoding = getattr(stream, "encoding", None) or "utf-8"
        line = _NOT_UTF8.sub(lambda found: f"\\x{ord(found.group()) - 0xDC00:02x}", line)
        safe = line.encode(encoding, "backslashreplace").decode(encoding, "replace")
        stream.write(safe + "\n")
        stream.flush()


def _hex(found: re.Match[str]) -> str:
    return f"\\x{ord(found.group()):02x}"
