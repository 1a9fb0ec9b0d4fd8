"""The CI examples in docs/ci/ parse, and their amiscript commands run against the simulator."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from amiscript.sim import SimConfig, Simulator, default_config, parse_manager_conf

ROOT = Path(__file__).resolve().parents[1]
AMISCRIPT = [sys.executable, "-m", "amiscript"]


def commands() -> Iterator[tuple[str, str]]:
    github = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    for step in github["jobs"]["smoke"]["steps"]:
        if "run" in step and step["run"].startswith("amiscript "):
            yield "github", step["run"]
    gitlab = yaml.safe_load((ROOT / "docs" / "ci" / "gitlab-ci.yml").read_text())
    for line in gitlab["pbx-smoke"]["script"]:
        if line.startswith("amiscript "):
            yield "gitlab", line


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    base = default_config()
    with Simulator(SimConfig(users=base.users, mailboxes=base.mailboxes, login_fail_delay=0.0), port=0) as sim:
        host, port = sim.address
        yield f"tcp://{host}:{port}"


STAGING_SECRET = "st4ging-Only"  # not the scripts' nor the simulator's usual one: AMI_SECRET must be read


@pytest.fixture(scope="module")
def staging() -> Iterator[str]:
    base = default_config()
    users = parse_manager_conf(
        f"[admin]\nsecret = {STAGING_SECRET}\npermit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n", "m.conf"
    )
    with Simulator(SimConfig(users=users, mailboxes=base.mailboxes, login_fail_delay=0.0), port=0) as sim:
        host, port = sim.address
        yield f"tcp://{host}:{port}"


@pytest.mark.parametrize(("where", "command"), list(commands()))
def test_each_ci_command_runs_against_the_simulator(where: str, command: str, staging: str, tmp_path: Path) -> None:
    """As the job runs it: AMI_TARGET and AMI_SECRET in the environment (from the CI's variables)."""
    words = [
        word.replace("scripts/", f"{ROOT}/scripts/") for word in shlex.split(command.replace('"$AMI_TARGET"', staging))
    ]
    result = subprocess.run(
        [*AMISCRIPT, *words[1:]], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "AMI_TARGET": staging, "AMI_SECRET": STAGING_SECRET},
    )  # fmt: skip
    assert result.returncode == 0, f"{where}: {command}\n{result.stdout}\n{result.stderr}"
    if "--junit" in words:
        assert (tmp_path / "amiscript-junit.xml").exists()


def test_both_examples_have_a_check_and_a_run() -> None:
    found = [command.split()[1] for _, command in commands()]
    assert found.count("check") == 2 and found.count("run") == 2


def test_the_nagios_command_definition_runs_as_a_plugin(target: str, tmp_path: Path) -> None:
    text = (ROOT / "docs" / "monitoring.md").read_text()
    command_line = next(
        line.split("command_line", 1)[1].strip() for line in text.splitlines() if "command_line" in line
    )
    check = tmp_path / "mailbox.yaml"
    check.write_text(
        "name: mailbox\nvars:\n  mailbox: {required: true}\nmetrics:\n  new: {warning: '1', critical: '5'}\n"
        "connect: {}\nsteps:\n  - login: {username: admin, secret: secret5}\n"
        "  - action: {Action: MailboxCount, Mailbox: '${mailbox}'}\n    save: {new: NewMessages}\n"
        "  - print: '${new} new'\n"
    )
    host, port = target.removeprefix("tcp://").rsplit(":", 1)
    filled = (
        command_line.replace("/usr/local/bin/amiscript", "amiscript")
        .replace("/etc/amiscript/$ARG1$", str(check))
        .replace("$HOSTADDRESS$:5038", f"{host}:{port}")
        .replace("$ARG2$", "--var mailbox=124@default")
    )
    words = shlex.split(filled)
    result = subprocess.run([*AMISCRIPT, *words[1:]], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "MAILBOX WARNING: 2 new | new=2;1;5;;\n")
