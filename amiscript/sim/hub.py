"""What the sessions of one simulator share: who is connected, event fan-out, a clock for
calls in progress, and the small mutable world that actions change (global variables, AstDB,
channel counters).

Everything here runs on the server's single event-loop thread, so there are no locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from amiscript.sim.config import SimConfig
from amiscript.sim.messages import AmiEvent

if TYPE_CHECKING:
    from amiscript.sim.session import Session

Scheduler = Callable[[float, Callable[[], None]], None]


class Hub:
    """Shared state of one simulator.

    ``schedule(delay, callback)`` runs work that outlives any one connection (a call goes on
    when the client that originated it hangs up). The server passes its event loop's
    ``call_later``; without one, callbacks wait in ``pending`` for a test to run them.
    """

    def __init__(
        self,
        config: SimConfig,
        clock: Callable[[], float] = time.time,
        schedule: Scheduler | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.started_at = clock()  # also the "last reload": the simulator never reloads
        self.global_vars: dict[str, str] = {}
        self.astdb: dict[tuple[str, str], str] = {}
        self.pending: list[tuple[float, Callable[[], None]]] = []
        self._schedule = schedule
        self._sessions: dict[int, Session] = {}  # insertion-ordered: delivery order is stable
        self._uniqueids = 0  # Asterisk numbers every channel it creates, from 0
        self._local_pairs = 0  # and every Local channel pair, printed as %08x

    def join(self, session: Session) -> None:
        self._sessions[id(session)] = session

    def leave(self, session: Session) -> None:
        self._sessions.pop(id(session), None)

    @property
    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def publish(self, event: AmiEvent) -> None:
        """Offer an event to every session; each decides by its own read classes and event mask."""
        for session in list(self._sessions.values()):
            session.deliver(event)

    def uptime(self) -> int:
        return max(0, int(self.clock() - self.started_at))

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        if self._schedule is None:
            self.pending.append((delay, callback))
        else:
            self._schedule(delay, callback)

    def run_pending(self) -> None:
        """Run queued callbacks (and those they queue) in order of delay; for hubs without a loop."""
        while self.pending:
            self.pending.sort(key=lambda item: item[0])
            _, callback = self.pending.pop(0)
            callback()

    def new_uniqueid(self) -> str:
        """Asterisk's channel id: creation time in whole seconds, a dot, a counter (``1795673699.0``)."""
        uniqueid = f"{int(self.clock())}.{self._uniqueids}"
        self._uniqueids += 1
        return uniqueid

    def new_local_pair(self) -> str:
        """The sequence number in ``Local/200@default-00000000;1``."""
        number = self._local_pairs
        self._local_pairs += 1
        return f"{number:08x}"
