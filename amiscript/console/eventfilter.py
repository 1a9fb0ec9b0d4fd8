"""Which events the console shows: all, none (`/events off`), or those whose headers match
`/filter Header=Value …` (every pair must match; names and values ignore case; a value may
end in `*` to match a prefix)."""

from __future__ import annotations

from dataclasses import dataclass

from amiscript.console.shortform import ShortFormError
from amiscript.protocol import Packet


@dataclass(frozen=True, slots=True)
class EventFilter:
    enabled: bool = True
    pairs: tuple[tuple[str, str], ...] = ()

    def shows(self, event: Packet) -> bool:
        if not self.enabled:
            return False
        return all(_matches(event.get_all(name), value) for name, value in self.pairs)

    def describe(self) -> str:
        if not self.enabled:
            return "events are off (/events on shows them again)"
        if not self.pairs:
            return "showing every event"
        return "showing events with " + " and ".join(f"{name}={value}" for name, value in self.pairs)


def parse_filter(words: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise ShortFormError(f"/filter {word!r}: write Header=Value, such as /filter Event=Hangup")
        pairs.append((name, value))
    return tuple(pairs)


def _matches(values: list[str], wanted: str) -> bool:
    wanted = wanted.lower()
    if wanted.endswith("*"):
        return any(value.lower().startswith(wanted[:-1]) for value in values)
    return any(value.lower() == wanted for value in values)
