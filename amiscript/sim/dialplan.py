"""The simulator's dialplan: a few fixed extensions, enough for Originate to place real-looking calls.

It is the dialplan of the Asterisk that recorded the originate-* captures, as far as the
captured events show it (``Newexten`` names every application and its data)::

    [default]
    exten => 100,1,Answer()
     same => n,Wait(1)
     same => n,Hangup()
    exten => 200,1,Answer()
     same => n,UserEvent(AmiscriptTest,Status: ok)
     same => n,Wait(2)
     same => n,Hangup()

Extension 200 is the far end of ``Local/200@default``; 100 is where the originated channel
goes once answered. The captures never reach 200's last priority (the call ends during its
Wait); the Hangup there is an assumption. Only these applications (plus NoOp) are simulated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    """One priority: an application and its argument string, as ``Newexten`` shows them."""

    app: str
    data: str = ""


DIALPLAN: dict[str, dict[str, tuple[Step, ...]]] = {
    "default": {
        "100": (Step("Answer"), Step("Wait", "1"), Step("Hangup")),
        "200": (Step("Answer"), Step("UserEvent", "AmiscriptTest,Status: ok"), Step("Wait", "2"), Step("Hangup")),
    },
}

# Answer on a channel that was not up waits up to 500 ms for the first media frame; a Local
# channel sends none, so the next priority starts half a second later (see originate-local-async).
ANSWER_MEDIA_WAIT = 0.5


def steps(context: str, exten: str) -> tuple[Step, ...] | None:
    """The priorities of ``exten@context`` (priority 1 first), or None if it does not exist."""
    return DIALPLAN.get(context, {}).get(exten)


def exists(context: str, exten: str, priority: int) -> bool:
    """ast_exists_extension: is there such a priority? Context and extension match exactly."""
    found = steps(context, exten)
    return found is not None and 1 <= priority <= len(found)
