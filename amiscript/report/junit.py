"""`--junit FILE`: JUnit XML for CI servers (Jenkins, GitLab, GitHub Actions reporters, …).

One <testcase> per script and target: the script's name as the classname, the target as the
name, its time, a <failure> (the check failed: exit 1) or <error> (it could not run: exit 2 or
3) with the message and the failing step's location, and its stdout/stderr. No ``file`` attribute:
the published schema (Jenkins xunit's junit-10.xsd, the one pytest's xunit2 family follows) has
none on <testcase>; the script's path starts the failure text instead. Everything in it was masked
before it got here.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from amiscript.report.json_report import RunEntry


def junit_xml(runs: list[RunEntry], started: float) -> bytes:
    failures = sum(1 for run in runs if run.exit_code == 1)
    errors = sum(1 for run in runs if run.exit_code not in (0, 1))
    total = f"{sum(run.seconds for run in runs):.3f}"
    counts = {"tests": str(len(runs)), "failures": str(failures), "errors": str(errors), "time": total}
    root = ElementTree.Element("testsuites", {"name": "amiscript", **counts})
    suite = ElementTree.SubElement(
        root,
        "testsuite",
        {
            "name": "amiscript",
            **counts,
            "skipped": "0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
            "hostname": socket.gethostname() or "localhost",
        },
    )
    for run in runs:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            {"classname": f"amiscript.{Path(run.script).stem}", "name": run.target, "time": f"{run.seconds:.3f}"},
        )
        if run.exit_code != 0:
            kind = "failure" if run.exit_code == 1 else "error"
            printed = [line for line in run.stdout.splitlines() if line.strip()]
            message = run.error["message"] if run.error else (printed[-1] if printed else run.result)
            where = run.error.get("location") if run.error else None
            failed = [step for step in run.steps if step.status == "failed"]
            where = where or (failed[-1].location if failed else None)
            detail = ElementTree.SubElement(case, kind, {"message": _xml_text(message or ""), "type": run.result})
            detail.text = _xml_text("\n".join(part for part in (where, run.stdout.strip(), run.stderr.strip()) if part))
        ElementTree.SubElement(case, "system-out").text = _xml_text(run.stdout)
        ElementTree.SubElement(case, "system-err").text = _xml_text(run.stderr)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def write_junit(path: str, runs: list[RunEntry], started: float) -> None:
    Path(path).write_bytes(junit_xml(runs, started))


def _xml_text(text: str) -> str:
    """XML 1.0 cannot carry most control characters: show them escaped instead."""
    return "".join(
        char
        if char in "\t\n\r" or (" " <= char <= "\ud7ff") or ("\ue000" <= char <= "\ufffd")
        else f"\\x{ord(char):02x}"
        for char in text
    )
