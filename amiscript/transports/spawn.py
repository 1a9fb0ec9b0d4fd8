"""Spawned programs on a pseudo-terminal, through pexpect: any command, and Debian's telnet.

Only pexpect's process and pty handling is used, never its expect loop: the transport is bytes
in, bytes out like TCP, and the one matcher in ``amiscript.engine`` does the matching.

- ``SpawnTransport`` runs a command (an argument list; no shell unless the author writes one)
  on a pty put in raw mode before the program starts: no echo, no CR/LF translation, no
  signals from control characters, so bytes pass exactly as they would over a socket.
- ``TelnetTransport`` runs ``telnet -E -- HOST PORT``, as the book does but with no escape
  key. telnet manages its own terminal: it switches echo on and turns each LF it reads into
  CR LF. So the transport turns echo back off (and keeps it off), writes LF where the engine
  sends CR LF, disables the terminal's special keys (telnet compares bytes with them ignoring
  the 8th bit, so UTF-8 could otherwise interrupt it), keeps telnet's own chatter (``Trying
  …``, ``Escape character is …``, ``Connection closed by foreign host.``) away from the
  script, and reports telnet's own last words when it cannot connect.

The child is always reaped: ``close`` hangs up its terminal and waits for it, escalating to
SIGTERM and SIGKILL if it lingers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import shutil
import signal
import termios
import time
import tty

import pexpect

from amiscript.errors import ConnectFailed, ConnectionLost, ScriptError
from amiscript.signals import STOP_SIGNALS
from amiscript.transports.base import Target

CHUNK = 65536
LAST_WORDS = 300  # bytes of output kept to explain why a program ended
CANONICAL_LINE = 4000  # bytes of a line a terminal reading line by line surely keeps (it keeps 4095)
TERMINAL_MODE_GRACE = 1.0  # seconds to wait for telnet to set its terminal mode after connecting
# Seconds a child may take to exit after its terminal closes (SIGHUP), then after SIGTERM, SIGKILL.
HANGUP_GRACE, TERM_GRACE, KILL_GRACE = 0.25, 0.25, 1.0


class SpawnTransport:
    def __init__(self, child: pexpect.spawn, target: Target) -> None:
        self._child = child
        self.target = target
        self._tail = b""
        self._closed = False

    @classmethod
    def open(cls, target: Target) -> SpawnTransport:
        return cls(_spawn(target, list(target.command), _raw_terminal), target)

    # -- Transport -------------------------------------------------------------------------

    def send(self, data: bytes, timeout: float) -> None:
        """Write everything within ``timeout`` (one deadline for the whole send). The terminal is
        written without blocking: select() says there is room, not how much, and a blocking
        write of more would wait inside the kernel for a program that never reads."""
        fd = self._child.child_fd
        view = memoryview(self._prepare(data))
        deadline = time.monotonic() + timeout
        try:
            blocking = os.get_blocking(fd)
            os.set_blocking(fd, False)
        except (OSError, ValueError) as exc:
            raise ConnectionLost(f"{self.target}: cannot write to the program: {exc}") from None
        try:
            while view:
                self._between_writes()
                remaining = deadline - time.monotonic()
                writable = select.select([], [fd], [], max(remaining, 0.0))[1] if remaining > 0 else []
                if not writable:
                    raise ConnectionLost(f"{self.target}: the program did not read its input within {timeout:g} s")
                try:
                    view = view[os.write(fd, view[:4096]) :]
                except BlockingIOError:
                    continue  # the room was taken meanwhile: wait for more
            self._between_writes()
        except (OSError, ValueError) as exc:
            raise ConnectionLost(f"{self.target}: cannot write to the program: {exc}") from None
        finally:
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(fd, blocking)

    def receive(self, timeout: float) -> bytes | None:
        # Read the pty ourselves: pexpect stops at the child's exit, but a program it started
        # (a grandchild) may still be writing; the stream ends when the terminal does (EIO).
        fd = self._child.child_fd
        try:
            readable, _, _ = select.select([fd], [], [], max(timeout, 0.0))
            if not readable:
                return None
            data = os.read(fd, CHUNK)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise ConnectionLost(f"{self.target}: {exc.strerror or exc}") from None
            data = b""
        except ValueError:  # the descriptor was closed under us
            data = b""
        if not data:
            return self._ended()
        self._tail = (self._tail + data)[-LAST_WORDS:]
        return self._filter(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _reap(self._child)

    # -- what subclasses adapt -------------------------------------------------------------

    def _prepare(self, data: bytes) -> bytes:
        return data

    def _between_writes(self) -> None:
        """Before each piece of a send is written, and after the last."""

    def _filter(self, data: bytes) -> bytes | None:
        return data

    def _ended(self) -> bytes:
        """End of output: a clean exit is end of file; a failing one is an error with last words."""
        self.close()
        status, signalled = self._child.exitstatus, self._child.signalstatus
        if signalled is not None or status:
            how = f"was killed by signal {signalled}" if signalled is not None else f"exited with status {status}"
            raise ConnectionLost(f"{self.target}: the program {how}{_last_words(self._tail)}")
        return b""


class TelnetTransport(SpawnTransport):
    ESCAPE_LINE = re.compile(rb"Escape character is '[^'\r\n]*'\.\r?\n")
    CLOSED_LINE = b"Connection closed by foreign host.\r\n"
    # telnet reads its special keys ignoring the 8th bit; ^E (0x05, so also 0x85) is fixed
    # (0xff too: as 0x7f, the key every other special key points at; UTF-8 never holds it)
    _REFUSED = frozenset({*range(0x20), 0x7F, 0x85, 0xFF}) - {0x09, 0x0A, 0x0D}
    _long_lines = False  # the send under way has a line a canonical terminal would cut

    _pending = b""  # what the server sent right after telnet's preamble
    _held = b""  # a closing line that is telnet's only if end of file follows
    _echo_was_on = False
    _line_by_line = True  # until the terminal is known to pass whole packets

    @classmethod
    def open(cls, target: Target) -> TelnetTransport:
        if shutil.which("telnet") is None:
            raise ConnectFailed(
                f"cannot connect to {target}: no telnet client is installed",
                hint="install one (Debian: apt-get install telnet) or use tcp://",
            )
        # -E: no escape key; --: a host can never be read as an option
        child = _spawn(target, ["telnet", "-E", "--", target.host, str(target.port)], _quiet_terminal)
        transport = cls(child, target)
        try:
            transport._await_connection()
        except BaseException:
            transport.close()
            raise
        return transport

    def _await_connection(self) -> None:
        """Read telnet's preamble up to `Escape character is …`; keep what the server sent after it."""
        deadline = time.monotonic() + self.target.connect_timeout
        seen = b""
        while True:
            self._whole_packets_no_echo()
            found = self.ESCAPE_LINE.search(seen)
            if found:
                self._pending = seen[found.end() :]
                self._await_terminal_mode(min(deadline, time.monotonic() + TERMINAL_MODE_GRACE))
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectFailed(
                    f"cannot connect to {self.target}: no answer within {self.target.connect_timeout:g} s"
                )
            try:
                seen += self._child.read_nonblocking(CHUNK, min(remaining, 0.05))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                raise ConnectFailed(f"cannot connect to {self.target}{_last_words(_without_trying(seen))}") from None

    def _await_terminal_mode(self, until: float) -> None:
        """telnet sets its terminal mode (echo on) just after `Escape character is …`.

        Until it has, turning echo off would not last: wait for it (briefly), then turn echo off.
        """
        while not self._echo_was_on and time.monotonic() < until:
            try:
                self._pending += self._child.read_nonblocking(CHUNK, 0.001)
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                return  # receive() reports the end of file
            self._whole_packets_no_echo()

    def receive(self, timeout: float) -> bytes | None:
        if self._pending:
            data, self._pending = self._pending, b""
            return self._filter(data)
        data = super().receive(timeout)
        if data == b"" and self._held:
            self._held = b""  # end of file followed: the line was telnet's own
        return data

    def send(self, data: bytes, timeout: float) -> None:
        self._whole_packets_no_echo()
        self._long_lines = any(len(line) > CANONICAL_LINE for line in data.split(b"\n"))
        super().send(data, timeout)

    def _between_writes(self) -> None:
        """telnet rebuilds its terminal mode when the server negotiates telnet options; switched
        back to line-by-line reading in the middle of a send, the terminal would cut a long line
        short, silently. Switch it back, and stop the run if a long line was under way."""
        if self._whole_packets_no_echo() and self._long_lines:
            raise ConnectionLost(
                f"{self.target}: telnet switched its terminal back to line mode during the send (the server "
                f"negotiated telnet options), so a line over {CANONICAL_LINE} bytes may have been cut; use tcp://"
            )

    def _prepare(self, data: bytes) -> bytes:
        # telnet turns every LF it reads into CR LF; a CR would reach it as another line end.
        data = data.replace(b"\r\n", b"\n")
        bad = sorted({byte for byte in data if byte in self._REFUSED})
        if bad:
            raise ScriptError(
                f"{self.target}: cannot send the byte 0x{bad[0]:02x} through telnet's terminal (nothing was sent)",
                hint="the terminal or telnet would act on it (interrupt, erase, echo); use tcp:// for such data",
            )
        if self._line_by_line and any(len(line) > CANONICAL_LINE for line in data.split(b"\n")):
            # a canonical terminal keeps at most 4095 bytes of a line and drops the rest
            raise ScriptError(
                f"{self.target}: a line over {CANONICAL_LINE} bytes cannot pass through telnet's terminal"
            )
        return data

    def _filter(self, data: bytes) -> bytes | None:
        """Hold back a closing line until the next read says whether the connection ended."""
        data, self._held = self._held + data, b""
        if data.endswith(self.CLOSED_LINE):
            data, self._held = data[: -len(self.CLOSED_LINE)], self.CLOSED_LINE
        return data or None  # never b"": that would mean end of file

    def _ended(self) -> bytes:
        # telnet exits 1 whenever the server closes: that is an ordinary end of file.
        self.close()
        return b""

    def _whole_packets_no_echo(self) -> bool:
        """Undo two things of the terminal mode telnet sets: echo, and reading line by line.

        Echo would let an expect match what we sent. Line-by-line (canonical) reading makes
        telnet send each line of a packet as its own TCP segment; Nagle's algorithm then holds
        the second line until the server acknowledges the first, and the server, with nothing
        to answer before the blank line, delays that ACK by up to 40 ms: every multi-line
        packet would wait for it (Expect's vmcount.exp does). Read whole, a packet is one segment.
        True if the terminal was reading line by line.
        """
        fd = self._child.child_fd
        try:
            attrs = termios.tcgetattr(fd)
            switched = bool(attrs[3] & termios.ICANON)
            if attrs[3] & (termios.ECHO | termios.ICANON):
                self._echo_was_on = self._echo_was_on or bool(attrs[3] & termios.ECHO)
                attrs[3] &= ~(termios.ECHO | termios.ICANON)
                attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 1, 0
                termios.tcsetattr(fd, termios.TCSANOW, attrs)
            self._line_by_line = False
            return switched
        except (OSError, ValueError, termios.error):
            self._line_by_line = True  # the child is gone: nothing is echoed any more
            return False


def _spawn(target: Target, argv: list[str], prepare_terminal: object) -> pexpect.spawn:
    for part in (*argv, *(value for pair in target.env for value in pair), target.cwd or ""):
        if "\0" in part:
            raise ScriptError(f"cannot start {target}: a command, env or cwd value contains a NUL byte")
    env = {**os.environ, **dict(target.env)} if target.env else None
    if target.cwd is not None and not os.path.isdir(target.cwd):
        raise ConnectFailed(f"cannot start {target}: no such directory {target.cwd!r} (cwd)")
    program = argv[0]
    if target.cwd and "/" in program and not os.path.isabs(program):
        program = os.path.join(target.cwd, program)  # ./tool is relative to `cwd`, as in a shell there
    # Ctrl-C or SIGTERM while pexpect is half-way through setting up would leave a child
    # nobody owns: hold them until the child exists (the child unblocks them for itself).
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        child = pexpect.spawn(
            program,
            argv[1:],
            env=env,
            cwd=target.cwd,
            echo=False,
            timeout=None,
            preexec_fn=prepare_terminal,
        )
    except pexpect.ExceptionPexpect as exc:
        reason = str(exc).splitlines()[0]
        if "not found" in reason or "not executable" in reason:
            reason = f"{argv[0]!r} is not installed or not executable"
        raise ConnectFailed(f"cannot start {target}: {reason}") from None
    except OSError as exc:
        raise ConnectFailed(f"cannot start {target}: {exc.strerror or exc}") from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return child


def _raw_terminal() -> None:
    """In the child, before exec: the pty passes bytes unchanged (no echo, no CR/LF mapping)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # a program starts with no signal blocked
    tty.setraw(0)


_SPECIAL_KEYS = (
    "VINTR",
    "VQUIT",
    "VSUSP",
    "VEOF",
    "VDISCARD",
    "VLNEXT",
    "VREPRINT",
    "VWERASE",
    "VKILL",
    "VSTART",
    "VSTOP",
)


def _quiet_terminal() -> None:
    """In telnet's child, before exec: no terminal key that data could press by accident.

    telnet copies its interrupt, quit, suspend… keys from the terminal and compares incoming
    bytes with them ignoring the 8th bit; pointing them all at DEL (which is refused) means
    no byte of UTF-8 text can trigger them.
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # a program starts with no signal blocked
    attrs = termios.tcgetattr(0)
    for name in _SPECIAL_KEYS:
        index = getattr(termios, name, None)
        if index is not None:
            attrs[6][index] = b"\x7f"
    termios.tcsetattr(0, termios.TCSANOW, attrs)


def _reap(child: pexpect.spawn) -> None:
    """Close the terminal and wait for the child, escalating only if it lingers.

    The child gets SIGHUP when its terminal goes and most programs (telnet among them) are gone
    within a millisecond; pexpect's own close sleeps 0.1 s before it even looks (the delays are
    ptyprocess's, which pexpect's attributes of the same name do not reach), which every
    telnet run paid. So: poll for the exit, then SIGTERM, then SIGKILL, each after a grace.
    """
    proc = child.ptyproc
    proc.delayafterclose = proc.delayafterterminate = 0.0  # what is left for close() is bookkeeping
    with contextlib.suppress(OSError):
        proc.fileobj.close()
    for signum, grace in ((None, HANGUP_GRACE), (signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            if signum is not None:
                os.kill(child.pid, signum)
                os.kill(child.pid, signal.SIGCONT)  # a stopped child acts on nothing else
            if _exits_within(child, grace):
                break
        except (OSError, pexpect.ExceptionPexpect):
            break  # already reaped, or not ours any more
    with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
        child.close(force=True)
    _end_process_group(child.pid)


def _end_process_group(pgid: int) -> None:
    """What the child left behind in its process group (it leads one: pexpect starts it in a
    session of its own), such as a background job that ignores SIGHUP: nothing a run starts
    may outlive it. SIGTERM, then SIGKILL, each after a grace; at once if nothing is left."""
    for signum, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, KILL_GRACE)):
        deadline = time.monotonic() + grace
        try:
            os.killpg(pgid, signum)
            os.killpg(pgid, signal.SIGCONT)
            while time.monotonic() < deadline:
                time.sleep(0.005)
                os.killpg(pgid, 0)  # ProcessLookupError once the group is empty
        except (ProcessLookupError, PermissionError):
            return


def _exits_within(child: pexpect.spawn, grace: float) -> bool:
    deadline, pause = time.monotonic() + grace, 0.0005
    while child.isalive():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.02)
    return True


def _without_trying(text: bytes) -> bytes:
    return re.sub(rb"(?m)^Trying [^\r\n]*\r?\n", b"", text)


def _last_words(tail: bytes) -> str:
    lines = [line.strip() for line in tail.decode("utf-8", "replace").splitlines() if line.strip()]
    return f": {' / '.join(lines[-3:])}" if lines else ""
