"""The simulator's network side: an asyncio server on a background thread.

One event-loop thread serves every connection, so sessions and the hub never need locks, a
slow or hostile client cannot block the others, and timers (the failed-login pause,
authtimeout, WaitEvent) are plain loop callbacks that die with their connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from types import TracebackType

from amiscript.errors import TransportError
from amiscript.signals import leave_signals_to_main_thread
from amiscript.sim.config import SimConfig, default_config
from amiscript.sim.hub import Hub
from amiscript.sim.session import Endpoint, Session

log = logging.getLogger(__name__)

# A client that stops reading while events pile up is dropped, as Asterisk drops a session
# whose writes time out; this bounds the memory one connection can hold.
MAX_OUTPUT_BUFFER = 4 * 1024 * 1024
# A TLS client that connects and never finishes the handshake holds a socket no longer than this.
TLS_HANDSHAKE_TIMEOUT = 10.0


def server_context(cert: str, key: str | None = None, client_ca: str | None = None) -> ssl.SSLContext:
    """A TLS server context; with ``client_ca`` every client must show a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Connection(asyncio.Protocol):
    """Adapts one asyncio transport to a Session (it is the session's Link)."""

    def __init__(self, hub: Hub, loop: asyncio.AbstractEventLoop, registry: set[_Connection]) -> None:
        self.hub = hub
        self.loop = loop
        self.registry = registry
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.timers: set[asyncio.TimerHandle] = set()

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.registry.add(self)
        local = _endpoint(transport.get_extra_info("sockname"))
        peer = _endpoint(transport.get_extra_info("peername"))
        self.session = Session(self.hub, self, local, peer)
        self._guard(self.session.start)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is not None:
            self._guard(lambda: session.receive_data(data))

    def eof_received(self) -> bool:
        if self.session is not None:
            self._guard(self.session.receive_eof)
        # keep the transport: the session closes it once its replies are out. TLS cannot half-close
        # (asyncio closes it whatever we say, and warns if we ask otherwise).
        return self.transport is None or self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self.registry.discard(self)
        if self.session is not None:
            self.session.connection_lost()

    def pause_writing(self) -> None:
        # Stop reading a client that does not read our answers: backpressure, bounded memory.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- Link -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_OUTPUT_BUFFER:
            log.warning("dropping a client that does not read (%d bytes queued)", transport.get_write_buffer_size())
            self.abort()

    def close(self) -> None:
        self._cancel_timers()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self.timers.discard(handle)
            self._guard(callback)

        handle = self.loop.call_later(delay, fire)
        self.timers.add(handle)

    # -- helpers --------------------------------------------------------------------------

    def abort(self) -> None:
        self._cancel_timers()
        if self.transport is not None:
            self.transport.abort()

    def _cancel_timers(self) -> None:
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()

    def _guard(self, step: Callable[[], None]) -> None:
        """A bug triggered by one client's bytes must cost only that client its connection."""
        try:
            step()
        except Exception:
            log.exception("simulator session failed; closing that connection")
            if self.session is not None:
                self.session.connection_lost()
            self.abort()


def _logged(callback: Callable[[], None]) -> None:
    """Run hub work (a call in progress); a bug there must not stop the loop or go unseen."""
    try:
        callback()
    except Exception:
        log.exception("simulator call failed")


def _endpoint(address: object) -> Endpoint:
    if isinstance(address, tuple) and len(address) >= 2:
        return Endpoint(str(address[0]), int(address[1]))
    return Endpoint(str(address), 0)


class Simulator:
    """An AMI server that answers like Asterisk 22, for scripts and tests.

    ``start()`` serves in a background thread and returns once the socket listens;
    ``stop()`` closes the listener and every connection and joins the thread.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 5038,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config if config is not None else default_config()
        self.host = host
        self.port = port
        self.tls = tls  # serve AMI over TLS, as Asterisk's tlsenable does, with this server context
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._address: tuple[str, int] | None = None
        self._startup_error: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; with port 0 this is where the free port is seen."""
        if self._address is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return self._address

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> tuple[str, int]:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the simulator was already started")
            ready = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(ready,), name="amiscript-sim", daemon=True)
            self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            error = self._startup_error
            reason = getattr(error, "strerror", None) or str(error)
            raise TransportError(f"cannot listen on {self.host}:{self.port}: {reason}") from error
        return self.address

    def stop(self) -> None:
        """Close the listener and all sessions, and join the thread. Safe to call repeatedly."""
        with self._lock:
            thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop may be closing already
                loop.call_soon_threadsafe(stopping.set)
        if thread is not threading.current_thread():
            thread.join()

    def serve_forever(self) -> None:
        """Serve in the foreground until stop() is called from another thread.

        Starts the server if needed. On KeyboardInterrupt the server is stopped and the
        interrupt re-raised, so nothing keeps running behind the caller's back.
        """
        if self._thread is None:
            self.start()
        thread = self._thread
        assert thread is not None
        try:
            while thread.is_alive():
                thread.join(0.2)  # short waits keep Ctrl-C responsive
        except KeyboardInterrupt:
            self.stop()
            raise

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the loop thread ------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        leave_signals_to_main_thread()
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(loop, ready))
        except BaseException as exc:  # surfaced to start(); nothing else may die silently here
            if not ready.is_set():
                self._startup_error = exc
            else:
                log.exception("simulator stopped by an unexpected error")
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        def schedule(delay: float, callback: Callable[[], None]) -> None:
            loop.call_later(delay, _logged, callback)

        hub = Hub(self.config, schedule=schedule)
        connections: set[_Connection] = set()
        stopping = asyncio.Event()
        server = await loop.create_server(
            lambda: _Connection(hub, loop, connections),
            self.host,
            self.port,
            ssl=self.tls,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if self.tls is not None else None,
        )
        sockets = server.sockets or ()
        name = sockets[0].getsockname() if sockets else (self.host, self.port)
        with self._lock:
            self._loop, self._stopping = loop, stopping
            self._address = (str(name[0]), int(name[1]))
        ready.set()
        try:
            await stopping.wait()
        finally:
            server.close()
            for connection in list(connections):
                connection.abort()
            await server.wait_closed()
            await asyncio.sleep(0)  # let the aborted transports run connection_lost
