"""--format nagios: the plugin line, perfdata and the exit status for each state and range."""

from __future__ import annotations

import io
import math
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from amiscript.cli import main
from amiscript.report.nagios import CRITICAL, OK, WARNING, metric_status, perfdata, plugin_line
from amiscript.script.ranges import parse_range

from .helpers import AMISCRIPT
from .peers import free_port, tcp_peer

ROOT = Path(__file__).resolve().parents[1]
CHECK = (
    "name: mailbox\nvars:\n  mailbox: {default: 124@default}\n"
    "metrics:\n  new: {label: new_messages, warning: '1', critical: '5'}\n  old: {}\n"
    "connect: {}\nsteps:\n  - login: {username: admin, secret: secret5}\n"
    "  - action: {Action: MailboxCount, Mailbox: '${mailbox}'}\n    save: {new: NewMessages, old: OldMessages}\n"
    "  - print: '${mailbox}: ${new} new | ${old} old'\n"
)


@pytest.mark.parametrize(
    ("text", "start", "end", "inside", "alerting"),
    [
        ("10", 0, 10, False, [-1, 11, 15, 20, 21]),
        ("10:", 10, math.inf, False, [-1, 0, 9]),
        ("~:10", -math.inf, 10, False, [11, 15, 20, 21]),
        ("10:20", 10, 20, False, [-1, 0, 9, 21]),
        ("@10:20", 10, 20, True, [10, 11, 15, 20]),
    ],
)
def test_nagios_ranges_follow_the_plugin_guidelines(
    text: str, start: float, end: float, inside: bool, alerting: list[float]
) -> None:
    parsed = parse_range(text)
    assert (parsed.start, parsed.end, parsed.inside) == (start, end, inside)
    probes = [-1, 0, 9, 10, 11, 15, 20, 21]
    assert [value for value in probes if parsed.alerts(value)] == alerting


@pytest.mark.parametrize("bad", ["", "abc", "20:10", ":", "@"])
def test_invalid_ranges_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_range(bad)


def test_status_perfdata_and_the_plugin_line() -> None:
    warning, critical = parse_range("1"), parse_range("5")
    assert [metric_status(value, warning, critical) for value in (0, 2, 6)] == [OK, WARNING, CRITICAL]
    assert perfdata("new messages", "2", "", warning, critical) == "'new messages'=2;1;5;;"
    assert plugin_line("MAILBOX", WARNING, "a | b\nc", ["x=1;;;;"]) == "MAILBOX WARNING: a / b c | x=1;;;;"
    # a script written for the text format may already start with the status word: it is not repeated
    assert plugin_line("MAILBOX", OK, "OK: all fine", []) == "MAILBOX OK: all fine"
    assert plugin_line("MAILBOX", CRITICAL, "CRITICAL - down", []) == "MAILBOX CRITICAL: down"
    assert plugin_line("MAILBOX", WARNING, "OK: 3 new", []) == "MAILBOX WARNING: OK: 3 new"  # not its own word
    assert plugin_line("MAILBOX", OK, "OKAY: fine", []) == "MAILBOX OK: OKAY: fine"


def test_perfdata_labels_are_quoted_as_the_guidelines_say_and_values_are_plain_numbers(tmp_path: Path) -> None:
    script = tmp_path / "odd.yaml"
    script.write_text(
        "vars: {a: '1', b: '2', c: '3', d: ' 4 ', e: '+1.5e3', f: '0.50'}\n"
        "metrics:\n  a: {label: new messages}\n  b: {label: \"it's=odd\"}\n  c: {label: 'a|b', uom: s}\n"
        "  d: {}\n  e: {label: \"'\"}\n  f: {uom: '%'}\nsteps:\n  - print: hi\n"
    )
    result = run(script)
    perf = "'new messages'=1;;;; 'it''s=odd'=2;;;; 'a|b'=3s;;;; d=4;;;; ''''=1500;;;; f=0.50%;;;;"
    assert (result.returncode, result.stdout) == (0, f"ODD OK: hi | {perf}\n")


@pytest.mark.parametrize("raw", ["nan", "inf", "-Infinity", "1_000", "0x10", "5 5", ""])
def test_a_metric_that_python_but_not_nagios_reads_as_a_number_is_unknown(tmp_path: Path, raw: str) -> None:
    script = tmp_path / "odd.yaml"
    script.write_text(f"vars: {{n: '{raw}'}}\nmetrics: {{n: {{}}}}\nsteps:\n  - print: hi\n")
    result = run(script)
    assert (result.returncode, result.stdout) == (3, f"ODD UNKNOWN: metric 'n' has no numeric value ({raw!r})\n")


@pytest.mark.parametrize(
    ("metric", "column", "words"),
    [
        ("{uom: 's;1|x'}", 12, "uom 's;1|x' is not a unit of the plugin guidelines: use one of"),
        ("{uom: sec}", 12, "use one of '', s, ms, us, %, B, KB, MB, TB, c"),
        ("{label: ''}", 14, "label must not be empty"),
        ('{label: "a\\nb"}', 14, "label must be one line"),
    ],
)
def test_check_refuses_a_unit_or_label_that_would_corrupt_perfdata(
    tmp_path: Path, metric: str, column: int, words: str
) -> None:
    script = tmp_path / "odd.yaml"
    script.write_text(f"vars: {{n: '1'}}\nmetrics:\n  n: {metric}\nsteps:\n  - print: hi\n")
    result = subprocess.run([*AMISCRIPT, "check", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout.startswith(f"{script}:3:{column}: error: ") and words in result.stdout, result.stdout
    nagios = run(script)
    assert nagios.returncode == 3 and nagios.stdout.startswith("ODD UNKNOWN: ")
    assert words.replace("|", "/") in nagios.stdout  # the text keeps "|" for perfdata


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMISCRIPT, "run", str(script), "--format", "nagios", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip


@pytest.mark.parametrize(
    ("mailbox", "code", "line"),
    [
        ("123@default", 0, "MAILBOX OK: 123@default: 0 new / 0 old | new_messages=0;1;5;; old=0;;;;"),
        ("124@default", 1, "MAILBOX WARNING: 124@default: 2 new / 1 old | new_messages=2;1;5;; old=1;;;;"),
    ],
)
def test_metrics_decide_ok_and_warning(tmp_path: Path, mailbox: str, code: int, line: str) -> None:
    script = tmp_path / "mailbox.yaml"
    script.write_text(CHECK)
    result = run(script, "--simulate", "--var", f"mailbox={mailbox}")
    assert (result.returncode, result.stdout) == (code, line + "\n")


def test_critical_from_a_range_from_a_failed_step_and_from_an_unreachable_pbx(tmp_path: Path) -> None:
    script = tmp_path / "mailbox.yaml"
    script.write_text(CHECK.replace("critical: '5'", "critical: '4'"))
    over = run(script, "--simulate", "--var", "mailbox=200@sales")
    assert (over.returncode, over.stdout.split(" | ")[0]) == (2, "MAILBOX CRITICAL: 200@sales: 5 new / 3 old")
    refused = script.with_name("refused.yaml")
    refused.write_text(CHECK.replace("secret: secret5", "secret: wrong"))
    failed = run(refused, "--simulate")
    assert (failed.returncode, failed.stdout.split(": ", 1)[0]) == (2, "MAILBOX CRITICAL")
    assert "Authentication failed" in failed.stdout
    down = run(script, "--target", f"tcp://127.0.0.1:{free_port()}")
    assert down.returncode == 2 and down.stdout.startswith("MAILBOX CRITICAL: ") and "connection refused" in down.stdout


def test_a_broken_script_or_a_metric_without_a_number_is_unknown(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps:\n  - prnt: x\n")
    result = run(broken)
    assert (result.returncode, result.stdout.split(": ")[0]) == (3, "BROKEN UNKNOWN")
    wordy = tmp_path / "wordy.yaml"
    wordy.write_text("metrics: {word: {}}\nsteps:\n  - set: {word: many}\n")
    result = run(wordy)
    assert (result.returncode, result.stdout) == (3, "WORDY UNKNOWN: metric 'word' has no numeric value ('many')\n")


def test_a_command_line_nagios_cannot_run_is_unknown_with_one_plugin_line(tmp_path: Path) -> None:
    script = tmp_path / "mailbox.yaml"
    script.write_text(CHECK)
    for args in (
        ("--json", str(tmp_path / "r.json")),
        ("--target", "tcp://", "--target", "telnet://"),
        ("--dry-run",),
        ("--include-path", str(tmp_path / "missing")),
    ):
        result = run(script, "--simulate", *args)
        assert result.returncode == 3, args
        assert result.stdout.startswith("MAILBOX UNKNOWN: ") and result.stdout.count("\n") == 1, result.stdout
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["mailbox.yaml", "--format", "nagios", "--bogus"], "MAILBOX UNKNOWN: unrecognized arguments: --bogus"),
        (["--format=nagios", "mailbox.yaml", "--timeout", "abc"], "MAILBOX UNKNOWN: run: argument --timeout: invalid"),
        (["--format", "nagios"], "AMISCRIPT UNKNOWN: run: the following arguments are required: SCRIPT"),
        (
            ["--vars-file", "v.yaml", "mailbox.yaml", "--form", "nagios", "--var"],
            "MAILBOX UNKNOWN: run: argument --var:",
        ),
        (["--format", "nagios", "--timeout", "x", "--", "-odd-.yaml"], "-ODD- UNKNOWN: run: argument --timeout"),
    ],
)
def test_a_command_line_that_does_not_parse_is_one_unknown_plugin_line(args: list[str], line: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", *args], out, err)
    assert (code, err.getvalue(), out.getvalue().count("\n")) == (3, "", 1)
    assert out.getvalue().startswith(line), out.getvalue()


def test_a_command_line_that_does_not_parse_without_nagios_stays_a_usage_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "mailbox.yaml", "--format", "nagios", "--format", "text", "--bogus"], out, err)
    assert (code, out.getvalue()) == (2, "")
    assert err.getvalue() == "amiscript: error: unrecognized arguments: --bogus (see `amiscript --help`)\n"


@pytest.mark.parametrize(
    ("signum", "how"), [(signal.SIGTERM, "terminated (SIGTERM)"), (signal.SIGINT, "interrupted (SIGINT)")]
)
def test_a_check_stopped_by_a_signal_still_prints_one_unknown_line(tmp_path: Path, signum: int, how: str) -> None:
    greeted = threading.Event()

    def silent(conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
        greeted.set()
        time.sleep(10)

    script = tmp_path / "waits.yaml"
    script.write_text("steps:\n  - expect: Manager\n  - expect: never\n    timeout: 60\n")
    with tcp_peer(silent) as (host, port):
        check = subprocess.Popen([*AMISCRIPT, "run", str(script), "--format", "nagios", "--target", f"tcp://{host}:{port}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
        try:
            assert greeted.wait(20)
            time.sleep(0.3)  # past the banner, into the wait
            check.send_signal(signum)
            out, err = check.communicate(timeout=10)
        finally:
            check.kill()
    assert (check.returncode, out) == (3, f"WAITS UNKNOWN: check {how} before it finished\n")
    assert err == f"amiscript: {how.split()[0]}\n"


def test_a_sigterm_at_any_moment_leaves_one_plugin_line_whose_status_is_the_exit_status(tmp_path: Path) -> None:
    """Swept over a whole --simulate check: before the check started (the simulator starting), in
    it, and after its line was written. Only a signal before Python set its handlers may kill the
    process outright (-15, nothing printed); never a line with another status, never two."""
    script = tmp_path / "quick.yaml"
    script.write_text("connect: {}\nsteps:\n  - login: {username: admin, secret: secret5}\n  - print: fine\n")
    statuses = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
    outcomes = set()
    for step in range(24):
        check = subprocess.Popen(
            [*AMISCRIPT, "run", str(script), "--format", "nagios", "--simulate"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        time.sleep(0.03 + step * 0.025)
        check.send_signal(signal.SIGTERM)
        out, _ = check.communicate(timeout=30)
        lines = out.splitlines()
        if check.returncode == -signal.SIGTERM:
            assert lines == [], out  # Python was still starting
        else:
            assert len(lines) == 1, out
            assert check.returncode == statuses[lines[0].split(":")[0].split()[1]], (check.returncode, out)
        outcomes.add(check.returncode)
    assert outcomes & {0, 3}, outcomes  # the sweep reached the check itself


def test_a_service_name_with_a_bar_or_a_line_break_cannot_break_the_plugin_line() -> None:
    assert plugin_line("A|B", OK, "hello", []) == "A/B OK: hello"
    assert plugin_line("TWO\nLINES", OK, "hello", ["x=1;;;;"]) == "TWO LINES OK: hello | x=1;;;;"
