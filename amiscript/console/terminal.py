"""Reading lines while packets arrive, without corrupting the line being typed.

On a terminal this uses readline's alternate (callback) interface, the way C programs with
asynchronous output do: the main thread waits in ``select`` on the terminal and on a wake-up
pipe; a key goes to ``rl_callback_read_char``; text queued by the reader thread is printed
above the prompt, and readline draws the prompt and the half-typed line again. So readline is
only ever touched by the main thread, and the reader thread can end the wait (the server hung up)
by writing to the pipe.

While a line is read, Ctrl-C is a key, not a signal: the terminal's interrupt character is
switched off and readline calls us for byte 3. As a signal it raced readline: the terminal
discards unread input when it sends SIGINT, so readline, having seen input waiting (select, or
its own read-ahead of typed letters), could then block in read() inside rl_callback_read_char,
and Python never got control to raise KeyboardInterrupt. While an answer is awaited the
interrupt character is back, and Ctrl-C is the usual KeyboardInterrupt.

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
import termios
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

CLEAR_LINE = "\r\x1b[K"
_LINE_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_KEY_COMMAND = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)  # rl_command_func_t
CTRL_C = 3


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
        self._on_ctrl_c = _KEY_COMMAND(self._ctrl_c)
        self._installed = False
        self._interrupted = False
        self._cooked: list[Any] | None = None  # the terminal settings to put back, while Ctrl-C is a key
        self._original: list[Any] | None = None  # the terminal as the console found it, for close()
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
            lib.rl_get_keymap_by_name.argtypes = [ctypes.c_char_p]
            lib.rl_get_keymap_by_name.restype = ctypes.c_void_p
            lib.rl_bind_key_in_map.argtypes = [ctypes.c_int, _KEY_COMMAND, ctypes.c_void_p]
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
        for keymap in (b"emacs", b"vi-insert", b"vi-command"):
            lib.rl_bind_key_in_map(CTRL_C, terminal._on_ctrl_c, lib.rl_get_keymap_by_name(keymap))
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
        stdin = sys.stdin.fileno()
        if self._original is None:
            self._original = termios.tcgetattr(stdin)
        else:
            _echo_on(stdin)  # readline leaves typed keys unshown when it finds echo off
        # readline learns a new window width only inside its own calls: tell it between keys
        previous = signal.signal(signal.SIGWINCH, self._on_resize)
        if self._cooked is None:  # before readline saves the settings it restores on removal
            self._cooked = _ctrl_c_as_a_key(stdin)
        interrupted = False
        try:
            self._print_queued(redraw=False)
            self._out.flush()
            self._lib.rl_callback_handler_install(prompt.encode(), self._handler)
            self._installed = True
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
                    if self._interrupted:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:  # the Ctrl-C key, or a SIGINT sent by another process
            interrupted = True
            cleanup = getattr(self._lib, "rl_callback_sigcleanup", None)  # leaves a Ctrl-R search (readline 7+)
            if cleanup is not None:
                cleanup()
            self._lib.rl_replace_line(b"", 0)
            self._out.write("^C\n")
            self._out.flush()
            raise
        finally:
            self._interrupted = False
            self._remove()
            if not interrupted:  # a line to act on: Ctrl-C stops the wait for its answer
                self._restore_interrupt_key()
                _keys_kept_for_the_prompt(stdin)
            signal.signal(signal.SIGWINCH, previous)
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
        self._restore_interrupt_key()
        if self._original is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, self._original)
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

    def _ctrl_c(self, count: int, key: int) -> int:
        """readline's command for byte 3 (called inside rl_callback_read_char); read_line acts on it."""
        self._interrupted = True
        return 0

    def _on_resize(self, signum: int, frame: object) -> None:
        self._resized.set()
        self._poke()

    def _remove(self) -> None:
        if self._installed:
            self._installed = False
            self._lib.rl_callback_handler_remove()

    def _restore_interrupt_key(self) -> None:
        """After an interrupt the next prompt follows at once: Ctrl-C stays a key in between, so a
        second one pressed quickly clears that prompt too instead of landing as a signal anywhere."""
        if self._cooked is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, self._cooked)
            self._cooked = None

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


def _ctrl_c_as_a_key(fd: int) -> list[Any]:
    """Switch the terminal's interrupt character off, so Ctrl-C reaches readline as byte 3 (and
    typed input is not discarded, as it is with SIGINT); the settings before, to put back."""
    before = termios.tcgetattr(fd)
    keyed = termios.tcgetattr(fd)
    keyed[6][termios.VINTR] = bytes([os.fpathconf(fd, "PC_VDISABLE") % 256])  # 0 on Linux, 0xff on BSDs
    termios.tcsetattr(fd, termios.TCSANOW, keyed)
    return before


def _keys_kept_for_the_prompt(fd: int) -> None:
    """While an answer is awaited nobody reads the terminal. In its usual line mode it would turn
    a Ctrl-D into an end of file that is gone by the next prompt, so the console would never log
    off; with line mode and echo off, Ctrl-D (and whatever else is typed ahead) waits as keys for
    readline at the next prompt. Ctrl-C stays a signal, to stop the wait."""
    waiting = termios.tcgetattr(fd)
    waiting[3] &= ~(termios.ICANON | termios.ECHO)
    waiting[6][termios.VMIN], waiting[6][termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSANOW, waiting)


def _echo_on(fd: int) -> None:
    settings = termios.tcgetattr(fd)
    if not settings[3] & termios.ECHO:
        settings[3] |= termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, settings)


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
