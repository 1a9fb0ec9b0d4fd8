"""What a plain run loads at start-up: modules only other commands or options need stay out,
so a check started once a minute by a monitoring system does not pay for them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amiscript.sim import SimConfig, Simulator, default_config

VMCOUNT = str(Path(__file__).resolve().parents[1] / "scripts" / "vmcount.yaml")

# Each is needed only by: a parallel run, --json/check, a misspelling, an md5 login, the
# simulator, `check`, assert/until expressions, a spawn or telnet transport, --junit, TLS.
NOT_AT_START_UP = (
    "concurrent.futures",
    "logging",
    "json",
    "difflib",
    "hashlib",
    "secrets",
    "pexpect",
    "asyncio",
    "amiscript.sim",
    "amiscript.script.lint",
    "amiscript.script.expr",
    "amiscript.transports.spawn",
    "amiscript.report.junit",
    "ssl",
)

RUN_AND_LIST_MODULES = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("MODULES " + " ".join(sorted(sys.modules)) + "\\n"))
from amiscript.cli import main_entry
sys.argv = ["amiscript", *sys.argv[1:]]
main_entry()
"""


@pytest.fixture
def sim() -> Iterator[tuple[str, int]]:
    fast = SimConfig(users=default_config().users, login_fail_delay=0.0)
    with Simulator(fast, host="127.0.0.1", port=0) as server:
        yield server.address


def test_a_tcp_run_of_vmcount_loads_only_what_it_uses(sim: tuple[str, int]) -> None:
    args = ["run", VMCOUNT, "--var", "mailbox=123@default", "--var", f"port={sim[1]}"]
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Old messages: 0" in done.stdout
    loaded = set(done.stderr.rsplit("MODULES ", 1)[1].split())
    assert "amiscript.engine.interpreter" in loaded and "regex" in loaded  # the listing is real
    assert sorted(name for name in NOT_AT_START_UP if name in loaded) == []
