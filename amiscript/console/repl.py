"""The console loop: a prompt with readline (line editing, history, Tab completion), what is
typed sent as AMI actions, answers and events shown as they come, and (when recording) the
session written as a script after every action, replacing the file whole, so that even an abrupt
end leaves a complete script."""

from __future__ import annotations

import getpass
import itertools
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from amiscript.console.client import AmiClient, login
from amiscript.console.completion import Completer, actions_from_list_commands
from amiscript.console.eventfilter import EventFilter, parse_filter
from amiscript.console.recorder import Connection, Exchange, ListResult, Recording
from amiscript.console.recordfile import check_writable, write_whole
from amiscript.console.render import notice, render_packet, use_colour
from amiscript.console.shortform import Headers, ShortFormError, is_header_line, parse_header_line, parse_short
from amiscript.console.terminal import LineEditing, PlainLines, ReadlineTerminal
from amiscript.engine.ami import LOGOFF_SECONDS
from amiscript.engine.output import Masker
from amiscript.engine.variables import line_break_in
from amiscript.errors import AmiscriptError, ConnectionLost, Location, ScriptError, UsageError
from amiscript.protocol import Packet, UnsafeHeader
from amiscript.script.template import parse_template
from amiscript.transports.base import Target, TlsOptions

PROMPT = "ami> "
MORE = "...> "
RESERVED_VARS = ("host", "port", "username", "secret")
HISTORY_ENV = "AMISCRIPT_HISTORY"

HELP = """\
Type an action and press Enter:
  Ping                               the short form: the action, then Name=Value headers
  MailboxCount Mailbox=123@default   quote values with blanks: Command "core show channels"
  Action: Ping                       or a raw packet as in telnet, line by line; an empty line sends it
Console commands:
  /help                this text
  /events off|on       hide or show events
  /filter Name=Value   show only events whose headers match (Event=Hangup; Channel=PJSIP/*);
                       several must all match; /filter alone shows every event again
  /record FILE.yaml    from now on, write what you send as a script that `amiscript run` replays
  /quit                log off and leave (as Ctrl-D does)
Tab completes action and header names, Ctrl-C clears the line, ${name} uses a --var value."""


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    target: Target
    username: str | None
    secret_env: str | None
    auth: str = "plain"
    variables: dict[str, str] = field(default_factory=dict)
    record: str | None = None
    force: bool = False
    timeout: float = 10.0
    simulated: bool = False  # the target is a simulator started for this session


class Console:
    def __init__(self, options: ConsoleOptions, out: TextIO, environ: Mapping[str, str], stdin: Any) -> None:
        self._options = options
        self._out = out
        self._environ = environ
        self._stdin = stdin
        self._interactive = bool(stdin.isatty() and out.isatty())
        self._colour = use_colour(out, environ)
        self._mask = Masker()
        self._filter = EventFilter()
        self._completer = Completer()
        self._raw: Headers | None = None
        self._recording: Recording | None = None
        self._record_path: Path | None = None
        self._ids = itertools.count(1)
        self._secret = ""
        self._values: dict[str, str] = {}
        self._closed_reason: str | None = None
        self._display: PlainLines | ReadlineTerminal = PlainLines(out, stdin)
        self._client: AmiClient | None = None
        self._matches: list[str] = []
        self._logged_in = False
        self._logged_off = False
        self._leaving = False  # a Logoff was sent
        self._connection: Connection | None = None
        self._stoppable = True  # whether Ctrl-C raises KeyboardInterrupt now (see _loop)

    # -- the session ----------------------------------------------------------------------

    def run(self) -> int:
        options = self._options
        for name in options.variables:
            if name in RESERVED_VARS:
                raise UsageError(f"--var {name}=…: {name!r} is set by the console itself; choose another name")
        record_path = Path(options.record) if options.record else None
        if record_path is not None:
            check_writable(record_path, options.force)
        username = options.username or self._ask("Username: ")
        _refuse_line_breaks(username, "--username" if options.username else "the username")
        self._secret = self._read_secret(username)
        _refuse_line_breaks(
            self._secret, f"the secret in ${options.secret_env}" if options.secret_env else "the secret"
        )
        self._mask.add(self._secret)
        self._values = {**options.variables, "secret": self._secret}
        from amiscript.frontend import open_transport

        transport = open_transport(options.target)
        if self._interactive:
            self._display = ReadlineTerminal.open(self._out) or self._display
        self._client = client = AmiClient(transport, self._incoming, self._connection_closed)
        try:
            banner = client.start(min(options.timeout, options.target.connect_timeout))
            self._say(f"connected to {options.target}: {banner}")
            login(
                client,
                username,
                self._secret,
                auth=options.auth,
                timeout=options.timeout,
                remember_secret=self._mask.add,
            )
            self._logged_in = True
            self._say(f"logged in as {username}; /help lists the console's commands, Ctrl-D logs off")
            self._learn_actions()
            connection = Connection(
                options.target.transport,
                options.target.host,
                options.target.port,
                username,
                options.secret_env,
                options.auth,
                options.simulated,
                insecure=options.target.tls.insecure and options.target.transport == "tls",
            )
            self._connection = connection  # what a recording connects with
            if record_path is not None:
                self._start_recording(record_path)
            with self._line_editing():
                self._loop()
            if self._closed_reason is not None and not self._logged_off:
                raise ConnectionLost(self._closed_reason)
            if not self._logged_off:
                self._send([("Action", "Logoff")])
            self._say("logged off")
            if self._recording is not None:
                self._say(
                    f"recorded {len(self._recording.exchanges)} actions in {self._record_path}; "
                    f"replay: amiscript run {self._record_path}"
                )
            return 0
        finally:
            if self._logged_in and not self._leaving and not client.closed.is_set():
                self._leave_quietly()
            client.close()
            self._display.close()

    def _leave_quietly(self) -> None:
        """On the way out of an error or SIGTERM: Logoff, so the server ends the session at once
        rather than seeing a dropped connection. Best effort, bounded, nothing shown."""
        assert self._client is not None
        self._leaving = True
        self._client.request([("Action", "Logoff"), ("ActionID", "console-logoff")], LOGOFF_SECONDS)

    def _loop(self) -> None:
        """Prompt, act, repeat. Ctrl-C is a key at the prompt and stops a wait for an answer;
        in between (an answer shown, the next prompt not yet up) there is nothing to stop, and
        it must not end the console: the handler ignores it there."""
        try:
            previous = signal.signal(signal.SIGINT, self._on_interrupt)
        except ValueError:  # not the main thread: nobody can press Ctrl-C at this console
            previous = None
        self._stoppable = self._plain()
        try:
            self._prompt_and_act()
        finally:
            self._stoppable = True
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _on_interrupt(self, signum: int, frame: object) -> None:
        if self._stoppable:
            raise KeyboardInterrupt

    def _plain(self) -> bool:
        """Lines from a pipe: no prompt reads Ctrl-C as a key, so the signal acts at any time."""
        return isinstance(self._display, PlainLines)

    def _prompt_and_act(self) -> None:
        while not self._logged_off and self._closed_reason is None:
            try:
                line = self._display.read_line(MORE if self._raw is not None else PROMPT)
            except EOFError:
                return
            except KeyboardInterrupt:
                self._raw = None
                continue
            try:
                self._forget_secret_line(line)
                self._handle(line)
            except KeyboardInterrupt:
                self._say("stopped waiting for the answer")
            except (ShortFormError, UnsafeHeader) as exc:
                self._say(f"error: {exc}")
            except AmiscriptError as exc:
                self._say(f"error: {self._mask(exc.message)}")

    def _handle(self, line: str) -> None:
        if self._raw is not None:
            if not line.strip():
                packet, self._raw = self._raw, None
                self._send(packet)
            elif is_header_line(line):
                self._raw.append(parse_header_line(line))
            else:
                raise ShortFormError(
                    "in a raw packet each line is Name: value; an empty line sends it, Ctrl-C drops it"
                )
            return
        text = line.strip()
        if not text:
            return
        if text.startswith("/"):
            self._command(text)
        elif is_header_line(text):
            self._raw = [parse_header_line(text)]
        else:
            self._send(parse_short(text))

    def _send(self, typed: Headers) -> None:
        """Send what was typed (values are templates: ${var} is substituted) and show the answer."""
        client = self._client
        assert client is not None
        where = Location("(console)", 0)
        try:
            headers = [
                (name, parse_template(value, where).render(self._values, environ=self._environ))
                for name, value in typed
            ]
        except ScriptError as exc:
            raise ShortFormError(
                f"{exc.message}: start the console with --var NAME=VALUE (or write $$ for $)"
            ) from None
        if not any(name.lower() == "actionid" for name, _ in headers):
            headers.append(("ActionID", f"console-{next(self._ids)}"))
        action = next((value for name, value in headers if name.lower() == "action"), "")
        self._leaving = action.lower() == "logoff"  # the server will hang up: not news
        self._stoppable = True
        try:
            answer, items = client.request_list(headers, self._options.timeout)
        except KeyboardInterrupt:  # it was sent: a replay must send it too
            self._record(Exchange(tuple(typed), None, self._options.timeout, interrupted=True))
            raise
        finally:
            self._stoppable = self._plain()
        if answer is None:
            self._say(
                "the connection is closed"
                if client.closed.is_set()
                else f"no answer within {self._options.timeout:g} s"
            )
        else:
            self._display.now(render_packet(answer, colour=self._colour, mask=self._mask))
        if items is not None:  # held back by the client so that they come after their answer
            for event in (*items.items, *([items.complete] if items.complete else [])):
                self._incoming(event)
            if items.complete is None:
                self._say(f"the list did not end (no EventList: Complete) within {self._options.timeout:g} s")
        if answer is not None or not client.closed.is_set():
            listed = None if items is None else ListResult(tuple(items.items), items.complete)
            self._record(Exchange(tuple(typed), answer, self._options.timeout, listed=listed))
        if self._leaving and answer is not None:
            self._logged_off = True

    def _command(self, text: str) -> None:
        import shlex

        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise ShortFormError(str(exc)) from None
        name, args = words[0].lower(), words[1:]
        if name == "/help":
            self._display.now(HELP)
        elif name == "/events":
            if args not in (["on"], ["off"]):
                raise ShortFormError("write /events on or /events off")
            self._filter = EventFilter(args == ["on"], self._filter.pairs)
            self._say(self._filter.describe())
        elif name == "/filter":
            self._filter = EventFilter(True, parse_filter(args))
            self._say(self._filter.describe())
        elif name == "/record":
            if len(args) != 1:
                raise ShortFormError("write /record FILE.yaml")
            if self._recording is not None:
                raise ShortFormError(f"already recording to {self._record_path}")
            path = Path(args[0])
            check_writable(path, False)
            self._start_recording(path)
        elif name in ("/quit", "/exit"):
            self._raw = None
            self._send([("Action", "Logoff")])
        else:
            raise ShortFormError(f"{text!r}: unknown console command (/help lists them)")

    # -- what arrives on its own ------------------------------------------------------------

    def _incoming(self, packet: Packet) -> None:
        """Reader thread: an event, or an answer nobody waits for (any more)."""
        if packet.kind == "event" and not self._filter.shows(packet):
            return
        self._display.show(render_packet(packet, colour=self._colour, mask=self._mask))

    def _connection_closed(self, reason: str) -> None:
        """Reader thread: the server hung up; wake the prompt so the console can end."""
        self._closed_reason = reason
        if self._leaving or not self._logged_in:  # before: the login's own error says what happened
            return
        self._display.show(notice(reason, colour=self._colour))
        self._display.end()

    # -- helpers -----------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self._display.now(notice(text, colour=self._colour))

    def _ask(self, prompt: str) -> str:
        if not self._interactive:
            raise UsageError("console: give --username (there is no terminal to ask on)")
        try:
            return input(prompt).strip()
        except EOFError:  # Ctrl-D: the user chose not to log in; nothing was sent
            self._out.write("\n")
            raise UsageError("console: no username given (type one at the prompt, or pass --username)") from None

    def _read_secret(self, username: str) -> str:
        name = self._options.secret_env
        if name:
            if name not in self._environ:
                raise UsageError(f"--secret-env {name}: the environment variable is not set (export {name}=...)")
            return self._environ[name]
        try:  # getpass asks on the terminal even when stdin is a pipe; without one it would read stdin
            with open("/dev/tty", "rb"):
                pass
        except OSError:
            raise UsageError(
                "console: there is no terminal to ask for the secret on: give --secret-env NAME (export NAME=... first)"
            ) from None
        try:
            return getpass.getpass(f"Secret for {username}: ")
        except EOFError:  # Ctrl-D: nothing was sent, and there is nothing to log in with
            if self._interactive:
                self._out.write("\n")  # the error goes below the prompt, not after it
            raise UsageError("console: no secret given (type it at the prompt, or pass --secret-env NAME)") from None

    def _learn_actions(self) -> None:
        assert self._client is not None
        answer = self._client.request([("Action", "ListCommands"), ("ActionID", "console-list")], self._options.timeout)
        if answer is not None and (answer.get("Response") or "").lower() == "success":
            self._completer = Completer(actions_from_list_commands(answer))

    def _start_recording(self, path: Path) -> None:
        """Recording starts once its file is written: a file that cannot be leaves nothing half set."""
        assert self._connection is not None
        target = self._options.target
        tls = _script_tls(target.tls, path) if target.transport == "tls" else ()
        recording = Recording(replace(self._connection, tls=tls), dict(self._options.variables), secret=self._secret)
        write_whole(path, recording.to_yaml(path.stem, mask=self._mask))
        self._recording, self._record_path = recording, path
        self._say(f"recording to {path}")

    def _record(self, exchange: Exchange) -> None:
        if self._recording is None or self._record_path is None:
            return
        self._recording.add(exchange)
        write_whole(self._record_path, self._recording.to_yaml(self._record_path.stem, mask=self._mask))

    def _forget_secret_line(self, line: str) -> None:
        """A line that holds the secret stays out of the history file."""
        if not (self._interactive and self._secret and self._secret in line):
            return
        import readline

        length = readline.get_current_history_length()
        if length:
            readline.remove_history_item(length - 1)

    def history_path(self) -> Path:
        return Path(self._environ.get(HISTORY_ENV) or Path.home() / ".amiscript_history")

    def _line_editing(self) -> LineEditing:
        return LineEditing(self.complete if self._interactive else None, self.history_path())

    def complete(self, word: str, state: int) -> str | None:
        import readline

        if state == 0:
            raw_action = None
            if self._raw is not None:
                raw_action = next((value for name, value in self._raw if name.lower() == "action"), "")
            self._matches = self._completer.candidates(
                readline.get_line_buffer(), readline.get_begidx(), word, raw_action=raw_action
            )
        return self._matches[state] if state < len(self._matches) else None


def _refuse_line_breaks(value: str, what: str) -> None:
    """As `run` refuses such a value: it would add header lines to the Login. Never shown."""
    bad = line_break_in(value)
    if bad is not None:
        raise UsageError(f"{what} contains {bad}; refusing to send it in the login (a value cannot add header lines)")


def _script_tls(tls: TlsOptions, script: Path) -> tuple[tuple[str, str], ...]:
    """The TLS settings for the recorded script's `connect:`, which reads files relative to the
    script: a file in the script's folder (or below) is written relative to it, so the folder can
    move as a whole (into a repository, a CI job); any other file, as an absolute path."""
    folder = script.resolve().parent
    settings: list[tuple[str, str]] = []
    for name, value in (("cacert", tls.cacert), ("cert", tls.cert), ("key", tls.key)):
        if value:
            file = Path(value).expanduser().resolve()
            settings.append((name, str(file.relative_to(folder)) if file.is_relative_to(folder) else str(file)))
    if tls.server_name:
        settings.append(("server_name", tls.server_name))
    return tuple(settings)
