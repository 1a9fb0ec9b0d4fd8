"""Edge cases found in review: each once crashed, hung, leaked a secret or misreported."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from amiscript.engine import Interpreter
from amiscript.errors import ConnectionLost, RunFailed, ScriptError
from amiscript.script import load_script, load_script_text
from amiscript.transports.base import Target
from amiscript.transports.memory import MemoryTransport

from .helpers import AMISCRIPT, FakeClock, Recorder
from .peers import recorder, tcp_peer

ROOT = Path(__file__).resolve().parents[1]
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def interpreter(text: str, transport: MemoryTransport, clock: FakeClock | None = None, **kw: object) -> Interpreter:
    clock = clock or FakeClock()
    return Interpreter(
        load_script_text(text, "t.yaml"),
        lambda t: transport,
        Recorder(),
        clock=clock,
        sleep=clock.sleep,
        environ={},
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "text",
    [
        "steps:\n  - sleep: 1e300\n",
        "timeout: 1e10\nsteps: []\n",
        "connect: {timeout: 1e300}\nsteps: []\n",
        "steps:\n  - exit: '²'\n",
        "match_max: 0.5\nsteps: []\n",
        "match_max: 10\nsteps: []\n",
        "name: [a, b]\nsteps: []\n",
        "vars: {a: '${b}', b: x}\nsteps: []\n",
        "steps:\n  - expect:\n",
        "steps: " + "[" * 3000 + "\n",
    ],
)
def test_out_of_range_or_ill_typed_values_are_script_errors_not_crashes(text: str) -> None:
    with pytest.raises(ScriptError):
        load_script_text(text, "t.yaml")


def test_special_files_are_refused_without_reading_them(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ScriptError, match="not a script file"):
            load_script(path)


def test_superscript_digits_in_a_port_are_a_script_error() -> None:
    with pytest.raises(ScriptError, match="port must be a number"):
        interpreter("vars: {p: '²'}\nconnect: {port: '${p}'}\nsteps:\n  - send: x\n", MemoryTransport()).run()


def test_transport_may_come_from_a_variable_and_is_checked_when_used() -> None:
    script = "vars: {t: tcp}\nconnect: {transport: '${t}'}\nsteps:\n  - send: x\n"
    transport = MemoryTransport()
    assert interpreter(script, transport).run() == 0
    with pytest.raises(ScriptError, match="unknown transport 'udp'"):
        interpreter(script, MemoryTransport(), variables={"t": "udp"}).run()


def test_a_secret_variable_keeps_being_masked_after_set_or_capture() -> None:
    transport = MemoryTransport(b"Token: tok-123\r\n")
    output = Recorder()
    script = load_script_text(
        "vars:\n  pw: {default: old, secret: true}\n  other: hunter2\n  token: {default: x, secret: true}\n"
        "connect: {}\nsteps:\n  - set: {pw: '${other}x'}\n  - print: 'pw=${pw}'\n"
        "  - expect: 'Token: (?P<token>\\S+)\\r\\n'\n  - print: 'token=${token}'\n",
        "t.yaml",
    )
    assert Interpreter(script, lambda t: transport, output, environ={}).run() == 0
    assert output.printed == ["pw=****", "token=****"]


def test_verbose_log_masks_a_secret_split_inside_a_multibyte_character() -> None:
    secret = "pässwort"
    data = f"Echo: {secret}\r\n".encode()
    cut = data.index("ä".encode()) + 1
    transport = MemoryTransport(data[:cut])
    transport.push(data[cut:])
    output = Recorder()
    script = load_script_text(
        "vars:\n  pw: {default: pässwort, secret: true}\nconnect: {}\nsteps:\n  - expect: 'Echo: \\S+\\r\\n'\n",
        "t.yaml",
    )
    Interpreter(script, lambda t: transport, output, environ={}).run()
    assert "Echo: ****" in output.received_lines
    assert "sswort" not in output.everything()


def test_error_messages_mask_secret_values_too() -> None:
    with pytest.raises(ScriptError) as failure:
        interpreter(
            "vars:\n  p: {default: hunter2, secret: true}\nconnect: {port: '${p}'}\nsteps:\n  - send: x\n",
            MemoryTransport(),
        ).run()
    assert "hunter2" not in str(failure.value) and "****" in str(failure.value)


def test_an_env_default_is_not_needed_when_var_overrides_it() -> None:
    text = "vars:\n  pw: {default: '${env:AMI_PW_UNSET}', secret: true}\nsteps:\n  - print: ok\n"
    assert interpreter(text, MemoryTransport(), variables={"pw": "given"}).run() == 0
    with pytest.raises(ScriptError, match="AMI_PW_UNSET"):
        interpreter(text, MemoryTransport())


def test_time_spent_connecting_does_not_count_against_the_first_expect() -> None:
    clock = FakeClock()
    transport = MemoryTransport(BANNER, on_idle=clock.advance)

    def slow_opener(target: Target) -> MemoryTransport:
        clock.advance(9.5)  # a slow connect, within its own timeout
        return transport

    output = Recorder()
    script = load_script_text("connect: {}\nsteps:\n  - expect: Manager\n  - print: ok\n", "t.yaml")
    assert Interpreter(script, slow_opener, output, clock=clock, sleep=clock.sleep).run() == 0
    assert output.printed == ["ok"]


def test_text_received_before_a_reset_still_matches() -> None:
    class ResetAfterData(MemoryTransport):
        def receive(self, timeout: float) -> bytes | None:
            data = super().receive(timeout)
            if data is None:
                raise ConnectionLost("peer: connection reset by peer")
            return data

    transport = ResetAfterData(b"Response: Success\r\nNewMessages: 3\r\n")
    output = Recorder()
    script = load_script_text(
        "connect: {}\nsteps:\n  - expect: 'Response: Success'\n  - expect: 'NewMessages: (?P<n>\\d+)\\r\\n'\n"
        "  - print: ${n}\n",
        "t.yaml",
    )
    assert Interpreter(script, lambda t: transport, output).run() == 0
    assert output.printed == ["3"]


def test_vmcount_counts_survive_any_chunking_of_the_reply() -> None:
    reply = (
        b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n"
        b"Response: Success\r\nMessage: Mailbox Message Count\r\nMailbox: 123@default\r\n"
        b"UrgMessages: 0\r\nNewMessages: 12\r\nOldMessages: 10\r\n\r\n"
    )
    script = load_script(ROOT / "scripts" / "vmcount.yaml")
    for cut in range(len(reply)):
        clock = FakeClock()
        transport = MemoryTransport(BANNER, on_idle=clock.advance)
        transport.push(reply[:cut] or b" ")
        transport.push(reply[cut:])
        output = Recorder()
        code = Interpreter(
            script,
            lambda t, tr=transport: tr,
            output,
            variables={"mailbox": "123@default"},
            clock=clock,
            sleep=clock.sleep,
        ).run()
        assert code == 0, cut
        assert output.printed[-2:] == ["New messages: 12", "Old messages: 10"], cut


def test_non_utf8_bytes_from_argv_are_sent_unchanged(tmp_path: Path) -> None:
    received: list[bytes] = []

    record = recorder(received, until=b"\r\n")

    script = tmp_path / "s.yaml"
    script.write_text('vars: {m: x}\nconnect: {}\nsteps:\n  - send: "M: ${m}\\n"\n')
    with tcp_peer(record) as (host, port):
        result = subprocess.run(
            [*AMISCRIPT, "run", str(script), "--target", f"tcp://{host}:{port}", "--var=m=" + "\udcff\udcfe"],
            capture_output=True,
            timeout=30,
            cwd=ROOT,
        )
    assert result.returncode == 0, result.stderr
    assert received == [b"M: \xff\xfe\r\n"]


@pytest.mark.parametrize("secret", ['pa"ss', "pa\\ss", "pa\tss", "pa\x01ss"])
def test_dry_run_masks_secrets_that_quoting_would_escape(secret: str) -> None:
    from amiscript.engine.dryrun import DryRun

    lines: list[str] = []
    script = load_script_text(
        "vars:\n  pw: {default: x, secret: true}\nconnect: {}\nsteps:\n"
        '  - send: "Secret: ${pw}\\n"\n  - set: {copy: "${pw}x"}\n  - print: "${pw}"\n',
        "t.yaml",
    )
    DryRun(script, lines.append, variables={"pw": secret}, environ={}).run()
    shown = "\n".join(lines)
    assert "ss" not in shown.replace("steps", "").replace("Success", "")
    assert 'send "Secret: ****\\r\\n"' in shown


def test_a_long_secret_across_the_cut_of_last_received_is_masked_whole() -> None:
    secret = "LEAKED" * 30
    clock = FakeClock()
    transport = MemoryTransport(("Q" * 150 + secret + "\r\n").encode(), on_idle=clock.advance)
    script = load_script_text(
        "vars:\n  token: {default: x, secret: true}\nconnect: {}\ntimeout: 1\nsteps:\n  - expect: never\n", "t.yaml"
    )
    with pytest.raises(RunFailed) as failure:
        Interpreter(script, lambda t: transport, Recorder(), variables={"token": secret}, clock=clock).run()
    assert "LEAK" not in str(failure.value) and "EAKED" not in str(failure.value)
    assert "****" in str(failure.value)


def test_a_secret_can_come_from_a_file_and_a_missing_file_stops_before_connecting(tmp_path: Path) -> None:
    secret_file = tmp_path / "ami-secret"
    secret_file.write_text("from-a-file\n")
    text = f"vars:\n  pw: {{default: '${{file:{secret_file}}}', secret: true}}\nconnect: {{}}\nsteps:\n"
    text += '  - send: "Secret: ${pw}\\n"\n  - print: "sent ${pw}"\n'
    transport = MemoryTransport()
    output = Recorder()
    Interpreter(load_script_text(text, "t.yaml"), lambda t: transport, output, environ={}).run()
    assert transport.sent == [b"Secret: from-a-file\r\n"]
    assert output.printed == ["sent ****"]
    secret_file.unlink()
    opened: list[object] = []
    with pytest.raises(ScriptError, match=r"cannot read .*ami-secret"):
        Interpreter(load_script_text(text, "t.yaml"), lambda t: opened.append(t), Recorder(), environ={})  # type: ignore[arg-type,func-returns-value]
    assert opened == []


def test_sections_come_in_order_and_progress_only_on_a_terminal() -> None:
    import io

    from amiscript.cli import _Sections
    from amiscript.engine.runner import Job, Outcome

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    first = Job("a.yaml", "tcp://pbx1:5038", lambda out, err, cancel: 0)
    second = Job("b.yaml", "tcp://pbx2:5038", lambda out, err, cancel: 0)
    sections = "--- a.yaml @ tcp://pbx1:5038: ok (0.20 s)\na out\n--- b.yaml @ tcp://pbx2:5038: unreachable (0.10 s)\n"
    for err, progress in ((Terminal(), True), (io.StringIO(), False)):
        out = io.StringIO()
        done = _Sections([first, second], out, err, {})
        done(Outcome(second, 3, 0.1, "", "b err\n"), 1)  # the second ends first: held back
        assert out.getvalue() == ""
        done(Outcome(first, 0, 0.2, "a out\n", ""), 2)
        assert out.getvalue() == sections
        if progress:
            assert err.getvalue() == (
                "\r\x1b[Kamiscript: 1/2 done (tcp://pbx2:5038: unreachable)"
                "\r\x1b[Kb err\namiscript: 2/2 done (tcp://pbx1:5038: ok)\n"
            )
        else:
            assert err.getvalue() == "b err\n"
