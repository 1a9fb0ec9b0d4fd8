"""Ctrl-C and SIGTERM belong to the main thread.

Python runs signal handlers only in the main thread, but the kernel may deliver a process's
signal to any thread that does not block it. Delivered to a helper thread, it only sets a flag:
a main thread blocked in a wait without a timeout never wakes to act on it, and the run or the
console ignores Ctrl-C or SIGTERM until something else wakes it. Helper threads therefore block
these signals, so that the kernel always picks the main thread.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def leave_signals_to_main_thread() -> None:
    """Called first thing in a helper thread (a child it forks inherits the mask: unblock there)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS | {signal.SIGWINCH})
