"""--json: a versioned result document, valid against its schema, masked, for one run or many."""

from __future__ import annotations

import contextlib
import errno
import json
import re
import select
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from amiscript.report.json_report import RESULT_SCHEMA

from .helpers import AMISCRIPT
from .peers import free_port, tcp_peer
from .published_schema import published_junit_xsd
from .test_signals import AmiPeer, interrupt, running

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


class JunitSchemas:
    """Jenkins xunit's published junit-10.xsd, and the stricter in-house one (integer counts, decimal times)."""

    def __init__(self) -> None:
        self.schemas = [
            xmlschema.XMLSchema(str(published_junit_xsd())),
            xmlschema.XMLSchema(str(ROOT / "tests" / "fixtures" / "junit.xsd")),
        ]

    def validate(self, path: str) -> None:
        for schema in self.schemas:
            schema.validate(path)


@pytest.fixture(scope="module")
def junit_schema() -> JunitSchemas:
    return JunitSchemas()


def test_junit_is_valid_and_reports_a_failure_with_its_message_location_and_output(
    tmp_path: Path, junit_schema: JunitSchemas
) -> None:
    out = tmp_path / "junit.xml"
    result = run("run", VMCOUNT, "--simulate", "--var", "mailbox=1", "--var", "secret=hunter2", "--junit", str(out))
    assert result.returncode == 1
    junit_schema.validate(str(out))
    suite = ElementTree.parse(out).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "1", "0")
    case = suite.find("testcase")
    assert case is not None and case.get("classname") == "amiscript.vmcount"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "Login failed."
    assert (failure.text or "").startswith(f"{VMCOUNT}:50:13")
    assert case.findtext("system-out") == result.stdout
    assert "hunter2" not in out.read_text()


def test_junit_for_many_targets_counts_failures_and_errors(tmp_path: Path, junit_schema: JunitSchemas) -> None:
    out = tmp_path / "junit.xml"
    login = str(ROOT / "scripts" / "checks" / "ami-login.yaml")
    down = f"tcp://127.0.0.1:{free_port()}"
    result = run("run", login, "--simulate", "--target", "tcp://", "--target", "telnet://", "--junit", str(out))
    assert result.returncode == 0, result.stderr
    junit_schema.validate(str(out))
    mixed = tmp_path / "mixed.xml"
    result = run("run", login, VMCOUNT, "--target", down, "--var", "mailbox=1", "--junit", str(mixed))
    assert result.returncode == 3
    junit_schema.validate(str(mixed))
    suite = ElementTree.parse(mixed).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("errors")) == ("2", "1")
    names = [(case.get("classname"), case.get("name")) for case in suite.iter("testcase")]
    assert names == [("amiscript.ami-login", down), ("amiscript.vmcount", down)]


def test_transcript_has_every_byte_each_way_with_monotonic_times_and_secrets_masked(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    result = run(
        "run",
        VMCOUNT,
        "--simulate",
        "--var",
        "mailbox=124@default",
        "--var",
        "secret=secret5",
        "--transcript",
        str(out),
    )
    assert result.returncode == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    times = [record["t"] for record in records]
    assert times == sorted(times)
    sent = "".join(record["text"] for record in records if record["dir"] == "sent")
    assert sent == (
        "Action: Login\r\nUsername: admin\r\nSecret: ****\r\n\r\n"
        "Action: MailboxCount\r\nMailbox: 124@default\r\n\r\nAction: Logoff\r\n\r\n"
    )
    received = "".join(record["text"] for record in records if record["dir"] == "received")
    assert received.startswith("Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n")
    assert "NewMessages: 2\r\nOldMessages: 1\r\n\r\n" in received
    assert records[-1]["dir"] == "end"
    assert "secret5" not in out.read_text()


# -- an interrupted run still reports ---------------------------------------------------------

WAIT_FOREVER = (
    "connect: {}\nsteps:\n  - login: {username: admin, secret: s3cret}\n  - action: {Action: Ping}\n"
    "  - print: logged in\n  - wait_event: {Event: Never}\n    timeout: 60\n"
)


@pytest.mark.parametrize(
    ("signum", "code", "result"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_an_interrupted_run_replaces_the_previous_reports_with_valid_ones_that_say_so(
    tmp_path: Path, junit_schema: JunitSchemas, signum: int, code: int, result: str
) -> None:
    script = tmp_path / "wait.yaml"
    script.write_text(WAIT_FOREVER)
    files = {"--json": tmp_path / "r.json", "--junit": tmp_path / "j.xml", "--transcript": tmp_path / "t.jsonl"}
    previous = {  # what CI would read if they stayed: reports of an earlier run
        "--json": '{\n  "format": "amiscript-result",\n  "version": 1,\n  "runs": []\n}\n',
        "--junit": "<?xml version='1.0' encoding='utf-8'?>\n<testsuites name=\"previous\" />\n",
        "--transcript": '{"t": 0.0, "dir": "end"}\n',
    }
    for option, path in files.items():
        path.write_text(previous[option])
    options = [str(part) for pair in files.items() for part in pair]
    peer = AmiPeer()
    with (
        tcp_peer(peer) as (host, port),
        running("run", str(script), "--target", f"tcp://{host}:{port}", *options) as process,
    ):
        peer.wait(peer.past_login)
        status, stderr = interrupt(process, signum)
    assert (status, stderr.splitlines()) == (code, [f"amiscript: {result}"])
    (entry,) = report(files["--json"])["runs"]
    assert (entry["result"], entry["exit_code"]) == (result, code)
    assert [step["status"] for step in entry["steps"]] == ["passed", "passed", "passed", "running"]
    assert entry["stdout"] == "logged in\n"
    junit_schema.validate(str(files["--junit"]))
    case = ElementTree.parse(files["--junit"]).getroot().find("testsuite/testcase")
    assert case is not None and case.find("error").get("type") == result  # type: ignore[union-attr]
    records = [json.loads(line) for line in files["--transcript"].read_text().splitlines()]
    assert records[-1]["dir"] == "end"
    assert any(r["dir"] == "sent" and r["text"].startswith("Action: Logoff") for r in records)


def test_an_interrupted_parallel_run_reports_every_run_those_not_started_too(
    tmp_path: Path, junit_schema: JunitSchemas
) -> None:
    script = tmp_path / "wait.yaml"
    script.write_text(WAIT_FOREVER)
    out, junit = tmp_path / "r.json", tmp_path / "j.xml"
    peer = AmiPeer()
    with tcp_peer(peer) as (host, port):
        url = f"tcp://{host}:{port}"
        argv = [
            "run",
            str(script),
            "--target",
            url,
            "--target",
            url,
            "--jobs",
            "1",
            "--json",
            str(out),
            "--junit",
            str(junit),
        ]
        with running(*argv) as process:
            peer.wait(peer.past_login)
            status, _ = interrupt(process, signal.SIGINT)
    assert status == 130
    runs = report(out)["runs"]
    assert [(run["result"], run["exit_code"]) for run in runs] == [("interrupted", 130)] * 2
    assert [len(run["steps"]) for run in runs] == [4, 0]  # cut short in its wait; never started
    assert [run["stdout"] for run in runs] == ["logged in\n", ""]
    junit_schema.validate(str(junit))
    assert ElementTree.parse(junit).getroot().get("errors") == "2"


def test_a_report_path_that_would_destroy_a_file_or_fail_late_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """`--json checks/*.yaml`: the shell makes the first script the report file. Every report path
    is checked first; an existing file is overwritten only if it is one of our reports."""
    scripts = tmp_path / "checks"
    scripts.mkdir()
    for name in ("a.yaml", "b.yaml"):
        (scripts / name).write_text(Path(VMCOUNT).read_text())
    original = (scripts / "a.yaml").read_text()
    a, b = str(scripts / "a.yaml"), str(scripts / "b.yaml")
    mailbox = ("--simulate", "--var", "mailbox=124@default")
    cases = [
        (("--json", a, b), f"--json {a} exists and is not an amiscript report: it was left as it is"),
        ((a, "--transcript", a), f"--transcript {a} is {a}, which this run reads"),
        ((a, "--junit", str(tmp_path / "no" / "r.xml")), f"the folder {tmp_path / 'no'} does not exist"),
        ((a, "--json", "-"), "--json needs a file name"),
        ((a, "--json", str(tmp_path / "r"), "--junit", str(tmp_path / "r")), "is also the file of --json"),
        ((a, "--junit", str(tmp_path)), "is a folder"),
        ((a, "--json", str(tmp_path / "dangling.json")), "the folder /nonexistent/dir does not exist"),
        ((a, "--junit", str(tmp_path / "loop1")), "Too many levels of symbolic links"),
        ((a, "--json", str(tmp_path / ("r" * 300))), "File name too long"),
    ]
    (tmp_path / "dangling.json").symlink_to("/nonexistent/dir/x.json")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    for args, said in cases:
        result = run("run", *args, *mailbox)
        assert (result.returncode, result.stdout) == (2, ""), args
        assert result.stderr.startswith("amiscript: error: ") and said in result.stderr, result.stderr
    assert (scripts / "a.yaml").read_text() == original
    again = tmp_path / "again.json"
    for _ in range(2):  # a report of ours is overwritten, run after run
        assert run("run", a, *mailbox, "--json", str(again)).returncode == 0
    assert report(again)["runs"][0]["result"] == "ok"


def test_ctrl_c_while_a_parallel_run_is_still_connecting_stops_it_at_once_as_interrupted(tmp_path: Path) -> None:
    """A connect that gets no answer waits its whole timeout (30 s here); a parallel run must not."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    host, port = listener.getsockname()[:2]
    fillers = []
    try:
        while True:  # fill the backlog: further SYNs go unanswered, so connects hang
            filler = socket.socket()
            filler.setblocking(False)
            if filler.connect_ex((host, port)) not in (0, errno.EINPROGRESS) or len(fillers) > 64:
                filler.close()
                break
            fillers.append(filler)
            time.sleep(0.02)
            if select.select([], [filler], [], 0.2)[1] == []:
                break  # this one hangs: the backlog is full
        script = tmp_path / "slow.yaml"
        script.write_text(f"connect: {{port: '{port}', timeout: 30}}\nsteps:\n  - expect: Manager\n")
        out = tmp_path / "r.json"
        with running("run", str(script), str(script), "--json", str(out)) as process:
            time.sleep(1.5)  # both are connecting
            status, stderr = interrupt(process, signal.SIGINT)
        assert (status, stderr.splitlines()) == (130, ["amiscript: interrupted"])
        assert [(run["result"], run["exit_code"]) for run in report(out)["runs"]] == [("interrupted", 130)] * 2
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_captured_byte_that_is_not_utf8_is_written_into_both_reports(tmp_path: Path) -> None:
    def answering(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            action_id = re.search(rb"ActionID: (\S+)", conn.recv(4096))
            assert action_id is not None
            conn.sendall(b"Response: Success\r\nActionID: " + action_id.group(1) + b"\r\nMessage: caf\xe9\r\n\r\n")
            time.sleep(1)

    script = tmp_path / "odd.yaml"
    script.write_text(
        "connect: {}\nsteps:\n  - action: {Action: Ping}\n    save: {said: Message}\n  - print: '${said}'\n"
    )
    out, junit = tmp_path / "r.json", tmp_path / "j.xml"
    with tcp_peer(answering) as (host, port):
        result = run("run", str(script), "--target", f"tcp://{host}:{port}", "--json", str(out), "--junit", str(junit))
    assert result.returncode == 0, result.stderr
    (entry,) = report(out)["runs"]
    assert entry["result"] == "ok" and entry["steps"][0]["captures"]["said"] == "caf\udce9"
    ElementTree.parse(junit)  # written, and well-formed
