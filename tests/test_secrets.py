"""A secret never leaves: every output path of the real CLI, run as a subprocess against the
simulator (and a peer that echoes everything back), with a distinctive secret from each source.

Nothing here may show the secret, its obvious encodings, nor the MD5 key derived from it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

import pexpect
import pytest
import regex

from amiscript.protocol import Packet, PacketReader, encode_banner, encode_packet
from amiscript.sim import SimConfig, Simulator, default_config, parse_manager_conf

from .helpers import AMISCRIPT
from .peers import free_port, tcp_peer

SECRET = "Zq9-sEcReT-77x"
# Quotes, a backslash, XML and URL specials and a non-ASCII letter: each output escapes some of
# these, and a secret masked only after escaping would slip through.
TRICKY = "Zq9'\"\\sEc<&>%20é-77x"
CHALLENGE = "424242424"  # the echo peer's fixed challenge, so the MD5 key is known in advance
ENV_NAME = "ZQ9_AMI_SECRET"


def encodings(secret: str) -> set[str]:
    """The secret as text would carry it through case folding, quoting and escaping."""
    raw = secret.encode("utf-8")
    return {
        secret,
        secret.lower(),
        secret.upper(),
        quote(secret, safe=""),
        quote(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        repr(secret + "'\"")[1:-4],  # as repr shows it inside a text that holds both quotes
        regex.escape(secret),
        re.escape(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
        xml_escape(secret, {'"': "&quot;"}),  # an XML attribute, as ElementTree writes it
        base64.b64encode(raw).decode(),
        hashlib.md5(raw).hexdigest(),
        raw.hex(),
    }


def md5_key(challenge: str, secret: str) -> str:
    return hashlib.md5((challenge + secret).encode("utf-8")).hexdigest()


def assert_no_leak(text: str, secret: str = SECRET, challenges: tuple[str, ...] = ()) -> None:
    forbidden = encodings(secret) | {md5_key(challenge, secret) for challenge in challenges}
    found = sorted(form for form in forbidden if form in text)
    assert not found, f"secret leaked as {found} in:\n{text}"


def challenges_in(text: str) -> tuple[str, ...]:
    return tuple(set(re.findall(r"Challenge: (\d+)", text)))


# -- peers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pbx() -> Iterator[str]:
    """A simulator whose admin's secret is SECRET and tricky's TRICKY (and fails logins at once)."""
    rights = "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n"
    conf = f"[admin]\nsecret = {SECRET}\n{rights}[tricky]\nsecret = {TRICKY}\n{rights}"
    config = SimConfig(
        users=parse_manager_conf(conf, "secret.conf"), mailboxes=default_config().mailboxes, login_fail_delay=0.0
    )
    with Simulator(config, host="127.0.0.1", port=0) as sim:
        host, port = sim.address
        yield f"tcp://{host}:{port}"


def _echo(conn: socket.socket) -> None:
    """Accepts any login; answers every action with all its headers echoed back (as headers and
    as Command-style output), and `Command` with an error that quotes them."""
    conn.sendall(encode_banner("Asterisk Call Manager/11.0.0"))
    reader = PacketReader()
    conn.settimeout(10)
    while True:
        data = conn.recv(65536)
        reader.receive_data(data)
        while isinstance(packet := reader.next_event(), Packet):
            action = (packet.get("Action") or "").lower()
            echoed = [(f"Echo-{name}", value) for name, value in packet.headers]
            output = [("Output", f"{name}: {value}") for name, value in packet.headers]
            if action == "challenge":
                head = [("Response", "Success"), ("Challenge", CHALLENGE)]
            elif action == "command":
                said = "; ".join(f"{name}={value}" for name, value in packet.headers)
                head = [("Response", "Error"), ("Message", f"you said {said}")]
            else:
                head = [("Response", "Success"), ("Message", "echo"), ("Value", "echo")]
            answer = [*head, ("ActionID", packet.get("ActionID") or ""), *echoed, *output]
            conn.sendall(encode_packet(answer) + encode_packet([("Event", "Echo"), *echoed]))
            if action == "logoff":
                return
        if not data:
            return


@pytest.fixture(scope="module")
def echo_peer() -> Iterator[str]:
    with tcp_peer(_echo) as (host, port):
        yield f"tcp://{host}:{port}"


# -- running the CLI ------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    text: str  # stdout, stderr and every file written, for the leak check
    stdout: str
    stderr: str


def amiscript(
    *args: str, env: dict[str, str] | None = None, files: tuple[Path, ...] = (), cwd: Path, stdin: str = ""
) -> Run:
    result = subprocess.run(
        [*AMISCRIPT, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env={**os.environ, **(env or {})},
        input=stdin,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    written = [path.read_text(encoding="utf-8") for path in files if path.exists()]
    text = "\n".join([result.stdout, result.stderr, *written])
    return Run(result.returncode, text, result.stdout, result.stderr)


def run_with_every_report(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[Run, tuple[Path, ...]]:
    """`run ARGS -v` writing a transcript, a JSON report and JUnit XML, all of them read back."""
    reports = (tmp_path / "t.jsonl", tmp_path / "r.json", tmp_path / "j.xml")
    run = amiscript(
        "run", *args, "-v", "--transcript", str(reports[0]), "--json", str(reports[1]), "--junit", str(reports[2]),
        env=env, files=reports, cwd=tmp_path,
    )  # fmt: skip
    return run, reports


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SCRIPT = """\
name: secret-echo
vars:
  secret: {SOURCE}
  user: admin
  auth: plain
connect: {{host: 127.0.0.1, port: "1", timeout: 5}}
timeout: 5
steps:
  - login: {{username: "${{user}}", secret: "${{secret}}", auth: "${{auth}}"}}
  - action: {{Action: SetVar, Variable: TOKEN, Value: "${{secret}}"}}
  - action: {{Action: GetVar, Variable: TOKEN}}
    save: {{echoed: Value}}
  - action: {{Action: UserEvent, UserEvent: Leak, Token: "${{secret}}"}}
  - print: "the PBX echoed ${{echoed}}"
{MORE}"""


def script(tmp_path: Path, source: str, more: str = "  - action: {Action: Logoff}\n", name: str = "check") -> Path:
    return write(tmp_path / f"{name}.yaml", SCRIPT.format(SOURCE=source, MORE=more))


@dataclass(frozen=True)
class Source:
    """Where the secret comes from: what the script's `secret` variable declares, and the
    arguments and environment that supply it."""

    name: str
    declared: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


def sources(tmp_path: Path, secret: str = SECRET) -> dict[str, Source]:
    secret_file = write(tmp_path / "ami-secret", secret + "\n")
    vars_file = write(tmp_path / "vars.yaml", f"secret: {json.dumps(secret)}\n")
    # the vars file names where the secret is, as docs/language.md shows, not the secret itself
    env_vars_file = write(tmp_path / "env-vars.yaml", f"secret: ${{env:{ENV_NAME}}}\n")
    file_vars_file = write(tmp_path / "file-vars.yaml", f"secret: '${{file:{secret_file}}}'\n")
    required = "{required: true, secret: true}"
    return {
        "var": Source("var", required, ("--var", f"secret={secret}")),
        "vars-file": Source("vars-file", required, ("--vars-file", str(vars_file))),
        "vars-file-env": Source("vars-file-env", required, ("--vars-file", str(env_vars_file)), ((ENV_NAME, secret),)),
        "vars-file-file": Source("vars-file-file", required, ("--vars-file", str(file_vars_file))),
        "env": Source("env", f"{{default: '${{env:{ENV_NAME}}}', secret: true}}", env=((ENV_NAME, secret),)),
        "file": Source("file", f"{{default: '${{file:{secret_file}}}', secret: true}}"),
    }


SOURCES = ("var", "vars-file", "vars-file-env", "vars-file-file", "env", "file")


# -- a passing run, every report at once --------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_a_passing_run_with_every_report_shows_no_secret(tmp_path: Path, pbx: str, source: str) -> None:
    given = sources(tmp_path)[source]
    check = script(tmp_path, given.declared)
    run, reports = run_with_every_report(tmp_path, str(check), "--target", pbx, *given.args, env=dict(given.env))
    assert run.code == 0, run.text
    assert "the PBX echoed ****" in run.stdout  # the secret went through and came back, masked
    assert "Secret: ****" in run.stderr
    assert '"echoed": "****"' in reports[1].read_text()
    assert_no_leak(run.text)


@pytest.mark.parametrize("source", SOURCES)
def test_md5_login_shows_neither_the_secret_nor_the_key(tmp_path: Path, pbx: str, source: str) -> None:
    given = sources(tmp_path)[source]
    check = script(tmp_path, given.declared)
    transcript = tmp_path / "t.jsonl"
    run = amiscript(
        "run", str(check), "--target", pbx, "-v", "--var", "auth=md5", *given.args, "--transcript", str(transcript),
        env=dict(given.env), files=(transcript,), cwd=tmp_path,
    )  # fmt: skip
    assert run.code == 0, run.text
    assert "Key: ****" in run.stderr
    challenges = challenges_in(run.text)
    assert challenges  # the key is derived from what the simulator sent: check that too
    assert_no_leak(run.text, challenges=challenges)


@pytest.mark.parametrize("source", ["var", "vars-file-env", "vars-file-file", "env", "file"])
def test_dry_run_shows_no_secret(tmp_path: Path, source: str) -> None:
    given = sources(tmp_path, TRICKY)[source]
    check = script(tmp_path, given.declared)
    for auth in ("plain", "md5"):
        run = amiscript(
            "run", str(check), "--dry-run", "--var", f"auth={auth}", *given.args, env=dict(given.env), cwd=tmp_path
        )
        assert run.code == 0, run.text
        assert "Secret: ****" in run.stdout or "Key: md5(challenge+secret)" in run.stdout
        assert_no_leak(run.text, TRICKY)


def test_nagios_output_and_its_verbose_log_show_no_secret(tmp_path: Path, pbx: str) -> None:
    given = sources(tmp_path)["env"]
    check = script(tmp_path, given.declared)
    run = amiscript("run", str(check), "--target", pbx, "--format", "nagios", "-v", env=dict(given.env), cwd=tmp_path)
    assert (run.code, run.stdout) == (0, "SECRET-ECHO OK: the PBX echoed ****\n")
    assert_no_leak(run.text)
    # a metric whose value the PBX echoed back: not a number, and not shown either
    echoed = write(tmp_path / "metric.yaml", check.read_text() + "metrics:\n  echoed: {}\n")
    run = amiscript("run", str(echoed), "--target", pbx, "--format", "nagios", env=dict(given.env), cwd=tmp_path)
    assert (run.code, run.stdout) == (3, "SECRET-ECHO UNKNOWN: metric 'echoed' has no numeric value ('****')\n")
    assert_no_leak(run.text)
    failing = script(tmp_path, given.declared, more='  - fail: "gave up on ${secret}"\n', name="failing")
    run = amiscript("run", str(failing), "--target", pbx, "--format", "nagios", "-v", env=dict(given.env), cwd=tmp_path)
    assert run.code == 2
    assert run.stdout.startswith("SECRET-ECHO CRITICAL:")
    assert_no_leak(run.text)


# -- errors ------------------------------------------------------------------------------------


FAILURES = {  # what the script does wrong: its step, exit status, and a word of the message
    "fail step": ('  - fail: "gave up on ${secret}"\n', 1, "gave up on ****"),
    "header mismatch": (
        "  - action: {Action: GetVar, Variable: TOKEN}\n    expect: {Value: nope}\n",
        1,
        "Value is '****', expected 'nope'",
    ),
    "timeout": ("  - expect: 'never ${secret}'\n    timeout: 0.3\n", 1, "timeout after 0.3 s"),
    "assert": ("  - assert: echoed == 'nope'\n", 1, "echoed = '****'"),
    "script error naming it": ("  - assert: secret > 3\n", 2, "cannot order '****' and"),
    "item lookup on text": ('  - print: "${secret.Header}"\n', 2, "variable 'secret' is text"),
    "regex made of it": (
        "  - action: {Action: GetVar, Variable: TOKEN}\n    expect: {Value: {re: '^${secret}$x'}}\n",
        1,
        "Value is '****', expected to match",
    ),
}


@pytest.mark.parametrize("secret", [SECRET, TRICKY], ids=["plain", "tricky"])
@pytest.mark.parametrize("what", FAILURES)
def test_a_failing_step_reports_without_the_secret(tmp_path: Path, pbx: str, what: str, secret: str) -> None:
    given = sources(tmp_path, secret)["env"]
    more, code, message = FAILURES[what]
    check = script(tmp_path, given.declared, more=more)
    user = "admin" if secret == SECRET else "tricky"
    run, _ = run_with_every_report(tmp_path, str(check), "--target", pbx, "--var", f"user={user}", env=dict(given.env))
    assert run.code == code, run.text
    assert message in run.stdout + run.stderr
    assert_no_leak(run.text, secret)


def test_a_refused_login_reports_without_the_secret(tmp_path: Path, pbx: str) -> None:
    wrong = "Zq9-wRoNg-88y"
    given = sources(tmp_path, wrong)["file"]
    check = script(tmp_path, given.declared)
    for auth in ("plain", "md5"):
        report = tmp_path / f"r-{auth}.json"
        run = amiscript(
            "run", str(check), "--target", pbx, "-v", "--var", f"auth={auth}", "--json", str(report),
            files=(report,), cwd=tmp_path,
        )  # fmt: skip
        assert run.code == 1, run.text
        assert "login as 'admin' failed: Authentication failed" in run.stderr
        assert_no_leak(run.text, wrong, challenges=challenges_in(run.text))
        assert_no_leak(run.text)  # nor the PBX's own


def test_an_unreachable_target_reports_without_the_secret(tmp_path: Path) -> None:
    check = script(tmp_path, sources(tmp_path)["var"].declared)
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    run = amiscript(
        "run", str(check), "--target", f"tcp://127.0.0.1:{free_port()}", "-v", "--var", f"secret={SECRET}",
        "--json", str(report), "--junit", str(junit), files=(report, junit), cwd=tmp_path,
    )  # fmt: skip
    assert run.code == 3, run.text
    assert_no_leak(run.text)


def test_a_value_with_a_line_break_is_refused_without_showing_it(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "ami-secret", f"{SECRET}\nAction: Command\n")
    check = script(tmp_path, f"{{default: '${{file:{secret_file}}}', secret: true}}")
    for extra in ((), ("--dry-run",)):
        run = amiscript("run", str(check), "--target", "tcp://127.0.0.1:1", "-v", *extra, cwd=tmp_path)
        assert run.code == 2, run.text
        assert "contains a line feed (LF)" in run.stderr
        assert_no_leak(run.text)


# -- a peer that echoes everything back -------------------------------------------------------------


@pytest.mark.parametrize("auth", ["plain", "md5"])
def test_a_peer_echoing_the_login_and_a_command_output_shows_no_secret(
    tmp_path: Path, echo_peer: str, auth: str
) -> None:
    given = sources(tmp_path, TRICKY)["env"]
    more = '  - action: {Action: Command, Command: "echo ${secret}"}\n'
    check = script(tmp_path, given.declared, more=more)
    args = ("--target", echo_peer, "--var", f"auth={auth}")
    run, _ = run_with_every_report(tmp_path, str(check), *args, env=dict(given.env))
    assert run.code == 1, run.text
    assert "action Command failed: you said" in run.stderr
    assert ("Echo-Key: ****" if auth == "md5" else "Echo-Secret: ****") in run.stderr
    assert_no_leak(run.text, TRICKY, challenges=(CHALLENGE,))


def test_a_raw_send_echoed_by_the_peer_is_masked_in_the_timeout_message(tmp_path: Path, echo_peer: str) -> None:
    given = sources(tmp_path, TRICKY)["env"]
    check = write(
        tmp_path / "raw.yaml",
        f"vars:\n  secret: {given.declared}\nconnect: {{host: 127.0.0.1, port: '1'}}\nsteps:\n"
        "  - expect: Manager\n"
        '  - send: "Action: Login\\nUsername: admin\\nSecret: ${secret}\\n\\n"\n'
        "  - expect: never\n    timeout: 0.5\n",
    )
    run = amiscript("run", str(check), "--target", echo_peer, "-v", env=dict(given.env), cwd=tmp_path)
    assert run.code == 1, run.text
    assert "Echo-Secret: ****" in run.stderr
    assert_no_leak(run.text, TRICKY)


# -- check, schema, the pytest plugin ---------------------------------------------------------------


def test_check_in_both_formats_and_schema_show_no_secret(tmp_path: Path) -> None:
    given = sources(tmp_path)["env"]
    clean = script(tmp_path, given.declared)
    # a secret written into the script itself, printed (a warning) and used wrongly (an error)
    written = write(
        tmp_path / "written.yaml",
        f"vars:\n  secret: {{default: {SECRET}, secret: true}}\nconnect: {{}}\nsteps:\n"
        f'  - login: {{username: admin, secret: "${{secret}}"}}\n'
        '  - print: "${secret}"\n',
    )
    broken = write(
        tmp_path / "broken.yaml",
        f"vars:\n  secret: {{default: {SECRET}, secret: true}}\nconnect: {{}}\nsteps:\n"
        f'  - send: "Secret: {SECRET} ${{nope}}"\n',
    )
    files = (str(clean), str(written), str(broken))
    for args in (("check", *files), ("check", "--format", "json", *files)):
        run = amiscript(*args, env=dict(given.env), cwd=tmp_path)
        assert run.code == 2, run.text
        assert "prints the secret variable 'secret'" in run.stdout
        assert_no_leak(run.text)
    run = amiscript("schema", env=dict(given.env), cwd=tmp_path)
    assert run.code == 0
    assert_no_leak(run.text)


def test_the_pytest_plugins_failure_report_shows_no_secret(pytester: pytest.Pytester, pbx: str) -> None:
    pytester.makefile(
        ".yaml",
        amiscript_leaky=SCRIPT.format(
            SOURCE="{required: true, secret: true}",
            MORE="  - action: {Action: GetVar, Variable: TOKEN}\n    expect: {Value: nope}\n"
            '  - fail: "gave up on ${secret}"\n',
        ),
        amiscript_failing=SCRIPT.format(SOURCE="{required: true, secret: true}", MORE='  - fail: "no ${secret}"\n'),
    )
    result = pytester.runpytest_subprocess(
        "--ami-target", pbx, "--ami-var", f"secret={SECRET}", "-v", "-l", "--junitxml=junit.xml"
    )
    result.assert_outcomes(failed=2)
    text = "\n".join([*result.outlines, *result.errlines, (pytester.path / "junit.xml").read_text()])
    assert "Value is '****', expected 'nope'" in text
    assert_no_leak(text)


# -- many checks at once: an inventory, in parallel --------------------------------------------------


def test_parallel_runs_from_an_inventory_show_no_secret(tmp_path: Path, pbx: str) -> None:
    secret_file = write(tmp_path / "ami-secret", SECRET + "\n")
    inventory = write(
        tmp_path / "inventory.yaml",
        "targets:\n"
        f"  - {{name: from-env, url: '{pbx}', vars: {{secret: '${{env:{ENV_NAME}}}'}}}}\n"
        f"  - {{name: from-file, url: '{pbx}', vars: {{secret: '${{file:{secret_file}}}', auth: md5}}}}\n"
        f"  - {{name: written, url: '{pbx}', vars: {{secret: '{SECRET}'}}}}\n"
        f"  - {{name: down, url: 'tcp://127.0.0.1:{free_port()}', vars: {{secret: '{SECRET}'}}}}\n",
    )
    ok = script(tmp_path, "{required: true, secret: true}")
    failing = script(tmp_path, "{required: true, secret: true}", more='  - fail: "no ${secret}"\n', name="failing")
    reports = (tmp_path / "r.json", tmp_path / "j.xml")
    env = {ENV_NAME: SECRET}
    run = amiscript(
        "run", str(ok), str(failing), "--inventory", str(inventory), "--jobs", "4", "-v",
        "--json", str(reports[0]), "--junit", str(reports[1]), env=env, files=reports, cwd=tmp_path,
    )  # fmt: skip
    assert run.code == 3, run.text
    assert run.stdout.count("the PBX echoed ****") == 6
    assert_no_leak(run.text, challenges=challenges_in(run.text))
    dry = amiscript("run", str(ok), str(failing), "--inventory", str(inventory), "--dry-run", env=env, cwd=tmp_path)
    assert dry.code == 0, dry.text
    assert_no_leak(dry.text)


def test_a_password_in_a_target_url_is_refused_and_not_repeated(tmp_path: Path, pbx: str) -> None:
    check = script(tmp_path, "{required: true, secret: true}")
    with_password = pbx.replace("tcp://", f"tcp://admin:{SECRET}@")
    inventory = write(tmp_path / "inventory.yaml", f"targets:\n  - {{url: '{with_password}'}}\n")
    report = tmp_path / "r.json"
    masked = pbx.replace("tcp://", "tcp://****@")
    for where, named in (
        (("--target", with_password), "--target"),
        (("--inventory", str(inventory)), f"{inventory}:2:11: url"),
    ):
        run = amiscript(
            "run", str(check), *where, "--var", "secret=x", "--json", str(report), files=(report,), cwd=tmp_path
        )
        assert run.code == 2, run.text
        assert f"{named} '{masked}': a user or password in the URL is not used" in run.stderr
        assert_no_leak(run.text)


# -- the console and the recorder ------------------------------------------------------------------

TYPED = (  # what a person types: the secret only as ${secret}, so that its echo on the terminal is harmless
    "SetVar Variable=TOKEN Value=${secret}",
    "GetVar Variable=TOKEN",
    "UserEvent Leak Token=${secret}",
    'Command "echo ${secret}"',
    "Action: DBPut",
    "Family: t",
    "Key: k",
    "Val: ${secret}",
    "",
)


def _console_target(request: pytest.FixtureRequest, peer: str) -> tuple[str, str]:
    """The target and the user whose secret is TRICKY there."""
    return (request.getfixturevalue("pbx"), "tricky") if peer == "pbx" else (request.getfixturevalue("echo_peer"), "x")


@pytest.mark.parametrize("auth", ["plain", "md5"])
@pytest.mark.parametrize("peer", ["pbx", "echo"])
def test_a_recorded_console_session_shows_and_writes_no_secret(
    tmp_path: Path, request: pytest.FixtureRequest, peer: str, auth: str
) -> None:
    target, user = _console_target(request, peer)
    history = tmp_path / "history"
    child = pexpect.spawn(
        AMISCRIPT[0], [*AMISCRIPT[1:], "record", "session.yaml", "--target", target, "--username", user,
                       "--secret-env", ENV_NAME, "--auth", auth],
        env={**os.environ, ENV_NAME: TRICKY, "AMISCRIPT_HISTORY": str(history), "NO_COLOR": "1"},
        encoding="utf-8", timeout=30, cwd=str(tmp_path), dimensions=(40, 200),
    )  # fmt: skip
    child.logfile_read = io.StringIO()
    child.expect_exact("ami> ")
    for line in TYPED:
        child.sendline(line)
        child.expect_exact("...> " if ": " in line else "ami> ")  # a raw packet's lines ask for more
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    shown = child.logfile_read.getvalue()
    recorded = (tmp_path / "session.yaml").read_text(encoding="utf-8")
    assert child.exitstatus == 0, shown
    assert "Traceback" not in shown
    if peer == "pbx":
        assert re.search(r"Value: +\*\*\*\*", shown)  # it went through and came back, masked
    else:
        assert re.search(r"Echo-(Secret|Key): +\*\*\*\*", shown)
    assert 'Val: "${secret}"' in recorded and 'Token: "${secret}"' in recorded
    text = "\n".join([shown, recorded, history.read_text(encoding="utf-8")])
    assert_no_leak(text, TRICKY, challenges=(CHALLENGE, *challenges_in(text)))


@pytest.mark.parametrize("auth", ["plain", "md5"])
def test_a_console_without_a_terminal_shows_no_secret_on_stdout_or_stderr(
    tmp_path: Path, echo_peer: str, auth: str
) -> None:
    run = amiscript(
        "console", "--target", echo_peer, "--username", "x", "--secret-env", ENV_NAME, "--auth", auth,
        env={ENV_NAME: TRICKY}, cwd=tmp_path, stdin="\n".join(TYPED) + "\n",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert re.search(r"Echo-Key: +\*\*\*\*" if auth == "md5" else r"Echo-Secret: +\*\*\*\*", run.stdout)
    assert_no_leak(run.text, TRICKY, challenges=(CHALLENGE,))


def test_a_secret_with_a_byte_that_is_not_utf8_is_masked_in_every_output(tmp_path: Path, echo_peer: str) -> None:
    """A shell can pass any bytes (--var secret=$'p\\xe9ss'): Python holds the byte as a surrogate,
    and outputs that show it as \\xe9 (the transcript did) must still mask it."""
    check = write(
        tmp_path / "raw.yaml",
        "vars:\n  secret: {default: x, secret: true}\nconnect: {host: 127.0.0.1, port: '1'}\nsteps:\n"
        "  - expect: Manager\n"
        '  - send: "Action: Login\\nUsername: admin\\nSecret: ${secret}\\n\\n"\n'
        "  - expect: never\n    timeout: 0.5\n",
    )
    reports = (tmp_path / "t.jsonl", tmp_path / "r.json", tmp_path / "j.xml")
    argv = [*AMISCRIPT, "run", str(check), "--target", echo_peer, "-v", "--transcript", str(reports[0])]
    argv += ["--json", str(reports[1]), "--junit", str(reports[2])]
    result = subprocess.run(
        [os.fsencode(arg) for arg in argv] + [b"--var", b"secret=Zq9\xe9sEcReT"], capture_output=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    shown = result.stdout + result.stderr + b"".join(path.read_bytes() for path in reports)
    assert b"Echo-Secret: ****" in result.stderr
    for form in (b"Zq9\xe9sEcReT", b"Zq9\\xe9sEcReT", b"Zq9\\\\xe9sEcReT", b"Zq9\\udce9sEcReT", b"Zq9\\\\udce9sEcReT"):
        assert form not in shown, form
    assert b"sEcReT" not in shown, shown[shown.find(b"sEcReT") - 200 : shown.find(b"sEcReT") + 50]
