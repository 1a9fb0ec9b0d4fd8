"""amiscript.sim: an AMI server that behaves like Asterisk where a client can see it.

Built on the same protocol codec as the client. Layers, bottom up: ``perms`` (permission
classes), ``managerconf`` and ``state`` (the files it is configured with), ``config``,
``messages`` (what goes on the wire), ``hub`` (what sessions share), ``dialplan`` and
``calls`` (the built-in dialplan and the calls Originate places on it), ``actions`` and
``clicommands`` (what each action answers), ``session`` (one connection as a state machine,
no sockets) and ``server`` (asyncio sockets on a background thread).
"""

from amiscript.sim.config import SimConfig, default_config
from amiscript.sim.managerconf import ManagerUser, load_manager_conf, parse_manager_conf
from amiscript.sim.server import Simulator
from amiscript.sim.state import Mailbox, load_state, parse_state

__all__ = [
    "Mailbox",
    "ManagerUser",
    "SimConfig",
    "Simulator",
    "default_config",
    "load_manager_conf",
    "load_state",
    "parse_manager_conf",
    "parse_state",
]
