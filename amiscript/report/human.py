"""The plain-text reporter: `print` lines on stdout, the conversation on stderr with -v."""

from __future__ import annotations

from typing import TextIO


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
            self._write(self._stderr, f"<< {text}")

    def note(self, text: str) -> None:
        if self.verbose:
            self._write(self._stderr, f"amiscript: {text}")

    @staticmethod
    def _write(stream: TextIO, line: str) -> None:
        # Text from a peer or argv may hold characters the terminal cannot encode; show them escaped.
        encoding = getattr(stream, "encoding", None) or "utf-8"
        safe = line.encode(encoding, "backslashreplace").decode(encoding, "replace")
        stream.write(safe + "\n")
        stream.flush()
