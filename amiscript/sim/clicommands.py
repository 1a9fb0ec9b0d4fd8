"""The few Asterisk CLI commands the ``Command`` action can run in the simulator.

Output text is what Asterisk 22 prints (see command-*.txt captures); anything else gets the
CLI's own "No such command" line, which AMI reports as ``Response: Error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amiscript.sim.hub import Hub
from amiscript.sim.identity import VERSION_LINE

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY
_YEAR = 365 * _DAY


@dataclass(frozen=True, slots=True)
class CliResult:
    ok: bool
    text: str  # lines separated by "\n", as the CLI writes them


def run_cli(hub: Hub, command: str) -> CliResult:
    words = command.split()
    lowered = [word.lower() for word in words]
    for pattern, handler in _COMMANDS:
        if lowered[: len(pattern)] == list(pattern):
            result = handler(hub, words[len(pattern) :])
            if result is not None:
                return result
    joined = " ".join(words)
    return CliResult(
        False,
        f"No such command '{command}' (type 'core show help {joined}' for other possible commands)\n",
    )


def is_blacklisted(command: str) -> bool:
    """Asterisk refuses these over AMI whatever the user's rights (manager.c command_blacklist)."""
    words = [word.lower() for word in command.split()]
    return words[:2] in (["module", "load"], ["module", "unload"], ["restart", "gracefully"])


def _version(hub: Hub, args: list[str]) -> CliResult | None:
    return None if args else CliResult(True, VERSION_LINE + "\n")


def _uptime(hub: Hub, args: list[str]) -> CliResult | None:
    if args not in ([], ["seconds"]):
        return None
    seconds = hub.uptime()
    if args:
        return CliResult(True, f"System uptime: {seconds}\nLast reload: {seconds}\n")
    text = _duration(seconds)
    return CliResult(True, f"System uptime: {text}\nLast reload: {text}\n")


def _duration(seconds: int) -> str:
    """cli.c print_uptimestr: "1 minute, 20 seconds"; units only when strictly exceeded."""
    parts: list[str] = []
    for size, unit in ((_YEAR, "year"), (_WEEK, "week"), (_DAY, "day"), (_HOUR, "hour"), (_MINUTE, "minute")):
        if seconds > size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    if seconds > 0 or not parts:
        parts.append(f"{seconds} second{'' if seconds == 1 else 's'}")
    return ", ".join(parts)


def _channels(hub: Hub, args: list[str]) -> CliResult | None:
    # The simulator has no channels; these are Asterisk's texts for an idle system.
    counts = "0 active channels\n0 active calls\n0 calls processed\n"
    if not args:
        header = f"{'Channel':<64.64} {'Location':<32.32} {'State':<7.7} {'Application(Data)':<30.30}"
        return CliResult(True, header + "\n" + counts)
    if [arg.lower() for arg in args] == ["count"]:
        return CliResult(True, counts)
    if [arg.lower() for arg in args] == ["concise"]:
        return CliResult(True, "")
    return None


def _voicemail_users(hub: Hub, args: list[str]) -> CliResult | None:
    """handle_voicemail_show_users, texts as in app_voicemail.c ("1 voicemail users", sic)."""
    context: str | None = None
    if args:
        if len(args) != 2 or args[0] != "for":
            return None
        context = args[1]
    if not hub.config.mailboxes:
        return CliResult(False, "There are no voicemail users currently defined\n")
    boxes = [box for box in hub.config.mailboxes.values() if context is None or box.context == context]
    if not boxes:
        return CliResult(False, f'No such voicemail context "{context}"\n')
    row = "{:<10} {:<5} {:<25} {:<10} {:>6}\n"
    lines = [row.format("Context", "Mbox", "User", "Zone", "NewMsg")]
    # NewMsg counts urgent messages too (app_voicemail inboxcount adds them).
    lines += [row.format(box.context, box.box, box.name, "", str(box.new + box.urgent)) for box in boxes]
    lines.append(f"{len(boxes)} voicemail users configured.\n")
    return CliResult(True, "".join(lines))


def _reload(hub: Hub, args: list[str]) -> CliResult | None:
    """`reload` (also `core reload`) reloads every module; the CLI itself prints nothing."""
    return CliResult(True, "")


_COMMANDS: tuple[tuple[tuple[str, ...], Callable[[Hub, list[str]], CliResult | None]], ...] = (
    (("core", "show", "version"), _version),
    (("core", "reload"), _reload),
    (("reload",), _reload),
    (("core", "show", "uptime"), _uptime),
    (("core", "show", "channels"), _channels),
    (("voicemail", "show", "users"), _voicemail_users),
)
