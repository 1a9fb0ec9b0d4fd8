"""A console session turned into a script (autoexpect for AMI). Pure: packets in, YAML text out.

What goes in the file:

- the connection and login as variables (host, port, username), the secret as a ``secret``
  variable whose default reads an environment variable (``${env:NAME}``), never its value;
  over TLS, the TLS settings the console used, so that the replay verifies the server the same way;
- each action the person sent, as typed (typed text is already template text: ``${var}``
  stays a reference), as an ``action`` step whose ``expect`` holds the headers of the answer
  that a replay against the same server will see again (see ``classify``);
- ``Command`` output as one regex, digits loosened to ``\\d+`` and runs of blanks to
  ``[ \\t]+``, that a person can loosen further;
- comments with every header that was observed, checked or not, and why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from amiscript.protocol import Packet

DEFAULT_SECRET_ENV = "AMI_SECRET"


class Check(Enum):
    """How a header of an answer is checked on replay."""

    EXACT = "checked"
    NUMBER = "checked to be a number"  # a counter: the same server may count differently next time
    SKIP = "not checked: it changes every time"  # ids, timestamps, challenges
    SECRET = "not checked: it holds the secret"  # inside other text: checking it would write the secret


# Header names whose values are new on every call, whatever they look like.
_VOLATILE_NAME = re.compile(r"(?i)^actionid$|uniqueid|linkedid|timestamp|challenge|time$|date$|^key$|^secret$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# Values that look like ids or clocks: long digit runs (epochs, ids), hex runs, dates, times.
_VOLATILE_VALUE = re.compile(
    r"\d{6,}|\b0x[0-9a-fA-F]+|\b[0-9a-fA-F]{8,}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}(?::\d{2})?\b|\b\d+\.\d+\.\d+\.\d+:\d+"
)


def classify(name: str, value: str) -> Check:
    """The stability rule: ActionID, ids, timestamps and challenges (by name), and values that
    look like ids or clock readings are not checked; plain numbers (counters) are checked for
    being numbers; everything else (Response, Message, names, states) must come back the same."""
    if _VOLATILE_NAME.search(name):
        return Check.SKIP
    if _NUMBER.fullmatch(value.strip()):
        return Check.SKIP if len(value.strip().lstrip("-").split(".")[0]) >= 6 else Check.NUMBER
    if _VOLATILE_VALUE.search(value):
        return Check.SKIP
    return Check.EXACT


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the console connected and how it logged in; the secret itself is never here."""

    transport: str
    host: str
    port: int
    username: str
    secret_env: str | None  # the environment variable the console read the secret from
    auth: str = "plain"
    simulated: bool = False  # a simulator started for the session: replay with --simulate
    tls: tuple[tuple[str, str], ...] = ()  # `connect:`'s cacert, cert, key, server_name, as the script writes them
    insecure: bool = False  # the server's certificate was not verified (--insecure)


@dataclass(frozen=True, slots=True)
class ListResult:
    """The events a list action's answer announced (``EventList: start``), and the one that
    ended the list (``EventList: Complete``), None if it never came."""

    items: tuple[Packet, ...]
    complete: Packet | None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One action as typed (template text, without the console's own ActionID) and its answer."""

    sent: tuple[tuple[str, str], ...]
    answer: Packet | None
    waited: float = 10.0
    interrupted: bool = False  # Ctrl-C stopped the wait: it was sent, but no answer was seen
    listed: ListResult | None = None  # the answer started a list


@dataclass
class Recording:
    connection: Connection
    variables: dict[str, str] = field(default_factory=dict)  # --var values the typed text may use
    exchanges: list[Exchange] = field(default_factory=list)
    # Only to write ${secret} wherever it was typed or echoed back: the value is never written.
    secret: str = field(default="", repr=False)

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def to_yaml(self, name: str, *, mask: Callable[[str], str] = lambda text: text) -> str:
        """The script; ``mask`` hides secrets in what was observed (only comments quote it)."""
        conn = self.connection
        env = conn.secret_env or DEFAULT_SECRET_ENV
        insecure = " --insecure" if conn.insecure else ""
        out = [
            f"# {name}: recorded by `amiscript record` from a console session with {conn.transport}://"
            f"{_host(conn.host)}:{conn.port}.",
            f"# Replay: {env}=... amiscript run {name}.yaml{insecure}"
            + (" --simulate" if conn.simulated else f"   (or --target {conn.transport}://HOST:PORT for another PBX)"),
            "# Checks are the answers' stable headers; ids, timestamps and counters are loosened (see comments).",
            f"name: {_scalar(name)}",
            "vars:",
            f"  host: {_scalar(conn.host)}",
            f"  port: {_scalar(str(conn.port))}",
            f"  username: {_scalar(conn.username)}",
            "  secret:",
            f"    default: {_scalar('${env:' + env + '}')}"
            + ("" if conn.secret_env else f"  # the console prompted for it; export {env} before replaying"),
            "    secret: true",
        ]
        out += [f"  {var}: {_scalar(value)}" for var, value in self.variables.items()]
        out += ["connect:"]
        if conn.transport != "tcp":
            out.append(f"  transport: {_scalar(conn.transport)}")
        out += ["  host: ${host}", "  port: ${port}"]
        out += [f"  {key}: {_scalar(value)}" for key, value in conn.tls]
        out += ["steps:", "  - login:", "      username: ${username}"]
        out.append("      secret: ${secret}")
        if conn.auth != "plain":
            out.append(f"      auth: {_scalar(conn.auth)}")
        for exchange in self.exchanges:
            out += self._action_step(exchange, mask)
        return "\n".join(out) + "\n"

    def _action_step(self, exchange: Exchange, mask: Callable[[str], str]) -> list[str]:
        lines = ["  - action:"]
        for name, value in exchange.sent:
            if self.secret and self.secret in value and value != self.secret:
                lines.append(
                    f"      # {name} held the secret's text: written as ${{secret}} "
                    "(if it is not the secret, type the value here)"
                )
            lines.append(f"      {_key(name)}: {_scalar(self._hide_secret(value))}")
        answer = exchange.answer
        if answer is None:
            if exchange.interrupted:
                return ["  # sent, but Ctrl-C stopped the wait during the session: no answer was seen", *lines]
            return [f"  # no answer came within {exchange.waited:g} s during the session", *lines]
        observed = [self._observed(name, value, mask) for name, value in answer.headers]
        if (answer.get("Response") or "").strip().lower() == "error":
            message = answer.get("Message") or ""
            lines.append("    on_error:                     # the server refused it during the session too")
            if self._holds_secret(message, mask):
                lines.append('      - print: "refused as expected: ${error}"')
            else:
                lines.append(f"      - assert: {_scalar('message == ' + _expr_string(message))}")
            return [*observed, *lines]
        checks = self._checks(answer, mask)
        listed = _list_lines(exchange) if exchange.listed is not None else []
        return [*observed, *lines, *(["    expect:", *checks] if checks else []), *listed]

    def _checks(self, answer: Packet, mask: Callable[[str], str]) -> list[str]:
        lines: list[str] = []
        for name in dict.fromkeys(name.lower() for name, _ in answer.headers):
            header = next(written for written, _ in answer.headers if written.lower() == name)
            values = answer.get_all(name)
            if name == "output":
                lines += [f"      {_key(header)}:", "        # the command's output; digits are \\d+, blanks [ \\t]+"]
                pattern = output_pattern(values, hide=lambda line: self._holds_secret(line, mask))
                lines += _regex_block(_template(pattern), indent=8)
                continue
            joined = "\n".join(values)
            check = self._classify(header, joined, mask)
            if check is Check.EXACT:
                lines.append(f"      {_key(header)}: {_scalar(self._as_template(joined))}")
            elif check is Check.NUMBER:
                lines.append(f"      {_key(header)}: {{re: '^-?\\d+(\\.\\d+)?$'}}")
        return lines

    def _observed(self, name: str, value: str, mask: Callable[[str], str]) -> str:
        shown = mask(value.replace(self.secret, "****") if self.secret else value)
        note = ""
        if name.lower() != "output":
            check = self._classify(name, value, mask)
            note = "" if check is Check.EXACT else f"   ({check.value})"
        return f"  # observed: {_printable(name)}: {_printable(shown)}{note}"

    def _classify(self, name: str, value: str, mask: Callable[[str], str]) -> Check:
        """classify, and a value that holds the secret inside other text is not checked: a lab
        secret such as ``1234`` is found inside ordinary values, and writing the check would
        write the secret."""
        if value != self.secret and self._holds_secret(value, mask):
            return Check.SECRET
        return classify(name, value)

    def _holds_secret(self, text: str, mask: Callable[[str], str]) -> bool:
        return bool(self.secret and self.secret in text) or mask(text) != text

    def _hide_secret(self, template: str) -> str:
        """The secret's text becomes ${secret} wherever it was typed, also inside other text: the
        file must never hold the secret. A lab secret such as ``1234`` inside ``1234@default`` is
        then taken for the secret too; the step says so in a comment, and replays as long as the
        secret is unchanged."""
        return template.replace(self.secret, "${secret}") if self.secret else template

    def _as_template(self, text: str) -> str:
        """An observed value as template text: the secret as ${secret}, a --var's value as its
        ${name}, and ``$`` kept literal everywhere else. Whole values only, as _hide_secret."""
        if self.secret and text == self.secret:
            return "${secret}"
        for name, value in self.variables.items():
            if len(value) >= 3 and text == value:
                return f"${{{name}}}"
        return _template(text)


def _list_lines(exchange: Exchange) -> list[str]:
    """``list:`` and ``items:`` for a list action: the replay waits for the list to end and
    checks what is stable about it (there were items, all of one kind), not how many: mailboxes,
    peers and channels come and go."""
    listed = exchange.listed
    assert listed is not None
    kinds = list(dict.fromkeys(item.get("Event") or "" for item in listed.items))
    observed = f"{len(listed.items)} item{'s' if len(listed.items) != 1 else ''}"
    if kinds and all(kinds):
        observed += f" ({', '.join(kinds)})"
    if listed.complete is None:
        return [f"    # observed: {observed}, but the list did not end within {exchange.waited:g} s: not collected"]
    ended = listed.complete.get("Event") or "the Complete event"
    action = next((value for name, value in exchange.sent if name.lower() == "action"), "list")
    name = re.sub(r"\W+", "_", action.lower()).strip("_") or "list"
    lines = [f"    # observed: {observed}, ended by {ended}", f"    list: {name}_items"]
    if not listed.items:
        return [*lines, "    # no items: add `items: {min: 1}` here to require some"]
    lines += ["    items:", "      min: 1"]
    if len(kinds) == 1 and kinds[0]:
        lines.append(f"      every: {{Event: {_scalar(kinds[0])}}}")
    return lines


def output_pattern(lines: Sequence[str], hide: Callable[[str], bool] = lambda line: False) -> str:
    """A regex for CLI output lines: literal text, digit runs as ``\\d+``, runs of blanks (and
    blanks at a line's ends) as ``[ \\t]+``/``[ \\t]*``, so column widths may change. A line
    ``hide`` picks (it holds the secret) matches as ``.*``."""
    kept = list(lines)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(".*" if hide(line) else _line_pattern(line) for line in kept)


def _line_pattern(line: str) -> str:
    body = line.strip(" \t")
    if not body:
        return "[ \\t]*" if line else ""
    lead = "[ \\t]+" if body and line[: len(line) - len(line.lstrip(" \t"))] else ""
    trail = "[ \\t]*" if body and line != line.rstrip(" \t") else ""
    parts = re.split(r"(\d+|[ \t]{2,}|\t)", body)
    out = []
    for part in parts:
        if not part:
            continue
        if part.isdigit():
            out.append(r"\d+")
        elif not part.strip(" \t"):
            out.append("[ \\t]+")
        else:
            out.append(re.escape(part).replace("\\ ", " "))
    return lead + "".join(out) + trail


def _regex_block(text: str, indent: int) -> list[str]:
    pad = " " * indent
    if not text or any(not char.isprintable() for char in text.replace("\n", "")):
        return [f"{pad}re: {json.dumps(text, ensure_ascii=False)}"]
    return [f"{pad}re: |-", *[f"{pad}  {line}" if line else "" for line in text.split("\n")]]


def _template(text: str) -> str:
    """Observed text written where a template is read: ``${`` and ``$$`` must stay literal."""
    return re.sub(r"\$(?=[{$])", "$$", text)


def _expr_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ ./@+=,()<>-]*")


def _scalar(text: str) -> str:
    """A YAML scalar for text: plain when that is unambiguous, else double-quoted (JSON escapes
    are YAML's too). Every scalar is read back as text by amiscript's loader."""
    if _PLAIN.fullmatch(text) and text == text.strip() and " #" not in text:
        return text
    # JSON escapes are YAML's too; YAML also reads NEL and the Unicode separators as line breaks
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted.replace("\x85", "\\N").replace("\u2028", "\\L").replace("\u2029", "\\P")


def _printable(text: str) -> str:
    """Text for a YAML comment, which must stay on its line and hold printable characters only."""
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)


def _key(name: str) -> str:
    return _scalar(name)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
