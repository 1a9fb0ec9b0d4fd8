"""Paths a user typed that the system refuses (a symlink loop, a name over 255 bytes, a NUL):
on the command line or in a script, each is one `amiscript: error:` line naming the path
and where it is written, exit 2, never a traceback. Real subprocesses, as a user runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .helpers import AMISCRIPT

LONG = "a" * 300  # one path component over NAME_MAX (255)


def amiscript(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMISCRIPT, *args], capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL
    )


def one_error_line(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """The run ended with exit 2 and a single error line holding every one of ``parts``."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("amiscript: error: "), lines
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    """l1 -> l2 -> l1: a path that can never be followed."""
    os.symlink("l2", tmp_path / "l1")
    os.symlink("l1", tmp_path / "l2")
    return tmp_path


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_script_path_that_is_a_symlink_loop_is_one_line(loop: Path, command: str) -> None:
    result = amiscript(command, "l1", cwd=loop)
    if command == "check":  # check reports it as a diagnostic, then its summary
        assert "Traceback" not in result.stderr + result.stdout and result.returncode == 2
        assert (
            result.stdout.splitlines()[0]
            == "l1: error: cannot read: Too many levels of symbolic links (check the path)"
        )
    else:
        one_error_line(result, "l1: cannot read: Too many levels of symbolic links (check the path)")


def test_a_symlink_loop_under_format_nagios_is_unknown_not_a_traceback(loop: Path) -> None:
    result = amiscript("run", "--format", "nagios", "l1", cwd=loop)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 3  # the plugin guidelines' UNKNOWN
    assert result.stdout.startswith("L1 UNKNOWN: l1: cannot read: Too many levels of symbolic links")


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_script_name_too_long_for_the_system_is_one_line(tmp_path: Path, command: str) -> None:
    result = amiscript(command, f"{LONG}.yaml", cwd=tmp_path)
    assert "Traceback" not in result.stderr + result.stdout and result.returncode == 2
    text = result.stderr if command == "run" else result.stdout
    assert f"{LONG}.yaml" in text and "File name too long (check the path)" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("new", LONG), f"new: cannot write {LONG}.yaml: File name too long"),
        (("record", f"{LONG}.yaml", "--simulate"), f"record: cannot write {LONG}.yaml: File name too long"),
        (("run", "s.yaml", "--include-path", LONG), f"--include-path {LONG}: not a folder"),
        (("run", "s.yaml", "--include-path", "l1"), "--include-path l1: not a folder"),
    ],
)
def test_other_paths_on_the_command_line_that_cannot_be_used_are_one_line(
    loop: Path, args: tuple[str, ...], expected: str
) -> None:
    (loop / "s.yaml").write_text("steps:\n  - print: hi\n")
    one_error_line(amiscript(*args, cwd=loop), expected)
    assert sorted(os.listdir(loop)) == ["l1", "l2", "s.yaml"]


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ('  - include: "a\\0b.yaml"\n', r"s.yaml:2:14: include path 'a\x00b.yaml' contains a NUL character"),
        ('  - send: "${file:/tmp/a\\0b}"\n', r"s.yaml:2:11: the ${file:} path '/tmp/a\x00b' contains a NUL character"),
    ],
)
def test_a_nul_in_a_path_in_a_script_is_an_error_where_it_is_written(
    tmp_path: Path, command: str, step: str, expected: str
) -> None:
    (tmp_path / "s.yaml").write_text(f"steps:\n{step}")
    result = amiscript(command, "s.yaml", *(["--simulate"] if command == "run" else []), cwd=tmp_path)
    if command == "run":
        one_error_line(result, expected, "(remove the \\0 from the path)")
    else:
        assert "Traceback" not in result.stderr + result.stdout and result.returncode == 2
        where, message = expected.split(": ", 1)
        assert result.stdout.startswith(f"{where}: error: {message}"), result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps:\n  - include: l1\n", "s.yaml:2:14: included file 'l1' is not a file that can be read"),
        (f"steps:\n  - include: {LONG}\n", f"s.yaml:2:14: included file '{LONG}' does not exist"),
        ('include_paths: ["a\\0b"]\nsteps: []\n', r"s.yaml:1:17: include_paths entry 'a\x00b' is not a folder"),
        (
            'connect: {host: h, port: 1, transport: tls, cacert: "a\\0b"}\nsteps: []\n',
            r"s.yaml:1:53: the cacert path 'a\x00b' contains a NUL character",
        ),
        (
            f"connect: {{host: h, port: 1, transport: tls, cacert: {LONG}}}\nsteps: []\n",
            "s.yaml:1:53: cacert file",
        ),
        ('steps:\n  - send: "${file:l1}"\n', "s.yaml:2:11: cannot read 'l1' for ${file:l1}: Too many levels"),
        (f'steps:\n  - send: "${{file:{LONG}}}"\n', "File name too long (check the path)"),
    ],
)
def test_paths_a_script_names_that_cannot_be_followed_are_errors_where_they_are_written(
    loop: Path, text: str, expected: str
) -> None:
    (loop / "s.yaml").write_text(text)
    one_error_line(amiscript("run", "s.yaml", "--simulate", cwd=loop), expected)
