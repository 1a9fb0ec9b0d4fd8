"""What the sessions of one simulator share: who is connected, event fan-out, and the small
mutable world that actions change (global variables, AstDB).

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


class Hub:
    def __init__(self, config: SimConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.started_at = clock()  # also the "last reload": the simulator never reloads
        self.global_vars: dict[str, str] = {}
        self.astdb: dict[tuple[str, str], str] = {}
        self._sessions: dict[int, Session] = {}  # insertion-ordered: delivery order is stable

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
