"""AMI over TLS (Asterisk's tlsenable, port 5039): the TCP transport on a wrapped socket.

Everything that can go wrong with certificates is turned here into one line that says what
failed and which option fixes it; the handshake runs under the same deadline as the connect.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time

from amiscript.errors import ConnectFailed, ConnectionLost, UsageError
from amiscript.transports.base import Target, TlsOptions
from amiscript.transports.tcp import TcpTransport, connect_socket

DEFAULT_PORT = 5039

# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code gives them
_UNKNOWN_CA = {2, 18, 19, 20, 21}
_EXPIRED, _NOT_YET_VALID, _REVOKED = 10, 9, 23
_NAME_MISMATCH = {62, 64}

# OpenSSL reasons meaning the bytes that came back were not TLS at all
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
}
# alerts a server sends when it wants a (different) client certificate
_CLIENT_CERT_REFUSED = (
    "CERTIFICATE_REQUIRED",
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "HANDSHAKE_FAILURE",
)

INSECURE_WARNING = (
    "warning: --insecure: the AMI server's TLS certificate is NOT verified; "
    "anyone on the path can read the login and pose as the server"
)


class TlsTransport(TcpTransport):
    WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
    _sock: ssl.SSLSocket

    @classmethod
    def open(cls, target: Target) -> TlsTransport:
        deadline = time.monotonic() + target.connect_timeout
        context = client_context(target.tls)
        raw = connect_socket(target, deadline)
        name = target.tls.server_name or target.host
        try:
            sock = context.wrap_socket(raw, server_hostname=name, do_handshake_on_connect=False)
        except (ssl.SSLError, ValueError) as exc:
            raw.close()
            raise ConnectFailed(f"cannot connect to {target}: bad TLS server name {name!r} ({exc})") from None
        try:
            _handshake(sock, deadline)
        except OSError as exc:
            with contextlib.suppress(OSError):
                sock.close()
            raise _handshake_failed(exc, target, name) from None
        return cls(sock, target)

    def __init__(self, sock: socket.socket, target: Target) -> None:
        super().__init__(sock, target)
        self._heard = False

    def receive(self, timeout: float) -> bytes | None:
        data = super().receive(timeout)
        if data == b"" and not self._heard:
            # An AMI server speaks first; closing before its banner is a refusal, typically of the
            # client certificate (asyncio and some others close without sending the TLS alert).
            raise ConnectionLost(
                f"{self.target}: the server closed the TLS connection before its banner", hint=self._cert_hint()
            )
        self._heard = self._heard or bool(data)
        return data

    def _cert_hint(self) -> str:
        if self.target.tls.cert:
            return "it may not trust the client certificate given with --cert"
        return "if it requires a client certificate, give --cert FILE and --key FILE"

    def _buffered(self) -> bool:
        # decrypted bytes wait inside the SSL object, where select() on the socket cannot see them
        return self._sock.pending() > 0

    def _wait(self, exc: OSError, timeout: float, *, writing: bool) -> bool:
        # TLS may need to read to write, or write to read (a key update): wait for what it asked
        if isinstance(exc, ssl.SSLWantReadError):
            writing = False
        elif isinstance(exc, ssl.SSLWantWriteError):
            writing = True
        return super()._wait(exc, timeout, writing=writing)

    def _lost(self, exc: OSError) -> ConnectionLost:
        reason = getattr(exc, "reason", None) or ""
        if isinstance(exc, ssl.SSLError) and any(alert in reason for alert in _CLIENT_CERT_REFUSED):
            return ConnectionLost(
                f"{self.target}: the server refused the TLS connection ({_short(exc)})", hint=self._cert_hint()
            )
        if isinstance(exc, ssl.SSLError):
            return ConnectionLost(f"{self.target}: the TLS stream broke ({_short(exc)})")
        return super()._lost(exc)


def client_context(options: TlsOptions) -> ssl.SSLContext:
    """The SSL context for ``options``; a file that cannot be used is the user's mistake (exit 2)."""
    try:
        context = ssl.create_default_context(cafile=options.cacert)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            _unusable("CA certificate file", options.cacert, exc, _not_a_ca_file(options.cacert)),
            hint="give the PEM certificate of the CA that signed the server's certificate"
            if isinstance(exc, ssl.SSLError)
            else "check the path",
        ) from None
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.key and not options.cert:
        raise UsageError(
            "a TLS client key needs its certificate too", hint="give --cert FILE (or `cert:` in `connect:`)"
        )
    if options.cert:
        try:
            context.load_cert_chain(options.cert, options.key, password=_no_passphrase)
        except (OSError, ssl.SSLError) as exc:
            what = "client certificate and key" if options.key else "client certificate"
            raise UsageError(
                _unusable(what, options.cert, exc, "it is not PEM, or the key does not match"),
                hint="both must be PEM; the key unencrypted, in the --cert file or given with --key",
            ) from None
    return context


def _no_passphrase() -> bytes:
    # without this, OpenSSL would stop and ask for a passphrase on the terminal
    raise ssl.SSLError("the key is encrypted with a passphrase")


def _unusable(what: str, path: str | None, exc: BaseException, unreadable: str) -> str:
    """``unreadable`` says what is wrong with a file OpenSSL could open but not use."""
    reason = unreadable if isinstance(exc, ssl.SSLError) else getattr(exc, "strerror", None) or str(exc)
    return f"cannot use the {what} {path!r}: {reason}"


def _not_a_ca_file(path: str | None) -> str:
    """What a file OpenSSL found no certificate in holds instead, as far as a glance tells."""
    try:
        with open(path or "", "rb") as handle:
            start = handle.read(1 << 16)
    except OSError:
        start = b""
    if b"PRIVATE KEY-----" in start:
        return "it holds a private key, not a CA certificate"
    return "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).lower().replace("_", " ")
    return str(exc.args[-1] if exc.args else exc)


def _handshake(sock: ssl.SSLSocket, deadline: float) -> None:
    """The TLS handshake on a non-blocking socket, so a peer that stalls cannot outlast ``deadline``."""
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            want = ([sock], [])
        except ssl.SSLWantWriteError:
            want = ([], [sock])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        readable, writable, _ = select.select(*want, [], remaining)
        if not readable and not writable:
            raise TimeoutError


def _handshake_failed(exc: BaseException, target: Target, name: str) -> ConnectFailed:
    where = f"cannot connect to {target}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return ConnectFailed(
            f"{where}: the TLS handshake did not finish within {target.connect_timeout:g} s",
            hint="is TLS enabled on that port? the plain AMI port is 5038 (tcp://), TLS usually 5039",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _not_trusted(exc, where, name)
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError | ssl.SSLZeroReturnError):
        return ConnectFailed(
            f"{where}: the server closed the connection during the TLS handshake",
            hint="is TLS enabled there (tlsenable in manager.conf)? if it requires a client certificate, "
            "give --cert FILE and --key FILE",
        )
    reason = getattr(exc, "reason", None) or ""
    if reason in _NOT_TLS:
        return ConnectFailed(
            f"{where}: the server does not speak TLS on that port",
            hint="the plain AMI port (5038) takes tcp://; for TLS use its TLS port (tlsbindaddr, usually 5039)",
        )
    if any(alert in reason for alert in _CLIENT_CERT_REFUSED):
        return ConnectFailed(
            f"{where}: the server refused the TLS handshake ({reason.lower().replace('_', ' ')})",
            hint="if it requires a client certificate, give --cert FILE and --key FILE with one it trusts",
        )
    return ConnectFailed(f"{where}: TLS handshake failed: {_short(exc)}")


def _not_trusted(exc: ssl.SSLCertVerificationError, where: str, name: str) -> ConnectFailed:
    code = exc.verify_code
    message = f"{where}: the server's certificate was not accepted"
    if code in _UNKNOWN_CA:
        self_signed = code == 18  # the server's own certificate; 19 is an untrusted root in its chain
        return ConnectFailed(
            f"{message}: {'self-signed' if self_signed else 'signed by an unknown CA'} ({exc.verify_message})",
            hint="give the CA certificate that signed it with --cacert FILE",
        )
    if code == _EXPIRED:
        return ConnectFailed(
            f"{message}: it has expired", hint="renew the server's certificate, or check this machine's clock"
        )
    if code == _NOT_YET_VALID:
        return ConnectFailed(f"{message}: it is not valid yet", hint="check the clocks of this machine and the server")
    if code == _REVOKED:
        return ConnectFailed(f"{message}: it has been revoked", hint="the server needs a new certificate")
    if code in _NAME_MISMATCH:
        return ConnectFailed(
            f"{message}: it is not issued for {name!r}",
            hint="connect by a name the certificate lists, or give that name with --server-name NAME",
        )
    return ConnectFailed(
        f"{message}: {exc.verify_message or _short(exc)}", hint="check --cacert FILE and --server-name NAME"
    )
