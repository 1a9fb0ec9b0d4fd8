"""Many scripts against many PBXs: in parallel with a bound, each on its own connection."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from amiscript.sim import SimConfig, Simulator, default_config, parse_manager_conf

from .helpers import AMISCRIPT
from .peers import free_port, tcp_peer

ROOT = Path(__file__).resolve().parents[1]
LOGIN = str(ROOT / "scripts" / "checks" / "ami-login.yaml")
COUNT = str(ROOT / "scripts" / "checks" / "mailbox-count.yaml")
OTHER_SECRET = "[admin]\nsecret = other-secret\npermit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n"


def amiscript(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMISCRIPT, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, **(env or {})}
    )


@pytest.fixture
def pbxs() -> Iterator[list[str]]:
    """Two PBXs that accept secret5, one that wants another secret, one that is not there."""
    base = default_config()
    fast = SimConfig(users=base.users, mailboxes=base.mailboxes, login_fail_delay=0.0)
    strict = SimConfig(
        users=parse_manager_conf(OTHER_SECRET, "other.conf"), mailboxes=base.mailboxes, login_fail_delay=0.0
    )
    sims = [Simulator(fast, port=0), Simulator(fast, port=0), Simulator(strict, port=0)]
    urls = [f"tcp://{host}:{port}" for host, port in (sim.start() for sim in sims)]
    try:
        yield [*urls, f"tcp://127.0.0.1:{free_port()}"]
    finally:
        for sim in sims:
            sim.stop()


def table(stdout: str) -> list[list[str]]:
    lines = stdout.split("\n\ntarget ", 1)[1].splitlines()[1:]
    return [line.split()[:3] for line in lines]


def test_every_script_runs_against_every_target_and_the_exit_code_is_the_worst(pbxs: list[str]) -> None:
    args = ["run", LOGIN, COUNT, "--var", "mailbox=124@default", "--jobs", "3"]
    for url in pbxs:
        args += ["--target", url]
    result = amiscript(*args)
    assert result.returncode == 3
    rows = table(result.stdout)
    expected = [
        [pbxs[0], LOGIN, "ok"], [pbxs[1], LOGIN, "ok"], [pbxs[2], LOGIN, "failed"], [pbxs[3], LOGIN, "unreachable"],
        [pbxs[0], COUNT, "ok"], [pbxs[1], COUNT, "ok"], [pbxs[2], COUNT, "failed"], [pbxs[3], COUNT, "unreachable"],
    ]  # fmt: skip
    assert [[target, str(Path(script)), res] for target, script, res in rows] == expected
    assert f"--- {COUNT} @ {pbxs[0]}: ok" in result.stdout
    assert "OK: 124@default has 2 new and 1 old messages" in result.stdout
    assert "login as 'admin' failed: Authentication failed" in result.stderr


def test_an_inventory_gives_each_target_its_own_variables_from_the_environment(pbxs: list[str], tmp_path: Path) -> None:
    inventory = tmp_path / "pbxs.yaml"
    inventory.write_text(
        "targets:\n"
        f"  - name: alpha\n    url: {pbxs[0]}\n    vars: {{secret: '${{env:ALPHA_SECRET}}'}}\n"
        f"  - name: gamma\n    url: {pbxs[2]}\n    vars: {{secret: '${{env:GAMMA_SECRET}}'}}\n"
    )
    result = amiscript(
        "run", LOGIN, COUNT, "--inventory", str(inventory), "--var", "mailbox=124@default",
        env={"ALPHA_SECRET": "secret5", "GAMMA_SECRET": "other-secret"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [row[:1] + row[2:] for row in table(result.stdout)] == [["alpha", "ok"], ["gamma", "ok"]] * 2
    assert "secret5" not in result.stdout + result.stderr and "other-secret" not in result.stdout + result.stderr


def test_a_directory_stands_for_its_scripts_and_a_var_no_script_declares_is_refused(pbxs: list[str]) -> None:
    checks = ROOT / "scripts" / "checks"
    result = amiscript("run", str(checks), "--target", pbxs[0], "--target", pbxs[1], "--var", "mailbox=124@default")
    assert result.returncode == 0, result.stderr
    assert len(table(result.stdout)) == 2 * len(list(checks.glob("*.yaml")))
    typo = amiscript("run", str(checks), "--target", pbxs[0], "--target", pbxs[1], "--var", "mailbx=1")
    assert typo.returncode == 2 and "none of the scripts declares it" in typo.stderr


def test_at_most_jobs_checks_talk_to_pbxs_at_once() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow_pbx(conn: socket.socket) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            time.sleep(0.3)  # slow enough that the jobs overlap even on a loaded machine
            conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
            conn.settimeout(10)
            while conn.recv(100):  # until the check hangs up
                pass
        finally:
            with lock:
                active -= 1

    with tcp_peer(slow_pbx) as (host, port):
        targets = [arg for _ in range(5) for arg in ("--target", f"tcp://{host}:{port}")]
        amiscript("run", str(ROOT / "tests" / "corpus" / "banner-only.yaml"), *targets, "--jobs", "2")
    assert peak == 2


def test_ctrl_c_stops_a_parallel_run_at_once_and_leaves_no_child(tmp_path: Path) -> None:
    import signal
    import uuid

    from .test_spawn import processes_with

    marker = f"amiscript-batch-{uuid.uuid4().hex}"
    script = tmp_path / "sleepy.yaml"
    program = "import time; print('READY', flush=True); time.sleep(60)"
    script.write_text(
        f"connect:\n  transport: spawn\n  command: [{sys.executable!r}, -c, {program!r}, {marker}]\n"
        "steps:\n  - expect: READY\n  - sleep: 60\n"
    )
    process = subprocess.Popen(
        [*AMISCRIPT, "run", str(script), str(script), str(script), "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while len(processes_with(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(processes_with(marker)) == 2, "two checks at a time were not running"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.1)
    assert processes_with(marker) == []


def test_each_checks_output_is_printed_once_it_and_those_before_it_have_ended(tmp_path: Path) -> None:
    """In the order given, but not held back until the slowest check is done: a CI log grows.
    The slow check waits for a peer that answers only once the quick ones' output was read."""
    release = threading.Event()

    def held(conn: socket.socket) -> None:
        release.wait(30)
        conn.sendall(b"GO\r\n")

    quick = tmp_path / "quick.yaml"
    quick.write_text("steps:\n  - print: quick done\n")
    with tcp_peer(held) as (host, port):
        slow = tmp_path / "slow.yaml"
        slow.write_text(f"connect: {{host: {host}, port: '{port}'}}\nsteps:\n  - expect: GO\n    timeout: 30\n"
                        "  - print: slow done\n")  # fmt: skip
        process = subprocess.Popen(
            [*AMISCRIPT, "run", str(quick), str(quick), str(slow), str(quick), "--jobs", "4"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            early = [process.stdout.readline() for _ in range(4)]  # while the slow check still waits
            release.set()
            rest = process.stdout.read()
            assert process.wait(30) == 0
        finally:
            release.set()
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [line.split(":")[0] for line in early] == [f"--- {quick} @ (script's connect)", "quick done\n"] * 2
    assert rest.startswith(f"--- {slow} @ (script's connect): ok") and "slow done\n--- " in rest


def test_a_stopped_parallel_run_still_shows_and_reports_the_checks_that_ended(tmp_path: Path) -> None:
    """A quick check that ended behind a slow one is printed and reported when Ctrl-C stops the run."""
    held = threading.Event()

    def silent(conn: socket.socket) -> None:
        held.wait(30)

    quick = tmp_path / "quick.yaml"
    quick.write_text("steps:\n  - print: quick done\n")
    with tcp_peer(silent) as (host, port):
        slow = tmp_path / "slow.yaml"
        slow.write_text(f"connect: {{host: {host}, port: '{port}'}}\nsteps:\n  - expect: GO\n    timeout: 30\n")
        report = tmp_path / "r.json"
        process = subprocess.Popen(
            [*AMISCRIPT, "run", str(slow), str(quick), "--json", str(report)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            time.sleep(2)  # the quick check has ended; the slow one waits
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            held.set()
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, err
    assert out.startswith(f"--- {quick} @ (script's connect): ok (") and out.endswith(" s)\nquick done\n")
    assert out.count("--- ") == 1  # the slow check, stopped, has no section
    runs = json.loads(report.read_text())["runs"]
    assert [(run["result"], run["stdout"]) for run in runs] == [("interrupted", ""), ("ok", "quick done\n")]
