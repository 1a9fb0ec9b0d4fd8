"""`--json FILE`: the results of a run as a documented, versioned JSON document.

Format version 1 (docs/reports.md; RESULT_SCHEMA below is its JSON Schema):

    {"format": "amiscript-result", "version": 1, "started": "2026-11-26T08:00:00Z",
     "runs": [{"script": ..., "target": ..., "result": "ok|failed|error|unreachable|…",
               "exit_code": 0, "seconds": 0.05,
               "error": {"message": ..., "location": "file:line:col"} | null,
               "steps": [{"location", "step", "depth", "status", "seconds", "captures"}],
               "stdout": ..., "stderr": ...}]}

Every text in it was masked before it got here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from amiscript.engine.results import StepRecord

RUN_RESULTS = ("ok", "failed", "error", "unreachable", "interrupted", "terminated")

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "amiscript run results, format version 1",
    "type": "object",
    "required": ["format", "version", "started", "runs"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": "amiscript-result"},
        "version": {"const": 1},
        "started": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "script",
                    "target",
                    "result",
                    "exit_code",
                    "seconds",
                    "error",
                    "steps",
                    "stdout",
                    "stderr",
                ],
                "additionalProperties": False,
                "properties": {
                    "script": {"type": "string"},
                    "target": {"type": "string"},
                    "result": {"type": "string"},
                    "exit_code": {"type": "integer"},
                    "seconds": {"type": "number", "minimum": 0},
                    "error": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["message", "location"],
                                "additionalProperties": False,
                                "properties": {"message": {"type": "string"}, "location": {"type": ["string", "null"]}},
                            },
                        ]
                    },
                    "steps": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["location", "step", "depth", "status", "seconds", "captures"],
                            "additionalProperties": False,
                            "properties": {
                                "location": {"type": "string"},
                                "step": {"type": "string"},
                                "depth": {"type": "integer", "minimum": 0},
                                "status": {"enum": ["passed", "failed", "stopped", "running"]},
                                "seconds": {"type": "number", "minimum": 0},
                                "captures": {"type": "object", "additionalProperties": {"type": "string"}},
                            },
                        },
                    },
                    "stdout": {"type": "string"},
                    "stderr": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(slots=True)
class RunEntry:
    script: str
    target: str
    result: str
    exit_code: int
    seconds: float
    error: dict[str, str | None] | None
    steps: list[StepRecord] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "target": self.target,
            "result": self.result,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 6),
            "error": self.error,
            "steps": [record.as_json() for record in self.steps],
            "stdout": self.stdout,
            "stderr": self.stderr,
        }


def write_report(path: str, runs: list[RunEntry], started: float) -> None:
    document = {
        "format": "amiscript-result",
        "version": 1,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "runs": [run.as_json() for run in runs],
    }
    import json  # only --json needs it: kept out of every run's start-up

    # a byte that is not UTF-8 (captured from the peer) is held as a surrogate: written as the
    # JSON escape \udcNN, which any JSON reader reads back, instead of failing half-way
    with open(path, "w", encoding="utf-8", errors="backslashreplace") as handle:
        json.dump(document, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
