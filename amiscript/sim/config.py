"""What a simulator is configured with, and the defaults shipped as package data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Literal

from amiscript.sim.managerconf import ManagerUser, parse_manager_conf
from amiscript.sim.state import Mailbox, parse_state

DEFAULT_MANAGER_CONF = "manager.conf"
DEFAULT_STATE = "state.yaml"

CommandStyle = Literal["modern", "follows"]
COMMAND_STYLES: tuple[CommandStyle, ...] = ("modern", "follows")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Users from manager.conf, mailbox state, the two timings a client can observe, and the
    form of Command answers.

    ``login_fail_delay``: Asterisk sleeps a second before answering a failed Login (then closes).
    ``auth_timeout``: Asterisk's authtimeout; a connection still not logged in that many seconds
    after connecting (busy or idle) is closed without a word. 0 turns the limit off.
    ``command_style``: ``"modern"`` answers Command as Asterisk 14 and later do (one ``Output:``
    header per line, as in the captures); ``"follows"`` as Asterisk 13 and older did
    (``Response: Follows``, raw output lines, ``--END COMMAND--``), for clients of old PBXs.
    """

    users: tuple[ManagerUser, ...] = ()
    mailboxes: Mapping[str, Mailbox] = field(default_factory=dict)
    login_fail_delay: float = 1.0
    auth_timeout: float = 30.0
    command_style: CommandStyle = "modern"

    def __post_init__(self) -> None:
        # Store read-only copies: a running server must not see the caller's later edits.
        object.__setattr__(self, "users", tuple(self.users))
        object.__setattr__(self, "mailboxes", MappingProxyType(dict(self.mailboxes)))
        if self.login_fail_delay < 0 or self.auth_timeout < 0:
            raise ValueError("login_fail_delay and auth_timeout must not be negative")
        if self.command_style not in COMMAND_STYLES:
            raise ValueError(f"command_style must be one of {', '.join(COMMAND_STYLES)}, not {self.command_style!r}")


def default_config() -> SimConfig:
    """The book's ``[admin]`` user (secret5, localhost only, all classes) and the default mailboxes."""
    data = resources.files("amiscript.sim") / "data"
    conf = data / DEFAULT_MANAGER_CONF
    state = data / DEFAULT_STATE
    return SimConfig(
        users=parse_manager_conf(conf.read_text(encoding="utf-8"), str(conf)),
        mailboxes=parse_state(state.read_text(encoding="utf-8"), str(state)),
    )
