"""`--format nagios`: one line and an exit status, by the Nagios plugin guidelines (also read
by Icinga, Naemon, Zabbix agents and Sensu).

    VMCOUNT WARNING: New messages: 12 | new_messages=12;10;20;;

Status: a run that could not even start (a broken script, exit 2) is UNKNOWN; a failed step or
an unreachable PBX is CRITICAL; otherwise the metrics decide, each against its ranges.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from amiscript.script.ranges import Range

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def metric_status(value: float, warning: Range | None, critical: Range | None) -> int:
    if critical is not None and critical.alerts(value):
        return CRITICAL
    if warning is not None and warning.alerts(value):
        return WARNING
    return OK


# What Nagios and its graphers read as a number; float() would also take nan, inf and 1_000.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def perf_number(raw: str) -> str | None:
    """The value as perfdata writes it (the guidelines allow only -, digits and .), or None if it is no number.
    A plain number keeps the digits it came with (0.50 stays 0.50); others are spelt out (+1.5e3 is 1500)."""
    text = raw.strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    if not math.isfinite(value):
        return None  # too large for a float: no grapher reads it either
    return str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")


def perf_label(label: str) -> str:
    """Quoted when a blank, '=', a quote or '|' would end it early, with an inner quote doubled (the guidelines)."""
    return "'" + label.replace("'", "''") + "'" if re.search(r"[\s='|]", label) else label


def perfdata(label: str, value: str, uom: str, warning: Range | None, critical: Range | None) -> str:
    """``value`` as perf_number wrote it; ``uom`` one the loader accepted."""
    return f"{perf_label(label)}={value}{uom};{warning.text if warning else ''};{critical.text if critical else ''};;"


def plugin_line(service: str, status: int, text: str, perf: list[str]) -> str:
    # The plugin API reserves '|' for perfdata: keep it out of the text.
    clean = " ".join(text.replace("|", "/").split())
    # A script written for the text format may start with the same word ("OK: ..."): say it once.
    word = STATUS_NAMES[status]
    clean = re.sub(rf"^{word}(?::| -) (?=\S)", "", clean)
    # The service name too (it comes from the script's `name`): one word run, no '|', one line.
    service = " ".join(service.replace("|", "/").split()) or "AMISCRIPT"
    line = f"{service} {word}: {clean}"
    return f"{line} | {' '.join(perf)}" if perf else line
