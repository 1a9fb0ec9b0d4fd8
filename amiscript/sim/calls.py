"""Calls placed by Originate: a Local channel pair running the built-in dialplan.

A real Asterisk runs each half of a Local channel (``;1`` is the channel Originate dials,
``;2`` runs the dialled extension) in its own thread. The simulator plays both out on one
virtual clock, in the order the reference captures show (originate-local-async,
originate-sync, originate-bad-exten), and compresses time so that a Wait(1) takes
milliseconds: scripts see the events in Asterisk's order, promptly.

Where two threads raced in Asterisk the simulator picks one order, that of
originate-local-async: the ``OriginateResponse`` right after the far end answers, and on
hangup the ending side's ``Hangup`` before the other side's ``SoftHangupRequest``.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from amiscript.sim import dialplan, perms
from amiscript.sim.dialplan import Step
from amiscript.sim.hub import Hub
from amiscript.sim.messages import AmiEvent, Headers, render

# One virtual second lasts this many real seconds: Wait(1) takes 5 ms.
TIME_SCALE = 0.005
# Device state is computed on its own thread; its events trail the change that caused them.
DEVICE_STATE_LAG = 0.001

DOWN, RING, UP = 0, 4, 6
_STATE_DESC = {DOWN: "Down", RING: "Ring", UP: "Up"}
_UNKNOWN = "<unknown>"
NORMAL_CLEARING = 16
# ast_cause2str for the causes a simulated call can end with.
_CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
}
REASON_FAILED = 0  # OriginateResponse Reason: the dial did not even ring
REASON_ANSWERED = 4  # AST_CONTROL_ANSWER


@dataclass(frozen=True, slots=True)
class Originate:
    """An Originate that passed the action's checks, its headers read as Asterisk reads them."""

    channel: str  # as given, e.g. "Local/200@default"
    context: str
    exten: str
    priority: int
    app: str
    app_data: str
    cid_num: str | None
    cid_name: str | None
    variables: tuple[tuple[str, str], ...]
    action_id: str
    sync: bool

    @property
    def tech(self) -> str:
        return self.channel.partition("/")[0]

    @property
    def data(self) -> str:
        return self.channel.partition("/")[2]


def parse_callerid(text: str) -> tuple[str | None, str | None]:
    """ast_callerid_parse then ast_shrink_phone_number: ``"AMI Test <5551234>"`` is (number, name)."""
    text = text.strip()
    if not text:
        return None, None
    match = re.fullmatch(r"(.*?)\s*<([^>]*)>.*", text)
    if match:
        name, number = match[1].strip().strip('"'), match[2]
    elif _is_phone_number(_shrink(text)):
        name, number = "", text
    else:
        name, number = text.strip('"'), ""
    number = _shrink(number)
    return number or None, name or None


def _shrink(number: str) -> str:
    return re.sub(r"[\s().-]", "", number)


def _is_phone_number(text: str) -> bool:
    return bool(text) and re.fullmatch(r"[0-9+*#]+", text) is not None


def parse_variables(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """astman_get_variables: every ``Variable:`` header, each a comma-separated list of name=value."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        for item in value.split(","):
            name, equals, setting = item.partition("=")
            if equals and name:
                pairs.append((name, setting))
    return tuple(pairs)


@dataclass(eq=False, slots=True)
class Channel:
    """What a channel snapshot shows: the block of headers every channel event starts with."""

    name: str
    uniqueid: str
    linkedid: str
    state: int
    context: str
    exten: str
    priority: int = 1
    caller: tuple[str | None, str | None] = (None, None)  # (number, name)
    connected: tuple[str | None, str | None] = (None, None)
    alive: bool = True

    def snapshot(self, prefix: str = "") -> Headers:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", _STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.caller[0] or _UNKNOWN),
            (f"{prefix}CallerIDName", self.caller[1] or _UNKNOWN),
            (f"{prefix}ConnectedLineNum", self.connected[0] or _UNKNOWN),
            (f"{prefix}ConnectedLineName", self.connected[1] or _UNKNOWN),
            (f"{prefix}Language", "en"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


@dataclass(slots=True)
class VirtualClock:
    """Runs a call's steps in virtual-time order; only the waits between instants are real.

    Everything due at one instant runs in one go, in the order it was scheduled, so real
    timer jitter can never reorder events.
    """

    hub: Hub
    now: float = 0.0
    _queue: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _armed: bool = False
    _running: bool = False

    def at(self, delay: float, step: Callable[[], None]) -> None:
        """Run ``step`` ``delay`` virtual seconds from now."""
        heapq.heappush(self._queue, (self.now + delay, next(self._counter), step))
        if not self._running:
            self._arm()

    def _arm(self) -> None:
        if self._armed or not self._queue:
            return
        self._armed = True
        self.hub.call_later((self._queue[0][0] - self.now) * TIME_SCALE, self._tick)

    def _tick(self) -> None:
        self._armed = False
        self._running = True
        try:
            instant = self._queue[0][0]
            while self._queue and self._queue[0][0] <= instant:
                self.now, _, step = heapq.heappop(self._queue)
                step()
        finally:
            self._running = False
        self._arm()


class Call:
    """One Originate from dial to hangup; its events go to every session through the hub.

    ``on_result`` is set for a synchronous Originate: it is called once, True when the
    dialled channel answers and False when the call fails, where an asynchronous Originate
    raises its ``OriginateResponse`` event instead.
    """

    def __init__(self, hub: Hub, request: Originate, on_result: Callable[[bool], None] | None = None) -> None:
        self.hub = hub
        self.request = request
        self.on_result = on_result
        self.clock = VirtualClock(hub)
        self.answered = False
        self.device = ""
        self.optimize = True
        self.one: Channel | None = None
        self.two: Channel | None = None

    def start(self) -> None:
        self.clock.at(0, self._dial)

    # -- the call's course ----------------------------------------------------------------

    def _dial(self) -> None:
        request = self.request
        if request.tech.lower() != "local":
            self._result(None)  # no other technology has endpoints here: the request fails
            return
        dest, _, options = request.data.partition("/")
        exten, _, context = dest.partition("@")
        context = context or "default"
        self.device = f"Local/{exten}@{context}"
        self.optimize = "n" not in options
        name = f"{self.device}-{self.hub.new_local_pair()}"
        first = self.hub.new_uniqueid()
        one = self.one = Channel(f"{name};1", first, first, DOWN, context, exten)
        two = self.two = Channel(f"{name};2", self.hub.new_uniqueid(), first, RING, context, exten)
        self._event("Newchannel", perms.CALL, one.snapshot())
        self._event("Newchannel", perms.CALL, two.snapshot())
        self._newexten(one, Step("AppDial2", "(Outgoing Line)"))
        for variable, value in request.variables:
            self._event("VarSet", perms.DIALPLAN, [*one.snapshot(), ("Variable", variable), ("Value", value)])
        caller = (request.cid_num, request.cid_name)
        if caller != (None, None):
            one.caller = caller
            self._new_callerid(one)
            one.connected = caller
            self._event("NewConnectedLine", perms.CALL, one.snapshot())
        if not dialplan.exists(context, exten, 1):
            # local_call finds no such extension: both halves go at once, nothing rang.
            self._hangup_event(two, 0)
            self._hangup_event(one, 0)
            self._result(None)
            self.clock.at(DEVICE_STATE_LAG, lambda: self._device_state("INVALID"))
            return
        if caller != (None, None):
            two.caller = two.connected = caller
            self._new_callerid(two)
            self._event("NewConnectedLine", perms.CALL, two.snapshot())
        self._event(
            "LocalBridge",
            perms.CALL,
            [
                *one.snapshot("LocalOne"),
                *two.snapshot("LocalTwo"),
                ("Context", context),
                ("Exten", exten),
                ("LocalOptimization", "Yes" if self.optimize else "No"),
            ],
        )
        self._event("DialBegin", perms.CALL, [*one.snapshot("Dest"), ("DialString", request.data)])
        self._run(two, dialplan.steps(context, exten) or (), 0, numbered=True)

    def _answered(self) -> None:
        """The far end answered, so the dialled channel is up and goes where Originate sends it."""
        one = self.one
        assert one is not None
        self.answered = True
        self._result(one)
        one.state = UP
        self._event("Newstate", perms.CALL, one.snapshot())
        self._event("DialEnd", perms.CALL, [*one.snapshot("Dest"), ("DialStatus", "ANSWER")])
        request = self.request
        if request.app:
            self._run(one, (Step(request.app, request.app_data),), 0, numbered=False)
        else:
            one.context, one.exten = request.context, request.exten
            found = dialplan.steps(request.context, request.exten)
            if found is None or not 1 <= request.priority <= len(found):
                self._hang_up(one, soft=False, cause=NORMAL_CLEARING)
            else:
                self._run(one, found, request.priority - 1, numbered=True)
        self.clock.at(DEVICE_STATE_LAG, lambda: self._device_state("INUSE"))

    def _run(self, chan: Channel, steps: tuple[Step, ...], index: int, *, numbered: bool) -> None:
        """Execute ``chan``'s priorities from ``index`` until one takes time or the channel ends."""
        while chan.alive:
            if index >= len(steps):
                self._hang_up(chan, soft=False, cause=NORMAL_CLEARING)  # ran off the end
                return
            step = steps[index]
            if numbered:
                chan.priority = index + 1
            self._newexten(chan, step)
            app = step.app.lower()
            duration = 0.0
            if app == "answer":
                if chan.state != UP:
                    self._answer(chan)
                    duration = dialplan.ANSWER_MEDIA_WAIT
            elif app == "wait":
                duration = _seconds(step.data)
            elif app == "userevent":
                self._user_event(chan, step.data)
            elif app == "hangup":
                self._hang_up(chan, soft=True, cause=_cause(step.data))
                return
            # Other applications (NoOp, ...) do nothing visible and return at once.
            index += 1
            if duration > 0:
                self.clock.at(duration, functools.partial(self._run, chan, steps, index, numbered=numbered))
                return

    def _answer(self, chan: Channel) -> None:
        chan.state = UP
        self._event("Newstate", perms.CALL, chan.snapshot())
        if chan is self.two and not self.answered:
            self._answered()

    def _hang_up(self, chan: Channel, *, soft: bool, cause: int) -> None:
        """``chan`` ends; the Local channel takes its other half down with the same cause."""
        other = self.two if chan is self.one else self.one
        assert other is not None
        if soft:
            self._event("SoftHangupRequest", perms.CALL, [*chan.snapshot(), ("Cause", str(cause))])
        if other.alive:
            self._event("HangupRequest", perms.CALL, [*other.snapshot(), ("Cause", str(cause))])
        self._hangup_event(chan, cause)
        if other.alive:
            self._event("SoftHangupRequest", perms.CALL, [*other.snapshot(), ("Cause", str(cause))])
            self._hangup_event(other, cause)
        if not self.answered:
            self._result(None)
        self.clock.at(DEVICE_STATE_LAG, lambda: self._device_state("NOT_INUSE"))

    def _result(self, answered: Channel | None) -> None:
        """Tell the originator how the dial went: the sync caller, or an OriginateResponse event."""
        if self.on_result is not None:
            report, self.on_result = self.on_result, None
            report(answered is not None)
            return
        request = self.request
        if request.sync:
            return
        headers: Headers = [("ActionID", request.action_id)] if request.action_id else []
        headers += [
            ("Response", "Failure" if answered is None else "Success"),
            ("Channel", request.channel if answered is None else answered.name),
            ("Context", request.context),
            ("Exten", request.exten),
            ("Reason", str(REASON_FAILED if answered is None else REASON_ANSWERED)),
            ("Uniqueid", _UNKNOWN if answered is None else answered.uniqueid),
            ("CallerIDNum", request.cid_num or _UNKNOWN),
            ("CallerIDName", request.cid_name or _UNKNOWN),
        ]
        self._event("OriginateResponse", perms.CALL, headers)

    # -- events ---------------------------------------------------------------------------

    def _event(self, name: str, category: int, headers: Headers) -> None:
        self.hub.publish(AmiEvent.build(name, category, headers))

    def _newexten(self, chan: Channel, step: Step) -> None:
        headers = [*chan.snapshot(), ("Extension", chan.exten), ("Application", step.app), ("AppData", step.data)]
        self._event("Newexten", perms.DIALPLAN, headers)

    def _new_callerid(self, chan: Channel) -> None:
        self._event(
            "NewCallerid", perms.CALL, [*chan.snapshot(), ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
        )

    def _hangup_event(self, chan: Channel, cause: int) -> None:
        chan.alive = False
        headers = [*chan.snapshot(), ("Cause", str(cause)), ("Cause-txt", _CAUSE_TEXT.get(cause, "Unknown"))]
        self._event("Hangup", perms.CALL, headers)

    def _user_event(self, chan: Channel, data: str) -> None:
        """app_userevent: the first argument names the event, the others are body lines as written."""
        name, *body = data.split(",")
        headers = [("Event", "UserEvent"), ("Privilege", perms.privilege_text(perms.USER))]
        headers += [*chan.snapshot(), ("UserEvent", name)]
        lines = "".join(f"{line}\r\n" for line in body).encode("utf-8", "surrogateescape")
        self.hub.publish(AmiEvent(perms.USER, render(headers)[:-2] + lines + b"\r\n"))

    def _device_state(self, state: str) -> None:
        # One change per half of the Local pair, both naming the same device.
        for _ in range(2):
            self._event("DeviceStateChange", perms.CALL, [("Device", self.device), ("State", state)])


def _seconds(text: str) -> float:
    try:
        value = float(text.strip() or "0")
    except ValueError:
        return 0.0
    return value if value > 0 else 0.0


def _cause(text: str) -> int:
    """Hangup()'s argument: a cause number; none (or one we cannot read) is Normal Clearing."""
    text = text.strip()
    return int(text) if text.isdigit() and int(text) > 0 else NORMAL_CLEARING
