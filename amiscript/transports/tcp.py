"""Raw TCP with the standard library's sockets."""

from __future__ import annotations

import contextlib
import errno
import select
import socket

from amiscript.errors import ConnectFailed, ConnectionLost
from amiscript.transports.base import Target

CHUNK = 65536


class TcpTransport:
    def __init__(self, sock: socket.socket, target: Target) -> None:
        self._sock = sock
        self.target = target
        self._closed = False

    @classmethod
    def open(cls, target: Target) -> TcpTransport:
        where = str(target)
        try:
            sock = socket.create_connection((target.host, target.port), timeout=target.connect_timeout)
        except socket.gaierror as exc:
            raise ConnectFailed(f"cannot connect to {where}: host not found ({exc.strerror})") from None
        except TimeoutError:
            raise ConnectFailed(
                f"cannot connect to {where}: no answer within {target.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno == errno.ECONNREFUSED:
                reason = "connection refused (is the AMI listening on that port?)"
            raise ConnectFailed(f"cannot connect to {where}: {reason}") from None
        except (OverflowError, ValueError) as exc:
            raise ConnectFailed(f"cannot connect to {where}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return cls(sock, target)

    def send(self, data: bytes, timeout: float) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                _, writable, _ = select.select([], [self._sock], [], timeout)
                if not writable:
                    raise ConnectionLost(
                        f"{self.target}: peer stopped reading; could not send within {timeout:g} s"
                    ) from None
                continue
            except OSError as exc:
                raise ConnectionLost(f"{self.target}: {exc.strerror or exc}") from None
            view = view[sent:]

    def receive(self, timeout: float) -> bytes | None:
        try:
            readable, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
            if not readable:
                return None
            return self._sock.recv(CHUNK)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise ConnectionLost(f"{self.target}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()
