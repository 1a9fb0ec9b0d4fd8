"""`--format nagios`: one line and an exit status, by the Nagios plugin guidelines (also read
by Icinga, Naemon, Zabbix agents and Sensu).

    VMCOUNT WARNING: New messages: 12 | new_messages=12;10;20;;

Status: a run that could not even start (a broken script, exit 2) is UNKNOWN; a failed step or
an unreachable PBX is CRITICAL; otherwise the metrics decide, each against its ranges.
"""

from __future__ import annotations

import re

from amiscript.script.ranges import Range

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def metric_status(value: float, warning: Range | None, critical: Range | None) -> int:
    if critical is not None and critical.alerts(value):
        return CRITICAL
    if warning is not None and warning.alerts(value):
        return WARNING
    return OK


def perfdata(label: str, value: str, uom: str, warning: Range | None, critical: Range | None) -> str:
    name = f"'{label}'" if re.search(r"[\s=']", label) else label
    return f"{name}={value}{uom};{warning.text if warning else ''};{critical.text if critical else ''};;"


def plugin_line(service: str, status: int, text: str, perf: list[str]) -> str:
    # The plugin API reserves '|' for perfdata: keep it out of the text.
    clean = " ".join(text.replace("|", "/").split())
    line = f"{service} {STATUS_NAMES[status]}: {clean}"
    return f"{line} | {' '.join(perf)}" if perf else line
