"""Reading lines while packets arrive, without corrupting the line being typed.

On a terminal this uses readline's alternate (callback) interface, the way C programs with
asynchronous output do: the main thread waits in ``select`` on the terminal and on a wake-up
pipe; a key goes to ``rl_callback_read_char``; text queued by the reader thread is printed
above the prompt, and readline draws the prompt and the half-typed line again. So readline is
only ever touched by the main thread, Ctrl-C arrives as an ordinary KeyboardInterrupt, and the
reader thread can end the wait (the server hung up) by writing to the pipe.

Without a terminal, or without a readline that has the callback interface (libedit), lines
are read plainly and text is printed at once: there is no line being typed to protect.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

CLEAR_LINE = "\r\x1b[K"
_LINE_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class PlainLines:
    """No terminal: lines from standard input, text printed as it comes."""

    def __init__(self, out: TextIO, stdin: Any) -> None:
        self._out = out
        self._stdin = stdin
        self._lock = threading.Lock()

    def show(self, text: str) -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()

    now = show

    def end(self) -> None:
        """Nothing to wake: a blocked read ends when its input does."""

    def read_line(self, prompt: str) -> str:
        line = self._stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    def close(self) -> None:
        self._out.flush()


class ReadlineTerminal:
    def __init__(self, out: TextIO, lib: Any) -> None:
        self._out = out
        self._lib = lib
        self._queue: collections.deque[str] = collections.deque()
        self._lines: collections.deque[str | None] = collections.deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._handler = _LINE_HANDLER(self._on_line)
        self._installed = False
        self.ended = threading.Event()
        self._resized = threading.Event()

    @classmethod
    def open(cls, out: TextIO) -> ReadlineTerminal | None:
        """None when readline lacks the callback interface (libedit); then use PlainLines."""
        try:
            import readline

            lib = ctypes.CDLL(readline.__file__)
            lib.rl_callback_handler_install.argtypes = [ctypes.c_char_p, _LINE_HANDLER]
            lib.rl_replace_line.argtypes = [ctypes.c_char_p, ctypes.c_int]
            for name in (
                "rl_callback_read_char",
                "rl_callback_handler_remove",
                "rl_forced_update_display",
                "rl_resize_terminal",
            ):
                getattr(lib, name)
            libc = ctypes.CDLL(None)
            libc.free.argtypes = [ctypes.c_void_p]
        except (ImportError, OSError, AttributeError):
            return None
        terminal = cls(out, lib)
        terminal._free = libc.free
        return terminal

    def show(self, text: str) -> None:
        """From any thread: queue the text and wake the main thread to print it."""
        self._queue.append(text)
        self._poke()

    def now(self, text: str) -> None:
        """From the main thread, outside read_line: print at once (after anything queued)."""
        self._print_queued(redraw=False)
        self._out.write(text + "\n")
        self._out.flush()

    def end(self) -> None:
        """From any thread: make the current (or next) read_line raise EOFError, as Ctrl-D."""
        self.ended.set()
        self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe will wake the main thread anyway
            os.write(self._wake_write, b"!")

    def read_line(self, prompt: str) -> str:
        """The next line (readline editing, completion); EOFError at Ctrl-D or when woken by
        ``end()``; KeyboardInterrupt at Ctrl-C, the line dropped."""
        self._print_queued(redraw=False)
        self._out.flush()
        self._lib.rl_callback_handler_install(prompt.encode(), self._handler)
        self._installed = True
        stdin = sys.stdin.fileno()
        # readline learns a new window width only inside its own calls: tell it between keys
        previous = signal.signal(signal.SIGWINCH, self._on_resize)
        try:
            while not self._lines:
                readable, _, _ = select.select([stdin, self._wake_read], [], [])
                if self._wake_read in readable:
                    os.read(self._wake_read, 4096)
                    if self._resized.is_set():
                        self._resized.clear()
                        self._lib.rl_resize_terminal()
                    self._print_queued(redraw=True)
                    if self.ended.is_set() and not self._lines:
                        self._out.write("\n")
                        raise EOFError
                if stdin in readable:
                    self._lib.rl_callback_read_char()
        except KeyboardInterrupt:
            cleanup = getattr(self._lib, "rl_callback_sigcleanup", None)  # leaves a Ctrl-R search (readline 7+)
            if cleanup is not None:
                cleanup()
            self._lib.rl_replace_line(b"", 0)
            self._out.write("^C\n")
            raise
        finally:
            signal.signal(signal.SIGWINCH, previous)
            self._remove()
        line = self._lines.popleft()
        if line is None:
            self._out.write("\n")
            raise EOFError
        if line.strip():
            import readline

            length = readline.get_current_history_length()
            if not length or readline.get_history_item(length) != line:
                readline.add_history(line)
        return line

    def close(self) -> None:
        self._remove()
        self._print_queued(redraw=False)
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _on_line(self, pointer: int | None) -> None:
        """readline's line handler (called inside rl_callback_read_char): None means Ctrl-D."""
        if pointer is None:
            self._lines.append(None)
        else:
            self._lines.append(ctypes.string_at(pointer).decode("utf-8", "replace"))
            self._free(pointer)
        self._remove()

    def _on_resize(self, signum: int, frame: object) -> None:
        self._resized.set()
        self._poke()

    def _remove(self) -> None:
        if self._installed:
            self._installed = False
            self._lib.rl_callback_handler_remove()

    def _print_queued(self, *, redraw: bool) -> None:
        texts = []
        while self._queue:
            texts.append(self._queue.popleft())
        if not texts:
            return
        self._out.write((CLEAR_LINE if redraw else "") + "\n".join(texts) + "\n")
        self._out.flush()
        if redraw and self._installed:
            self._lib.rl_forced_update_display()


class LineEditing:
    """readline set up for a session (completion, history file) and put back afterwards;
    does nothing without a terminal (``complete`` None)."""

    def __init__(self, complete: Callable[[str, int], str | None] | None, history: Path) -> None:
        self._complete = complete
        self._history = history
        self._saved: tuple[Any, str] | None = None

    def __enter__(self) -> LineEditing:
        if self._complete is None:
            return self
        import readline

        self._saved = (readline.get_completer(), readline.get_completer_delims())
        readline.set_completer(self._complete)
        readline.set_completer_delims(" \t")
        readline.parse_and_bind("tab: complete")
        readline.set_history_length(1000)
        with contextlib.suppress(OSError):
            readline.read_history_file(self._history)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            return
        import readline

        with contextlib.suppress(OSError):
            readline.write_history_file(self._history)
        readline.set_completer(self._saved[0])
        readline.set_completer_delims(self._saved[1])
