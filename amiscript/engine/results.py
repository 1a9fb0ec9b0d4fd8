"""What a run did, step by step, for reports: status, time, and what each step captured.

Everything here is already masked: a report never sees a secret.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class StepRecord:
    location: str
    step: str  # the step's kind: expect, action, …
    depth: int  # 0 for the script's own steps, 1 inside a then/handler/loop, …
    status: str = "running"  # passed, failed, stopped (fail/exit), running (never finished)
    seconds: float = 0.0
    captures: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
