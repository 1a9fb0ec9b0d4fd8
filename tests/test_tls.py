"""AMI over TLS, end to end: a CA and certificates made here, the simulator serving TLS, the CLI
as a subprocess. Every failure must be one line that names the cause and the option to fix it."""

from __future__ import annotations

import datetime
import io
import os
import random
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pexpect
import pytest
import trustme

from amiscript.frontend import parse_target
from amiscript.script.schema import schema
from amiscript.script.yamlnodes import load_yaml_file
from amiscript.sim import SimConfig, Simulator, default_config
from amiscript.sim.server import server_context

from .helpers import AMISCRIPT
from .peers import tcp_peer

ROOT = Path(__file__).resolve().parents[1]
VMCOUNT = str(ROOT / "scripts" / "vmcount.yaml")
BOOK_SESSION = "Mailbox: 123@default\nConnected.\nLogged in.\nNew messages: 0\nOld messages: 0\n"
# No `on: eof` handler: a connection that cannot be made ends the run with exit 3 and its reason.
LOGIN = """\
connect: {host: 127.0.0.1, port: '5038', timeout: 2}
steps:
  - expect: Manager
  - send: "Action: Login\\nUsername: admin\\nSecret: secret5\\n\\n"
  - expect: 'Response: Success'
  - print: logged in
"""
# generous for a loaded 2-core machine; what matters is that a stuck handshake ends at all
SLACK = 10.0


class Pki:
    """A CA, a server certificate for pbx.example.net only, and a client certificate, as files."""

    def __init__(self, where: Path) -> None:
        self.ca = trustme.CA()
        self.cacert = str(where / "ca.pem")
        self.ca.cert_pem.write_to_path(self.cacert)
        server = self.ca.issue_cert("pbx.example.net")
        self.server_cert = str(where / "server.pem")
        self.server_key = str(where / "server.key")
        for blob in server.cert_chain_pems:
            blob.write_to_path(self.server_cert, append=True)
        server.private_key_pem.write_to_path(self.server_key)
        client = self.ca.issue_cert("monitoring@example.net")
        self.client_cert = str(where / "client.pem")
        self.client_key = str(where / "client.key")
        client.cert_chain_pems[0].write_to_path(self.client_cert)
        client.private_key_pem.write_to_path(self.client_key)
        self.client_combined = str(where / "client-with-key.pem")
        client.private_key_and_cert_chain_pem.write_to_path(self.client_combined)
        self.other_cacert = str(where / "other-ca.pem")
        trustme.CA().cert_pem.write_to_path(self.other_cacert)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _fast_config() -> SimConfig:
    config = default_config()
    return SimConfig(users=config.users, mailboxes=config.mailboxes, login_fail_delay=0.0, auth_timeout=30.0)


@pytest.fixture(scope="module")
def tls_sim(pki: Pki) -> Iterator[int]:
    """The simulator serving TLS on a free loopback port; yields the port."""
    with Simulator(_fast_config(), port=0, tls=server_context(pki.server_cert, pki.server_key)) as server:
        yield server.address[1]


@pytest.fixture
def login(tmp_path: Path) -> str:
    path = tmp_path / "login.yaml"
    path.write_text(LOGIN)
    return str(path)


def amiscript(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMISCRIPT, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def first_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("amiscript: error: "), result.stderr
    return lines[0]


def test_vmcount_over_tls_passes_when_the_ca_is_given_with_cacert(pki: Pki, tls_sim: int) -> None:
    result = amiscript(
        "run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"tls://127.0.0.1:{tls_sim}",
        "--cacert", pki.cacert, "--server-name", "pbx.example.net",
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, BOOK_SESSION, "")


def test_without_cacert_an_unknown_ca_fails_with_one_line_naming_cacert_and_exit_3(login: str, tls_sim: int) -> None:
    result = amiscript("run", login, "--target", f"tls://127.0.0.1:{tls_sim}", "--server-name", "pbx.example.net")
    line = first_error_line(result)
    assert result.returncode == 3
    assert "the server's certificate was not accepted: signed by an unknown CA" in line
    assert "--cacert FILE" in line
    assert result.stdout == ""


def test_a_ca_that_did_not_sign_the_certificate_is_refused_too(pki: Pki, login: str, tls_sim: int) -> None:
    result = amiscript(
        "run", login, "--target", f"tls://127.0.0.1:{tls_sim}", "--server-name", "pbx.example.net",
        "--cacert", pki.other_cacert,
    )  # fmt: skip
    assert result.returncode == 3
    assert "signed by an unknown CA" in first_error_line(result)


def test_an_expired_certificate_is_named_as_expired(pki: Pki, login: str, tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = pki.ca.issue_cert(
        "pbx.example.net", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )
    pem = tmp_path / "expired.pem"
    expired.private_key_and_cert_chain_pem.write_to_path(str(pem))
    with Simulator(_fast_config(), port=0, tls=server_context(str(pem))) as server:
        result = amiscript(
            "run", login, "--target", f"tls://127.0.0.1:{server.address[1]}", "--cacert", pki.cacert,
            "--server-name", "pbx.example.net",
        )  # fmt: skip
    assert result.returncode == 3
    line = first_error_line(result)
    assert "the server's certificate was not accepted: it has expired" in line and "renew" in line


def test_a_name_the_certificate_does_not_hold_fails_and_says_to_use_server_name(
    pki: Pki, login: str, tls_sim: int
) -> None:
    for extra in ([], ["--server-name", "wrong.example.net"]):
        result = amiscript("run", login, "--target", f"tls://127.0.0.1:{tls_sim}", "--cacert", pki.cacert, *extra)
        line = first_error_line(result)
        assert result.returncode == 3
        name = extra[1] if extra else "127.0.0.1"
        assert f"the server's certificate was not accepted: it is not issued for {name!r}" in line
        assert "--server-name NAME" in line


def test_server_name_lets_a_connection_by_address_check_the_certificate_name(
    pki: Pki, login: str, tls_sim: int
) -> None:
    result = amiscript(
        "run", login, "--target", f"tls://127.0.0.1:{tls_sim}", "--cacert", pki.cacert,
        "--server-name", "pbx.example.net",
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "logged in\n", "")


def test_insecure_skips_verification_and_says_so_on_stderr(login: str, tls_sim: int) -> None:
    result = amiscript("run", login, "--target", f"tls://127.0.0.1:{tls_sim}", "--insecure")
    assert (result.returncode, result.stdout) == (0, "logged in\n")
    warning = result.stderr.splitlines()
    assert len(warning) == 1 and warning[0].startswith("amiscript: warning: --insecure:")
    assert "NOT verified" in warning[0]


def test_insecure_on_a_simulated_run_says_once_that_it_is_not_used_instead_of_warning_of_danger() -> None:
    result = amiscript("run", VMCOUNT, "--var", "mailbox=123@default", "--simulate", "--insecure")
    assert (result.returncode, result.stdout) == (0, BOOK_SESSION)
    assert result.stderr == "amiscript: warning: --insecure: not used: the built-in simulator speaks plain TCP\n"


def test_tls_options_with_only_plain_targets_say_once_that_they_apply_to_nothing(pki: Pki, tmp_path: Path) -> None:
    script = tmp_path / "plain.yaml"
    script.write_text(LOGIN.replace("'5038'", "'1'"))  # nothing listens on port 1
    for target in (["--target", "tcp://127.0.0.1:1"], []):  # a tcp:// target, or the script's own tcp connect
        result = amiscript("run", str(script), *target, "--cacert", pki.cacert, "--server-name", "pbx", "--insecure")
        assert result.returncode == 3
        warnings = [line for line in result.stderr.splitlines() if "warning" in line]
        assert warnings == [
            "amiscript: warning: --cacert --server-name --insecure: not used: no target or script connects with TLS "
            "(tls:// or `transport: tls`)"
        ]


def test_insecure_with_a_script_that_connects_with_tls_still_warns_that_nothing_is_verified(
    pki: Pki, tmp_path: Path, tls_sim: int
) -> None:
    shutil.copy(pki.cacert, tmp_path / "ca.pem")
    result = amiscript("run", tls_script(tmp_path, tls_sim), "--insecure")
    assert result.returncode == 0
    assert result.stderr.startswith("amiscript: warning: --insecure: the AMI server's TLS certificate is NOT verified")


def test_a_simulator_that_requires_a_client_certificate_accepts_ours_and_refuses_none(pki: Pki, login: str) -> None:
    context = server_context(pki.server_cert, pki.server_key, client_ca=pki.cacert)
    with Simulator(_fast_config(), port=0, tls=context) as server:
        target = f"tls://127.0.0.1:{server.address[1]}"
        common = ("run", login, "--target", target, "--cacert", pki.cacert, "--server-name", "pbx.example.net")
        accepted = amiscript(*common, "--cert", pki.client_cert, "--key", pki.client_key)
        refused = amiscript(*common)
    assert (accepted.returncode, accepted.stdout, accepted.stderr) == (0, "logged in\n", "")
    assert refused.returncode == 3
    line = first_error_line(refused)
    assert "client certificate" in line and "--cert FILE" in line


def test_a_server_that_sends_the_certificate_required_alert_is_reported_as_such(pki: Pki, login: str) -> None:
    """OpenSSL on a plain socket (as Asterisk uses it) sends the TLS 1.3 alert the simulator cannot."""
    context = server_context(pki.server_cert, pki.server_key, client_ca=pki.cacert)

    def strict(conn: socket.socket) -> None:
        conn.settimeout(10)
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"Asterisk Call Manager/11.0.0\r\n")
            tls.recv(4096)

    with tcp_peer(strict) as (host, port):
        result = amiscript(
            "run", login, "--target", f"tls://{host}:{port}", "--cacert", pki.cacert,
            "--server-name", "pbx.example.net",
        )  # fmt: skip
    assert result.returncode == 3
    line = first_error_line(result)
    assert "the server refused the TLS connection (tlsv13 alert certificate required)" in line
    assert "--cert FILE and --key FILE" in line


def test_a_megabyte_in_many_tls_records_arrives_whole_and_in_order(pki: Pki, tmp_path: Path) -> None:
    """Records split across reads (want-read) and bytes buffered in the SSL object must all arrive."""
    context = server_context(pki.server_cert, pki.server_key)
    filler = b"".join(b"Event: Filler\r\nSeq: %d\r\n\r\n" % n for n in range(40_000))  # ~1 MB

    def talker(conn: socket.socket) -> None:
        conn.settimeout(30)
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"Asterisk Call Manager/11.0.0\r\n" + filler + b"Last: yes\r\n")
            tls.recv(4096)

    script = tmp_path / "tail.yaml"
    script.write_text(
        "connect: {timeout: 5}\nsteps:\n  - expect: 'Seq: 39999\\r\\n'\n    timeout: 60\n"
        "  - expect: 'Last: yes'\n    timeout: 60\n  - print: whole\n"
    )
    with tcp_peer(talker) as (host, port):
        result = amiscript(
            "run", str(script), "--target", f"tls://{host}:{port}", "--cacert", pki.cacert,
            "--server-name", "pbx.example.net",
        )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "whole\n"), result.stderr


def handshake_by_hand(conn: socket.socket, context: ssl.SSLContext) -> tuple[ssl.SSLObject, ssl.MemoryBIO] | None:
    """A TLS server whose records we send ourselves, to split them or mix raw bytes in."""
    conn.settimeout(30)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            conn.sendall(outgoing.read())
            data = conn.recv(65536)
            if not data:
                return None
            incoming.write(data)
    conn.sendall(outgoing.read())
    return tls, outgoing


def test_tls_records_that_arrive_a_few_bytes_at_a_time_are_waited_for_not_an_error(pki: Pki, tmp_path: Path) -> None:
    """The socket turns readable with half a record: the transport must wait for the rest (want-read)."""
    context = server_context(pki.server_cert, pki.server_key)

    def dribbler(conn: socket.socket) -> None:
        server = handshake_by_hand(conn, context)
        if server is None:
            return
        tls, outgoing = server
        tls.write(b"Asterisk Call Manager/11.0.0\r\n")
        tls.write(b"Response: Goodbye\r\n\r\n")
        records = outgoing.read()
        for start in range(0, len(records), 7):
            conn.sendall(records[start : start + 7])
            time.sleep(0.005)
        conn.recv(4096)

    script = tmp_path / "slow.yaml"
    script.write_text("connect: {timeout: 5}\nsteps:\n  - expect: Goodbye\n    timeout: 30\n  - print: whole\n")
    with tcp_peer(dribbler) as (host, port):
        result = amiscript(
            "run", str(script), "--target", f"tls://{host}:{port}", "--cacert", pki.cacert,
            "--server-name", "pbx.example.net",
        )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "whole\n"), result.stderr


def test_bytes_that_are_not_tls_after_the_handshake_end_the_run_with_one_line(pki: Pki, login: str) -> None:
    context = server_context(pki.server_cert, pki.server_key)

    def corrupter(conn: socket.socket) -> None:
        server = handshake_by_hand(conn, context)
        if server is None:
            return
        tls, outgoing = server
        tls.write(b"Asterisk Call Manager/11.0.0\r\n")
        conn.sendall(outgoing.read())
        conn.recv(4096)  # the Login
        conn.sendall(b"Response: Success\r\n\r\n")  # in the clear: not a TLS record
        conn.recv(4096)

    with tcp_peer(corrupter) as (host, port):
        result = amiscript(
            "run", login, "--target", f"tls://{host}:{port}", "--cacert", pki.cacert,
            "--server-name", "pbx.example.net",
        )  # fmt: skip
    assert result.returncode == 3
    line = first_error_line(result)
    assert "the TLS stream broke" in line and "_ssl.c" not in line


def test_tls_to_a_plain_ami_port_fails_at_once_saying_it_is_not_tls(login: str) -> None:
    with Simulator(_fast_config(), port=0) as plain:
        started = time.monotonic()
        result = amiscript("run", login, "--target", f"tls://127.0.0.1:{plain.address[1]}")
        took = time.monotonic() - started
    assert result.returncode == 3
    line = first_error_line(result)
    assert "the server does not speak TLS on that port" in line and "tcp://" in line
    assert took < 2 + SLACK  # the script's connect timeout is 2 s


def test_a_peer_that_accepts_and_never_answers_the_handshake_ends_at_the_connect_deadline(login: str) -> None:
    def silent(conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            while conn.recv(4096):  # swallow the ClientHello and say nothing
                pass
        except OSError:
            pass

    with tcp_peer(silent) as (host, port):
        started = time.monotonic()
        result = amiscript("run", login, "--target", f"tls://{host}:{port}")
        took = time.monotonic() - started
    assert result.returncode == 3
    assert "the TLS handshake did not finish within 2 s" in first_error_line(result)
    assert 2 <= took < 2 + SLACK


def test_simulate_command_serves_tls_with_a_certificate_and_key_file_and_stays_quiet(
    pki: Pki, login: str, tmp_path: Path
) -> None:
    hello = tmp_path / "hello.yaml"
    hello.write_text("connect: {timeout: 2}\nsteps:\n  - expect: Manager\n  - print: hello\n")
    server = subprocess.Popen(
        [*AMISCRIPT, "simulate", "--port", "0", "--tls-cert", pki.server_cert, "--tls-key", pki.server_key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner.startswith("listening on 127.0.0.1:") and banner.endswith(" (TLS)\n")
        port = banner.split(":")[1].split()[0]
        result = amiscript(
            "run", VMCOUNT, "--var", "mailbox=123@default", "--target", f"tls://127.0.0.1:{port}",
            "--cacert", pki.cacert, "--server-name", "pbx.example.net",
        )  # fmt: skip
        # a client that leaves without Logoff (end of file on the TLS stream), one that fails the handshake
        # and one that does not speak TLS at all
        left = amiscript("run", str(hello), "--target", f"tls://127.0.0.1:{port}", "--cacert", pki.cacert,
                         "--server-name", "pbx.example.net")  # fmt: skip
        refused = amiscript("run", login, "--target", f"tls://127.0.0.1:{port}")
        plain = amiscript("run", login, "--target", f"tcp://127.0.0.1:{port}", "--timeout", "1")
    finally:
        server.terminate()
        _, server_errors = server.communicate(timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, BOOK_SESSION, "")
    assert (left.returncode, refused.returncode, plain.returncode) == (0, 3, 1)
    assert (server.returncode, server_errors) == (0, "")  # no asyncio warnings about those clients


def test_simulate_with_a_certificate_file_that_is_not_pem_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "cert.pem"
    bogus.write_text("not a certificate\n")
    result = amiscript("simulate", "--port", "0", "--tls-cert", str(bogus))
    assert result.returncode == 2
    assert "cannot serve TLS with --tls-cert" in first_error_line(result)


@pytest.mark.parametrize(
    ("option", "content", "expected"),
    [
        ("--cacert", None, "cannot use the CA certificate file"),
        ("--cacert", "garbage\n", "cannot use the CA certificate file"),
        ("--cert", "garbage\n", "cannot use the client certificate"),
    ],
)
def test_an_unusable_certificate_file_is_a_usage_error_before_connecting(
    tmp_path: Path, login: str, option: str, content: str | None, expected: str
) -> None:
    path = tmp_path / "file.pem"
    if content is not None:
        path.write_text(content)
    # nothing listens on port 1: a connection attempt would fail with exit 3, not 2
    result = amiscript("run", login, "--target", "tls://127.0.0.1:1", option, str(path))
    assert result.returncode == 2
    line = first_error_line(result)
    assert expected in line and str(path) in line


def test_a_key_given_as_cacert_is_named_as_a_key_not_a_mismatch(pki: Pki, login: str) -> None:
    result = amiscript("run", login, "--target", "tls://127.0.0.1:1", "--cacert", pki.server_key)
    assert result.returncode == 2
    line = first_error_line(result)
    assert (
        f"cannot use the CA certificate file {pki.server_key!r}: it holds a private key, not a CA certificate" in line
    )
    assert "does not match" not in line


def test_a_tls_target_without_a_port_uses_asterisks_tls_port_5039() -> None:
    assert (parse_target("tls://pbx.example.net").port, parse_target("tls://pbx.example.net:6000").port) == (5039, 6000)


def tls_script(tmp_path: Path, port: int, cacert: str = "ca.pem") -> str:
    path = tmp_path / "tls-login.yaml"
    path.write_text(
        LOGIN.replace(
            "connect: {host: 127.0.0.1, port: '5038', timeout: 2}",
            f"connect:\n  transport: tls\n  port: '{port}'\n  timeout: 2\n  cacert: {cacert}\n"
            "  server_name: pbx.example.net",
        )
    )
    return str(path)


def test_tls_settings_in_the_scripts_connect_are_used_with_files_relative_to_the_script(
    pki: Pki, tmp_path: Path, tls_sim: int
) -> None:
    shutil.copy(pki.cacert, tmp_path / "ca.pem")
    script = tls_script(tmp_path, tls_sim)
    assert jsonschema.Draft7Validator(schema()).is_valid(load_yaml_file(Path(script)))
    result = amiscript("run", script)  # run from the repository, not the script's directory
    assert (result.returncode, result.stdout, result.stderr) == (0, "logged in\n", "")


def test_the_command_line_overrides_the_scripts_tls_settings(pki: Pki, tmp_path: Path, tls_sim: int) -> None:
    shutil.copy(pki.cacert, tmp_path / "ca.pem")
    result = amiscript("run", tls_script(tmp_path, tls_sim), "--server-name", "wrong.example.net")
    assert result.returncode == 3
    assert "it is not issued for 'wrong.example.net'" in first_error_line(result)


def test_a_missing_cacert_file_in_the_script_is_reported_at_its_line(tmp_path: Path, tls_sim: int) -> None:
    result = amiscript("run", tls_script(tmp_path, tls_sim, cacert="missing.pem"))
    assert result.returncode == 2
    line = first_error_line(result)
    assert f"tls-login.yaml:5:11: cacert file '{tmp_path / 'missing.pem'}' does not exist" in line


def test_check_and_dry_run_report_a_missing_cacert_file_at_its_line(tmp_path: Path) -> None:
    script = tls_script(tmp_path, 5039, cacert="missing.pem")
    what = f"cacert file '{tmp_path / 'missing.pem'}' does not exist"
    checked = amiscript("check", script)
    assert checked.returncode == 2 and f"tls-login.yaml:5:11: error: {what}" in checked.stdout, checked.stdout
    dry = amiscript("run", script, "--dry-run")
    assert dry.returncode == 2 and f"tls-login.yaml:5:11: {what}" in first_error_line(dry)


def test_the_pytest_plugin_checks_tls_targets_with_its_cacert_option(
    pki: Pki, tls_sim: int, pytester: pytest.Pytester
) -> None:
    pytester.makefile(".yaml", amiscript_login="connect: {}\nsteps:\n  - login: {username: admin, secret: secret5}\n")
    target = ("--ami-target", f"tls://127.0.0.1:{tls_sim}", "--ami-server-name", "pbx.example.net")
    trusted = pytester.runpytest(*target, "--ami-cacert", pki.cacert)
    trusted.assert_outcomes(passed=1)
    untrusted = pytester.runpytest(*target)
    untrusted.assert_outcomes(failed=1)
    untrusted.stdout.fnmatch_lines(["*certificate was not accepted: signed by an unknown CA*--cacert FILE*"])


def test_a_client_certificate_on_the_command_line_comes_with_its_own_key_not_the_scripts(
    pki: Pki, tmp_path: Path
) -> None:
    """The script names a certificate and key of its own; --cert with the key inside replaces both."""
    stranger = trustme.CA().issue_cert("stranger@example.net")
    stranger.cert_chain_pems[0].write_to_path(str(tmp_path / "stranger.pem"))
    stranger.private_key_pem.write_to_path(str(tmp_path / "stranger.key"))
    shutil.copy(pki.cacert, tmp_path / "ca.pem")
    context = server_context(pki.server_cert, pki.server_key, client_ca=pki.cacert)
    with Simulator(_fast_config(), port=0, tls=context) as server:
        script = Path(tls_script(tmp_path, server.address[1]))
        script.write_text(
            script.read_text().replace("  server_name:", "  cert: stranger.pem\n  key: stranger.key\n  server_name:")
        )
        as_written = amiscript("run", str(script))
        overridden = amiscript("run", str(script), "--cert", pki.client_combined)
    assert as_written.returncode == 3 and "--cert" in first_error_line(as_written)
    assert (overridden.returncode, overridden.stdout, overridden.stderr) == (0, "logged in\n", "")


TLS_HINT = "(is this a TLS port? use tls://HOST:PORT)"
PING_FIRST = """\
connect: {host: 127.0.0.1, port: '1', timeout: 2}
steps:
  - send: "Action: Ping\\n\\n"
  - expect: 'Response: \\w+'
    timeout: 2
"""
BANNER_FIRST = "connect: {host: 127.0.0.1, port: '1'}\nsteps:\n  - expect: Manager\n    timeout: 1\n"


def _alert(conn: socket.socket) -> None:
    """What an OpenSSL server (Asterisk's TLS port) answers to plain text: a TLS alert record."""
    conn.settimeout(5)
    conn.recv(4096)
    conn.sendall(bytes.fromhex("15030100020246"))  # fatal alert: protocol_version


def test_plain_tcp_to_a_peer_that_answers_with_tls_suggests_tls(tmp_path: Path) -> None:
    script = tmp_path / "ping.yaml"
    script.write_text(PING_FIRST)
    with tcp_peer(_alert) as (host, port):
        result = amiscript("run", str(script), "--target", f"tcp://{host}:{port}")
    assert result.returncode == 1
    assert first_error_line(result).endswith(TLS_HINT)


def test_plain_tcp_to_a_silent_port_5039_suggests_tls_and_another_silent_port_does_not(tmp_path: Path) -> None:
    script = tmp_path / "banner.yaml"
    script.write_text(BANNER_FIRST)
    host = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"  # a loopback address of its own
    try:
        listener = socket.create_server((host, 5039))  # connections complete in its backlog; none is answered
    except OSError:
        pytest.skip(f"cannot listen on {host}:5039")
    with listener:
        on_5039 = amiscript("run", str(script), "--target", f"tcp://{host}:5039")
    with socket.create_server(("127.0.0.1", 0)) as other:
        elsewhere = amiscript("run", str(script), "--target", f"tcp://127.0.0.1:{other.getsockname()[1]}")
    assert on_5039.returncode == elsewhere.returncode == 1
    assert first_error_line(on_5039).endswith('last received: "" ' + TLS_HINT)
    assert "tls://" not in first_error_line(elsewhere)


# -- the console and the recorder over TLS ----------------------------------------------------------


def console(*args: str, cwd: Path) -> pexpect.spawn:
    child = pexpect.spawn(
        AMISCRIPT[0], [*AMISCRIPT[1:], *args, "--username", "admin", "--secret-env", "TLS_TEST_SECRET"],
        env={**os.environ, "TLS_TEST_SECRET": "secret5", "NO_COLOR": "1", "AMISCRIPT_HISTORY": str(cwd / "history")},
        encoding="utf-8", timeout=30, cwd=str(cwd), dimensions=(40, 200),
    )  # fmt: skip
    child.logfile_read = io.StringIO()
    return child


def test_the_console_connects_over_tls_verifying_the_server_with_cacert(pki: Pki, tls_sim: int, tmp_path: Path) -> None:
    child = console(
        "console", "--target", f"tls://127.0.0.1:{tls_sim}", "--cacert", pki.cacert,
        "--server-name", "pbx.example.net", cwd=tmp_path,
    )  # fmt: skip
    child.expect_exact(f"# connected to tls://127.0.0.1:{tls_sim}")
    child.expect_exact("ami> ")
    child.sendline("Ping")
    child.expect(r"Ping: +Pong")
    child.expect_exact("ami> ")
    child.sendeof()
    child.expect_exact("# logged off")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_the_console_refuses_a_server_it_cannot_verify_with_one_line_and_exit_3(tls_sim: int, tmp_path: Path) -> None:
    child = console(
        "console", "--target", f"tls://127.0.0.1:{tls_sim}", "--server-name", "pbx.example.net", cwd=tmp_path
    )
    child.expect(pexpect.EOF)
    child.close()
    shown = child.logfile_read.getvalue()
    assert child.exitstatus == 3
    assert shown.count("amiscript: error: ") == 1 and "signed by an unknown CA" in shown and "--cacert FILE" in shown


def test_a_session_recorded_over_tls_replays_over_tls_from_anywhere(pki: Pki, tls_sim: int, tmp_path: Path) -> None:
    """The script says `transport: tls` with the cacert (relative to the script: it sits beside it)
    and the server name, so `run` verifies the server as the console did, whatever its folder."""
    shutil.copy(pki.cacert, tmp_path / "ca.pem")
    child = console(
        "record", "over-tls.yaml", "--target", f"tls://127.0.0.1:{tls_sim}", "--cacert", "ca.pem",
        "--server-name", "pbx.example.net", cwd=tmp_path,
    )  # fmt: skip
    child.expect_exact("ami> ")
    child.sendline("MailboxCount Mailbox=123@default")
    child.expect(r"NewMessages: +0")
    child.expect_exact("ami> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    script = tmp_path / "over-tls.yaml"
    text = script.read_text()
    assert "  transport: tls\n" in text and "  cacert: ca.pem\n" in text and "  server_name: pbx.example.net\n" in text
    result = subprocess.run(
        [*AMISCRIPT, "run", str(script), "-v"], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "TLS_TEST_SECRET": "secret5"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Action: MailboxCount" in result.stderr and "Action: Logoff" in result.stderr


def test_a_recording_keeps_a_cacert_outside_its_folder_as_an_absolute_path(
    pki: Pki, tls_sim: int, tmp_path: Path
) -> None:
    (tmp_path / "checks").mkdir()
    child = console(
        "record", "checks/abs.yaml", "--target", f"tls://127.0.0.1:{tls_sim}", "--cacert", pki.cacert,
        "--server-name", "pbx.example.net", cwd=tmp_path,
    )  # fmt: skip
    child.expect_exact("ami> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert f'  cacert: "{Path(pki.cacert).resolve()}"\n' in (tmp_path / "checks" / "abs.yaml").read_text()
    result = subprocess.run(
        [*AMISCRIPT, "run", "checks/abs.yaml"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "TLS_TEST_SECRET": "secret5"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_simulate_with_a_tls_target_says_it_runs_over_tcp() -> None:
    login = str(ROOT / "scripts" / "checks" / "ami-login.yaml")
    result = amiscript("run", login, "--simulate", "--target", "tls://")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "amiscript: note: the built-in simulator speaks plain AMI: tls:// targets run over TCP\n"
