"""Raw TCP with the standard library's sockets; the TLS transport wraps the same socket."""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import threading
import time

from amiscript.errors import ConnectFailed, ConnectionLost
from amiscript.signals import leave_signals_to_main_thread
from amiscript.transports.base import Target

CHUNK = 65536


class TcpTransport:
    # what a non-blocking socket raises when it must wait; TLS adds its want-read/want-write
    WOULD_BLOCK: tuple[type[OSError], ...] = (BlockingIOError,)

    def __init__(self, sock: socket.socket, target: Target) -> None:
        self._sock = sock
        self.target = target
        self._closed = False

    @classmethod
    def open(cls, target: Target) -> TcpTransport:
        return cls(connect_socket(target, time.monotonic() + target.connect_timeout), target)

    def send(self, data: bytes, timeout: float) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except self.WOULD_BLOCK as exc:
                if not self._wait(exc, timeout, writing=True):
                    raise ConnectionLost(
                        f"{self.target}: peer stopped reading; could not send within {timeout:g} s"
                    ) from None
                continue
            except OSError as exc:
                raise self._lost(exc) from None
            view = view[sent:]

    def receive(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            while True:
                if not self._buffered():
                    readable, _, _ = select.select([self._sock], [], [], max(0.0, deadline - time.monotonic()))
                    if not readable:
                        return None
                try:
                    return self._sock.recv(CHUNK)
                except self.WOULD_BLOCK as exc:  # readable, but not a whole TLS record yet
                    if not self._wait(exc, deadline - time.monotonic(), writing=False):
                        return None
        except OSError as exc:
            raise self._lost(exc) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()

    # -- what TLS changes ------------------------------------------------------------------

    def _buffered(self) -> bool:
        """Bytes already read from the socket but not yet handed out, which select() cannot see."""
        return False

    def _wait(self, exc: OSError, timeout: float, *, writing: bool) -> bool:
        """Wait until the socket can go on after ``exc``; False if ``timeout`` passed first."""
        if timeout <= 0:
            return False
        if writing:
            _, ready, _ = select.select([], [self._sock], [], timeout)
        else:
            ready, _, _ = select.select([self._sock], [], [], timeout)
        return bool(ready)

    def _lost(self, exc: OSError) -> ConnectionLost:
        return ConnectionLost(f"{self.target}: {exc.strerror or exc}")


def connect_socket(target: Target, deadline: float) -> socket.socket:
    """A connected, non-blocking socket to ``target``, or ConnectFailed saying why not."""
    where = str(target)
    try:
        sock = _connect(_resolve(target, deadline), deadline)
    except socket.gaierror as exc:
        raise ConnectFailed(f"cannot connect to {where}: host not found ({exc.strerror})") from None
    except TimeoutError:
        raise ConnectFailed(f"cannot connect to {where}: no answer within {target.connect_timeout:g} s") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ECONNREFUSED:
            reason = "connection refused (is the AMI listening on that port?)"
        raise ConnectFailed(f"cannot connect to {where}: {reason}") from None
    except (OverflowError, ValueError) as exc:
        raise ConnectFailed(f"cannot connect to {where}: {exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def _resolve(target: Target, deadline: float) -> list[tuple]:  # type: ignore[type-arg]
    """getaddrinfo has no timeout of its own: run it in a thread and stop waiting at the deadline."""
    outcome: list[object] = []

    def lookup() -> None:
        leave_signals_to_main_thread()
        try:
            outcome.append(socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            outcome.append(exc)

    worker = threading.Thread(target=lookup, name="amiscript-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not outcome:
        raise TimeoutError
    result = outcome[0]
    if isinstance(result, UnicodeError):
        raise socket.gaierror(socket.EAI_NONAME, "invalid host name")
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[return-value]


def _connect(addresses: list[tuple], deadline: float) -> socket.socket:  # type: ignore[type-arg]
    """Try each address in turn within the one deadline, as socket.create_connection does."""
    last: OSError | None = None
    for family, kind, proto, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(remaining)
            sock.connect(address)
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError("no address to connect to")
