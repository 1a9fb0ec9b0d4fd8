"""The AMI-level steps: login, action (responses, lists, Command output) and wait_event.

They read whole packets (see ``packets.py``), find their answer by ActionID whatever arrives
first, and set ``response``, ``message`` and ``output`` for later steps. A mixin of the
Interpreter, which owns the variables, the session and the handlers.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import regex

from amiscript.engine.output import one_line
from amiscript.engine.packets import Check, PacketInbox, as_item, header_text, match_all
from amiscript.engine.session import Outcome
from amiscript.engine.variables import refuse_line_breaks
from amiscript.errors import Location, RunFailed, ScriptError
from amiscript.protocol import CLIENT_MAX_LINE, Packet, UnsafeHeader, encode_packet
from amiscript.protocol.auth import md5_key
from amiscript.script.model import Action, HeaderMatch, ItemsCheck, Login, PatternKind, Step, WaitEvent
from amiscript.script.template import Template
from amiscript.script.timedregex import Budget

if TYPE_CHECKING:
    from amiscript.engine.interpreter import Interpreter

    _Base = Interpreter
else:
    _Base = object


class Stop(Exception):
    """Unwinds nested steps for `exit` and `fail`."""

    def __init__(self, code: int) -> None:
        self.code = code


class _StepFailed(Exception):
    """An AMI step's answer says it failed; ``reason`` is the server's word or the check's."""

    def __init__(self, reason: str, answer: Packet | None = None) -> None:
        self.reason = reason
        self.answer = answer


LOGOFF_SECONDS = 1.0  # how long an interrupted run waits for the server to take its Logoff


class AmiSteps(_Base):
    _ids = itertools.count(1)
    _id_prefix = f"amiscript-{os.getpid()}-{os.urandom(2).hex()}"

    def log_off(self) -> None:
        """On the way out of an interrupted run (Ctrl-C, SIGTERM, a cancelled parallel run):
        a logged-in session sends Logoff, so the server ends it at once rather than seeing a
        dropped connection. Best effort, bounded by LOGOFF_SECONDS.

        Only to a peer that speaks AMI (its banner, or a `login` step it accepted), and only
        after a Login the script sent (by a `login` step or as raw text, as the book does) with
        no Logoff since: a peer that is not AMI never gets an AMI packet it was not sent."""
        if not (self.session.speaks_ami and self.session.logged_in):
            return
        data = encode_packet([("Action", "Logoff"), ("ActionID", f"{self._id_prefix}-{next(self._ids)}")])
        if self.session.farewell(data, data.decode(), LOGOFF_SECONDS):
            self._note("logged off before stopping")
        self.session.logged_in = False

    # -- login -----------------------------------------------------------------------------

    def _login(self, step: Login) -> None:
        username = self._header_value("Username", step.username)
        secret = self._header_value("Secret", step.secret)
        self.mask.add(secret)
        extra = [("Events", self._header_value("Events", step.events))] if step.events is not None else []
        timeout = step.timeout if step.timeout is not None else self._timeout
        deadline = self._clock() + timeout
        what = f"login as {username!r}"
        auth = self._render(step.auth).lower()
        if auth not in ("plain", "md5"):
            raise ScriptError(f"auth must be plain or md5, not {auth!r}", step.auth.location)
        try:
            if auth == "md5":
                challenge = self._exchange(
                    [("Action", "Challenge"), ("AuthType", "md5")],
                    step.location,
                    deadline - self._clock(),
                    what,
                    step_timeout=timeout,
                )
                if challenge is None:
                    return
                self._require_success(challenge)
                nonce = challenge.get("Challenge")
                if not nonce:
                    raise _StepFailed("the server sent no Challenge")
                key = md5_key(nonce, secret)
                self.mask.add(key)  # the key proves the secret: never shown either
                headers = [("Action", "Login"), ("AuthType", "md5"), ("Username", username), ("Key", key), *extra]
            else:
                headers = [("Action", "Login"), ("Username", username), ("Secret", secret), *extra]
            remaining = max(deadline - self._clock(), 0.001)
            answer = self._exchange(headers, step.location, remaining, what, step_timeout=timeout)
            if answer is None:
                return
            self._set_results(answer)
            self._require_success(answer)
            self.session.speaks_ami = True  # it accepted a login, banner or not
        except _StepFailed as failure:
            self._step_failed(what, failure, step.on_error, step.location)

    # -- action ----------------------------------------------------------------------------

    def _action(self, step: Action) -> None:
        headers = [(name, self._header_value(name, value)) for name, value in step.headers]
        what = f"action {step.name}"
        budget = Budget.of(step.timeout if step.timeout is not None else self._timeout, self._clock)
        try:
            answer = self._exchange(headers, step.location, step.timeout, what, list_var=step.list_var)
            if answer is None:
                return
            response, items = answer if isinstance(answer, tuple) else (answer, None)
            self._set_results(response)
            self._require_success(response)
            for name, header in step.save:
                value = header_text(response, header)
                if value is None:
                    raise _StepFailed(f"the response has no {header} header to save as {name!r}")
                self._assign(name, value)
            captures = self._check_headers(step.expect, response, budget)
            for name, value in captures.items():
                self._assign(name, value)
            if step.list_var is not None:
                self._assign(step.list_var, items or [])
                if step.items is not None:
                    self._check_items(step.items, items or [], budget)
        except _StepFailed as failure:
            self._step_failed(what, failure, step.on_error, step.location)

    def _header_value(self, name: str, value: Template) -> str:
        check = refuse_line_breaks(value.location, f"the {name} header (nothing was sent)")
        return value.render(self.values, escape=check, environ=self._environ)

    def _exchange(
        self,
        headers: list[tuple[str, str]],
        where: Location,
        timeout: float | None,
        what: str,
        *,
        list_var: str | None = None,
        step_timeout: float | None = None,
    ) -> Packet | tuple[Packet, list[dict[str, str]]] | None:
        """Send one action and wait for the answer with its ActionID (and its list, if any).

        None when end of file or a timeout was handled by a handler. ``step_timeout`` is the
        step's whole timeout when ``timeout`` is what is left of it (login's second exchange):
        a message names the step's timeout, not the few microseconds already spent.
        """
        action_id = next((value for name, value in headers if name.lower() == "actionid"), None)
        if action_id is not None and not action_id.strip():
            raise ScriptError("ActionID must not be empty (Asterisk would not echo it)", where)
        if action_id is None:
            action_id = f"{self._id_prefix}-{next(self._ids)}"
            headers = [*headers, ("ActionID", action_id)]
        try:
            data = encode_packet(headers)
        except UnsafeHeader as exc:
            raise ScriptError(str(exc), where) from None
        inbox = self.session.packets()
        transport = self._open_for_wait()
        if transport is not None and not self._transmit(data, data.decode("utf-8", "replace"), where):
            return None
        limit = timeout if timeout is not None else self._timeout
        shown = limit if step_timeout is None else step_timeout
        deadline = self._clock() + limit
        result, _ = self.session.wait(transport, self._answer_poll(inbox, action_id), limit)
        if not isinstance(result, Packet):
            self._wait_failed(result, f"the answer to {what}", shown, where)
            return None
        if list_var is None or (result.get("EventList") or "").lower() != "start":
            if list_var is not None and (result.get("Response") or "").lower() == "success":
                raise _StepFailed("the answer is not a list (no `EventList: start`)")
            return result
        items: list[dict[str, str]] = []
        remaining = max(deadline - self._clock(), 0.0)
        end, _ = self.session.wait(transport, self._list_poll(inbox, action_id, items), remaining)
        if not isinstance(end, Packet):
            so_far = f"the end of the list of {what} ({len(items)} items so far)"
            self._wait_failed(end, so_far, shown, where)
            return None
        reported = end.get("ListItems")
        if reported is not None and reported.strip().isdigit() and int(reported) != len(items):
            raise _StepFailed(f"the server reported ListItems: {reported.strip()} but sent {len(items)} items")
        self._note(f"{where}: {what}: {len(items)} items, ended by {end.get('Event')}")
        return result, items

    def _answer_poll(self, inbox: PacketInbox, action_id: str) -> Callable[[bool], Packet | None]:
        def poll(final: bool) -> Packet | None:
            dropped = inbox.dropped
            try:
                while (packet := inbox.next_answer()) is not None:  # events go to the backlog
                    if packet.kind == "response":
                        if _same_id(packet, action_id):
                            return packet
                        inbox.strays += 1
                        self._note(f"ignored a response for another ActionID ({packet.get('ActionID')})")
                return None
            finally:
                self._note_dropped(inbox, dropped)

        return poll

    def _list_poll(
        self, inbox: PacketInbox, action_id: str, items: list[dict[str, str]]
    ) -> Callable[[bool], Packet | None]:
        def poll(final: bool) -> Packet | None:
            while (packet := inbox.next_packet()) is not None:
                if packet.kind == "event" and _same_id(packet, action_id):
                    if (packet.get("EventList") or "").strip().lower() == "complete":
                        return packet
                    items.append(as_item(packet))
                elif packet.kind == "event":
                    self._keep(inbox, packet)
                elif packet.kind == "response":
                    inbox.strays += 1
            return None

        return poll

    def _keep(self, inbox: PacketInbox, packet: Packet) -> None:
        before = inbox.dropped
        inbox.keep_event(packet)
        self._note_dropped(inbox, before)

    def _note_dropped(self, inbox: PacketInbox, before: int) -> None:
        """A note for the 1st, 101st, 201st… event dropped since ``before``, as they happened."""
        for count in range(before + 1 + (-before % 100), inbox.dropped + 1, 100):
            self._note(f"event backlog full ({inbox.backlog_size}): {count} oldest events dropped so far")

    def _set_results(self, packet: Packet) -> None:
        self._assign("response", packet.get("Response") or "")
        self._assign("message", packet.get("Message") or "")
        self._assign("output", "\n".join(packet.get_all("Output")))

    def _require_success(self, packet: Packet) -> None:
        if (packet.get("Response") or "").strip().lower() == "error":
            reason = packet.get("Message") or "Response: Error"
            output = "\n".join(packet.get_all("Output"))
            raise _StepFailed(f"{reason}: {output}" if output else reason, packet)

    def _check_headers(
        self, matches: Sequence[HeaderMatch], packet: Packet | dict[str, str], budget: Budget
    ) -> dict[str, str]:
        captures: dict[str, str] = {}
        for match in matches:
            check = self._check(match)
            found = check.match(packet, budget)
            if found is None:
                actual = header_text(packet, match.header)
                seen = "missing" if actual is None else repr(self.mask(actual))  # mask before repr escapes
                raise _StepFailed(
                    f"{match.header} is {seen}, expected {check.describe}",
                    packet if isinstance(packet, Packet) else None,
                )
            captures.update(found)
        return captures

    def _check(self, match: HeaderMatch) -> Check:
        if match.kind is PatternKind.TEXT:
            text = self._render(match.source)
            return Check(match.header, regex.compile(rf"\A{regex.escape(text)}\Z"), repr(text), match.location)
        source = match.source.render(self.values, escape=lambda ref, value: regex.escape(value), environ=self._environ)
        try:
            return Check(match.header, regex.compile(source), f"to match /{source}/", match.location)
        except regex.error as exc:
            raise ScriptError(f"invalid regex after substitution: {exc}", match.location) from None

    def _check_items(self, spec: ItemsCheck, items: list[dict[str, str]], budget: Budget) -> None:
        count = len(items)
        if spec.count is not None and count != spec.count:
            raise _StepFailed(f"the list has {count} items, expected {spec.count}")
        if spec.min is not None and count < spec.min:
            raise _StepFailed(f"the list has {count} items, expected at least {spec.min}")
        if spec.max is not None and count > spec.max:
            raise _StepFailed(f"the list has {count} items, expected at most {spec.max}")
        if spec.every:
            checks = tuple(self._check(match) for match in spec.every)
            for number, item in enumerate(items, 1):
                if match_all(checks, item, budget) is None:
                    raise _StepFailed(f"item {number} of {count} does not match `every`: {_short(item)}")
        if spec.any:
            checks = tuple(self._check(match) for match in spec.any)
            if not any(match_all(checks, item, budget) is not None for item in items):
                raise _StepFailed(f"none of the {count} items matches `any`")

    def _step_failed(self, what: str, failure: _StepFailed, on_error: tuple[Step, ...] | None, where: Location) -> None:
        self._assign("error", failure.reason)
        if on_error is None:
            error = RunFailed(f"{what} failed: {failure.reason}", where)
            if failure.answer is not None:
                error.details = [
                    "  the answer was:",
                    *(f"    {name}: {value}" for name, value in failure.answer.headers[:20]),
                ]
            raise error
        self._note(f"{where}: {what} failed: {failure.reason}; running on_error")
        self._run_steps(on_error)

    def _wait_failed(self, outcome: Outcome, waited_for: str, timeout: float, where: Location) -> None:
        seen = self._received_lately()
        if outcome is Outcome.EOF:
            error = self.session.broken or RunFailed(
                f"connection closed by the peer{self._mid_packet()} while waiting for {waited_for}; {seen}", where
            )
            self._on_broken(error, None, where)
        else:
            self._on_timeout(None, f"timeout after {timeout:g} s waiting for {waited_for}; {seen}", where)

    def _received_lately(self) -> str:
        inbox = self.session.packets()
        recent = list(inbox.recent)
        seen = "last received: " + "; ".join(self.mask(item) for item in recent) if recent else "nothing was received"
        greeting = inbox.banner
        if greeting is not None and not greeting.startswith("Asterisk Call Manager/"):
            # mask a window longer by the longest secret, then cut: a secret across the cut is masked whole
            shown = one_line(self.mask(greeting[-(80 + self.mask.longest) :]), 80)
            seen = (
                f"the peer greeted with {shown}, not the AMI's `Asterisk Call Manager/…` "
                f"(is this the AMI port?); {seen}"
            )
        if inbox.long_lines:  # dropped by the codec: say so, or the wait looks like silence
            many = inbox.long_lines > 1
            seen += f"; {inbox.long_lines if many else 'a'} line{'s' if many else ''} over the line limit"
            seen += f" ({CLIENT_MAX_LINE >> 20} MiB) {'were' if many else 'was'} dropped"
        return seen

    def _mid_packet(self) -> str:
        return " in the middle of a packet" if self.session.packets().truncated else ""

    # -- wait_event ------------------------------------------------------------------------

    def _wait_event(self, step: WaitEvent) -> None:
        checks = tuple(self._check(match) for match in step.matches)
        timeout = step.timeout if step.timeout is not None else self._timeout
        budget = Budget.of(timeout, self._clock)
        wanted = [f"{match.header}={match.source.raw}" for match in step.matches]
        inbox = self.session.packets()
        if inbox.dropped:
            self._note(
                f"{step.location}: {inbox.dropped} events fell out of the backlog (size {inbox.backlog_size})"
                " before this wait and were not searched"
            )
        matched: list[tuple[Packet, dict[str, str]]] = []

        def consider(packet: Packet) -> bool:
            if packet.kind != "event":
                return False
            captures = match_all(checks, packet, budget)
            if captures is None:
                return False
            matched.append((packet, captures))
            return True

        while len(matched) < step.count and inbox.take_from_backlog(consider) is not None:
            pass

        def poll(final: bool) -> bool | None:
            while len(matched) < step.count and (packet := inbox.next_packet()) is not None:
                if not consider(packet):
                    if packet.kind == "event":
                        self._keep(inbox, packet)
                    elif packet.kind == "response":
                        inbox.strays += 1
            return True if len(matched) >= step.count else None

        transport = self._open_for_wait() if len(matched) < step.count else None
        result, waited = (True, 0.0) if len(matched) >= step.count else self.session.wait(transport, poll, timeout)
        what = f"{step.count} event(s) {' '.join(wanted)}"
        if result is True:
            self._note(f"{step.location}: got {what} after {waited:.3f} s")
            for name, value in matched[-1][1].items():
                self._assign(name, value)
            if step.list_var is not None:
                self._assign(step.list_var, [as_item(packet) for packet, _ in matched])
            return
        got = f"got {len(matched)} of {step.count}; {self._received_lately()}"
        inbox.put_back([packet for packet, _ in matched])  # a later wait may still use them
        if result is Outcome.EOF:
            error = self.session.broken or RunFailed(
                f"connection closed by the peer{self._mid_packet()} while waiting for {what} ({got})", step.location
            )
            self._on_broken(error, None, step.location)
        else:
            self._on_timeout(step.on_timeout, f"timeout after {timeout:g} s waiting for {what} ({got})", step.location)


def _same_id(packet: Packet, action_id: str) -> bool:
    """Asterisk echoes the ActionID as sent; blanks around it are not worth a hang."""
    return (packet.get("ActionID") or "").strip() == action_id.strip()


def _short(item: dict[str, str]) -> str:
    text = ", ".join(f"{key}: {value}" for key, value in list(item.items())[:4])
    return text if len(item) <= 4 else text + ", …"
