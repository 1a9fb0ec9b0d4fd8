"""What the interpreter tells the outside world, and the masking every such text goes through."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Protocol

import regex

MASK = "****"


class Output(Protocol):
    """Where a run's visible text goes; implemented in ``amiscript.report``.

    Every text handed over is already masked: a reporter never sees a secret. A reporter may
    set ``shows_received = False`` when it drops received lines (no -v): the session then skips
    splitting a fast stream into lines and masking each one, which would dominate its cost.
    """

    def print(self, text: str) -> None:
        """A `print` or `fail` line for the user (stdout)."""

    def sent(self, text: str) -> None:
        """What went to the peer (shown with -v)."""

    def received(self, text: str) -> None:
        """A line that came from the peer (shown with -v)."""

    def note(self, text: str) -> None:
        """Progress the user may want with -v: connecting, matched, waiting."""


class Masker:
    """Replaces every secret value by ``****``, longest first so overlaps cannot leak a part.

    A secret is also masked in the escaped forms messages quote values in (``repr``, JSON, a
    regex built from it, ``one_line``): text is masked once it is complete, and by then a value
    quoted inside it no longer looks like the secret.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if not secret:
            return
        for form in _quoted_forms(secret):
            if form not in self._secrets:
                self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    @property
    def longest(self) -> int:
        return len(self._secrets[0]) if self._secrets else 0

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def _quoted_forms(secret: str) -> dict[str, None]:
    """The secret, and as repr (either quote style), JSON, a regex and one_line show it inside quotes."""
    forms = [
        secret,
        repr(secret)[1:-1],
        repr(secret + "'\"")[1:-4],  # repr of a text holding both quotes escapes ' as \'
        regex.escape(secret),
        one_line(secret, len(secret))[1:-1],
    ]
    if any("\udc80" <= char <= "\udcff" for char in secret):
        # a byte that is not UTF-8 (from argv, the environment or a file) is held as a surrogate;
        # what shows received or sent bytes shows it as \xNN, or as U+FFFD
        with contextlib.suppress(UnicodeEncodeError):
            raw = secret.encode("utf-8", "surrogateescape")
            for shown in (raw.decode("utf-8", "backslashreplace"), raw.decode("utf-8", "replace")):
                forms += [shown, *_quoted_forms(shown)]
    if any(char in '"\\' or not " " <= char <= "~" for char in secret):  # else JSON shows it as it is
        import json  # kept out of a plain run's start-up

        forms += [json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]]
    return dict.fromkeys(forms)


def one_line(text: str, limit: int = 200) -> str:
    """A quoted, single-line rendering of received text for diagnostics (last ``limit`` chars)."""
    if len(text) > limit:
        text = "…" + text[-limit:]
    escaped = []
    for char in text:
        if char == "\r":
            escaped.append("\\r")
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif char == '"':
            escaped.append('\\"')
        elif char == "\\":
            escaped.append("\\\\")
        elif "\udc80" <= char <= "\udcff":  # a byte that is not UTF-8, as surrogateescape holds it
            escaped.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif not char.isprintable():
            escaped.append(f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
