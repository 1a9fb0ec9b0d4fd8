"""--json: a versioned result document, valid against its schema, masked, for one run or many."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema

from amiscript.report.json_report import RESULT_SCHEMA

from .helpers import AMISCRIPT
from .peers import free_port

ROOT = Path(__file__).resolve().parents[1]
VMCOUNT = str(ROOT / "scripts" / "vmcount.yaml")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMISCRIPT, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def report(path: Path) -> dict:  # type: ignore[type-arg]
    document = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(RESULT_SCHEMA).validate(document)
    return document


def test_a_passing_run_reports_each_step_its_status_time_and_captures(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run("run", VMCOUNT, "--simulate", "--var", "mailbox=124@default", "--json", str(out))
    assert result.returncode == 0
    document = report(out)
    assert (document["format"], document["version"]) == ("amiscript-result", 1)
    (entry,) = document["runs"]
    assert (entry["script"], entry["result"], entry["exit_code"], entry["error"]) == (VMCOUNT, "ok", 0, None)
    assert entry["stdout"] == result.stdout
    assert [step["status"] for step in entry["steps"]] == ["passed"] * len(entry["steps"])
    captures = {name: value for step in entry["steps"] for name, value in step["captures"].items()}
    assert captures == {"new": "2", "old": "1"}
    first = entry["steps"][0]
    assert (first["location"], first["step"], first["depth"]) == (f"{VMCOUNT}:38:5", "print", 0)
    assert "secret5" not in out.read_text()


def test_a_failing_run_reports_the_error_its_location_and_the_failed_step(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run("run", VMCOUNT, "--simulate", "--var", "mailbox=1", "--var", "secret=wrong", "--json", str(out))
    assert result.returncode == 1
    (entry,) = report(out)["runs"]
    assert (entry["result"], entry["exit_code"]) == ("failed", 1)
    assert entry["stdout"].endswith("Login failed.\n")
    failed = [step for step in entry["steps"] if step["status"] == "failed"]
    assert [(step["step"], step["location"]) for step in failed] == [("fail", f"{VMCOUNT}:50:13")]
    assert "wrong" not in out.read_text()  # the secret given on the command line is masked too

    unreachable = tmp_path / "u.json"
    refused = run("run", str(ROOT / "scripts/checks/ami-login.yaml"), "--target", f"tcp://127.0.0.1:{free_port()}",
                  "--json", str(unreachable))  # fmt: skip
    assert refused.returncode == 3
    (entry,) = report(unreachable)["runs"]
    assert entry["result"] == "unreachable"
    assert "connection refused" in entry["error"]["message"]
    assert entry["error"]["location"] == f"{ROOT}/scripts/checks/ami-login.yaml:18:5"  # the step that connects


def test_many_runs_each_get_an_entry(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run(
        "run", VMCOUNT, "--var", "mailbox=124@default", "--simulate", "--target", "tcp://", "--target", "telnet://",
        "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = report(out)["runs"]
    assert [(entry["target"], entry["result"]) for entry in runs] == [("tcp://", "ok"), ("telnet://", "ok")]
    assert all(entry["stdout"].endswith("Old messages: 1\n") for entry in runs)
